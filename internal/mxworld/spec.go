package mxworld

// Cert is the certificate an MX host presents after STARTTLS. The zero
// value is a valid Web PKI certificate.
type Cert int

const (
	// CertValid is issued by the world's Web PKI root (in RootCAs) for the
	// host's name.
	CertValid Cert = iota
	// CertWrongName is issued by the Web PKI root for another name.
	CertWrongName
	// CertExpired is issued by the Web PKI root for the host's name and
	// expired yesterday.
	CertExpired
	// CertSelfSigned is self-signed for the host's name.
	CertSelfSigned
	// CertSelfSignedExpired is self-signed for the host's name and expired.
	CertSelfSignedExpired
	// CertOtherCA is issued for the host's name by a CA outside RootCAs.
	CertOtherCA
	// CertDANETA is issued for the host's name by the intermediate of a
	// private CA outside RootCAs, which the host's DANE-TA record names.
	CertDANETA
	// CertDANETAWrongName is issued by that intermediate for another name.
	CertDANETAWrongName
	// CertDANETADomain is issued by that intermediate for the recipient
	// domain only, not for the host.
	CertDANETADomain
)

// TLSA is what the host publishes at _25._tcp.<host> (its CNAME target's
// name for an alias).
type TLSA int

const (
	// TLSANone publishes nothing.
	TLSANone TLSA = iota
	// TLSAEE is "3 1 1" of the host certificate's key: DANE-EE, matching.
	TLSAEE
	// TLSAEEMismatch is "3 1 1" of another key.
	TLSAEEMismatch
	// TLSATA is "2 1 1" of the private DANE intermediate's key.
	TLSATA
	// TLSAUnusable is "1 1 1" (PKIX-EE) of the host's key: a record SMTP
	// clients must not use (RFC 7672 §3.1.3).
	TLSAUnusable
	// TLSABogus makes the TLSA answer fail DNSSEC validation.
	TLSABogus
)

// Behaviour is a set of ways an MX host departs from a correct server.
type Behaviour int

const (
	// NoSTARTTLS does not offer STARTTLS.
	NoSTARTTLS Behaviour = 1 << iota
	// Greeting421 greets with 421 4.3.2 and hangs up.
	Greeting421
	// Rcpt550 refuses every recipient with 550 5.1.1.
	Rcpt550
	// Down has no server: connections are refused.
	Down
	// OfferREQUIRETLS advertises REQUIRETLS after STARTTLS.
	OfferREQUIRETLS
	// AddressBogus makes the host's address answers fail DNSSEC
	// validation.
	AddressBogus
)

// Host is an MX host of a domain.
type Host struct {
	// Name is the MX target in A-labels (an IP address for an IP-literal
	// MX, which gets no records and no server).
	Name string
	// Pref is the MX preference.
	Pref uint16
	// Alias, if set, makes Name a CNAME for Alias, which holds the address
	// and TLSA records and is the server's own name.
	Alias string
	// IPv6 adds an AAAA record next to the A record.
	IPv6 bool
	Cert Cert
	TLSA TLSA
	Do   Behaviour
}

// STS is a domain's MTA-STS setup.
type STS struct {
	// Mode is "enforce", "testing" or "none".
	Mode string
	// MX are the policy's mx patterns.
	MX []string
	// ID is the id in the _mta-sts TXT record; empty means "1".
	ID string
	// Fetch404 makes the policy host answer 404, so that fetching fails.
	Fetch404 bool
	// CachedID, if set, seeds the MTA-STS cache directory with this policy
	// under that id (see World.MTASTSCacheDir).
	CachedID string
}

// Outcome is the result Deliver must give for a recipient of a domain.
type Outcome int

const (
	// Delivered: the message reached Expect.Host.
	Delivered Outcome = iota
	// Temporary: not delivered, try later.
	Temporary
	// Permanent: not delivered, bounce.
	Permanent
)

var outcomeNames = [...]string{"delivered", "temporary", "permanent"}

// String returns "delivered", "temporary" or "permanent".
func (o Outcome) String() string { return outcomeNames[o] }

// Expect is what delivery to a domain of the world must do, with the
// default configuration: the world's resolver, roots, dial hook and
// MTA-STS cache directory, and no local rules.
type Expect struct {
	Outcome Outcome
	// Host is the MX host that receives the message (Delivered only).
	Host string
	// Auth is how the session that delivered was authenticated: "dane-ee",
	// "dane-ta", "webpki" or "none" (TLS without authentication).
	Auth string
	// Report lists the RFC 8460 result types the delivery must record (for
	// failed sessions, would-be failures under MTA-STS testing, and
	// failures of the plan itself), in any order.
	Report []string
	// Untouched lists MX hosts that must see no connection at all.
	Untouched []string
}

// Domain is a recipient domain of the world.
type Domain struct {
	// Name is the domain as a user writes it (U-labels allowed).
	Name string
	// About says what the domain covers.
	About string
	// Signed makes the domain's zone DNSSEC-signed: its answers are secure.
	Signed bool
	// MXBogus makes the MX answer fail DNSSEC validation.
	MXBogus bool
	// NullMX publishes "MX 0 .".
	NullMX bool
	// MX are the MX hosts; with none and no Implicit host the domain does
	// not exist.
	MX []Host
	// Implicit, when there are no MX records, is the domain's own server
	// (its Name is the domain).
	Implicit *Host
	// STS is the MTA-STS setup, nil for none.
	STS *STS
	// Expect is the delivery outcome.
	Expect Expect
}

// Zone is a zone that holds MX hosts of other domains.
type Zone struct {
	Name   string
	Signed bool
}
