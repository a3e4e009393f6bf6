package dane

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// Sentinel errors, for errors.Is. The errors this package returns are a
// *LookupError or a *VerifyError that wraps one of these.
var (
	// ErrBogus means the validating resolver found the answer bogus: it
	// answered SERVFAIL with an RFC 8914 extended error of the DNSSEC kind.
	// The name's DNSSEC is broken or under attack; a host whose TLSA or
	// address lookup is bogus must not be used (RFC 7672 §2.1.1).
	ErrBogus = errors.New("DNSSEC validation failed (bogus)")

	// ErrLookup means no usable answer came back: SERVFAIL without a DNSSEC
	// extended error, REFUSED or another error code, a timeout, a network
	// error, a malformed reply, or no resolver configured. It is never
	// "no records" (RFC 7672 §2.1.1); the caller should try later.
	ErrLookup = errors.New("DNS lookup failed")

	// ErrNoAddresses means a host has no A or AAAA records, so no
	// connection to it can be made.
	ErrNoAddresses = errors.New("host has no IP addresses")

	// ErrUnusableTLSA means a host has a DNSSEC-validated TLSA RRset in
	// which no record is usable for SMTP: TLS is still mandatory but the
	// certificate cannot be authenticated (RFC 7672 §2.2).
	ErrUnusableTLSA = errors.New("no usable TLSA record")

	// ErrNoMatch means no usable TLSA record matches the certificate chain
	// the server presented.
	ErrNoMatch = errors.New("no TLSA record matches the server's certificate")

	// ErrNameMismatch means a DANE-TA(2) record matched and the chain is
	// valid, but the server certificate names none of the reference
	// identifiers (RFC 7672 §3.2.2).
	ErrNameMismatch = errors.New("server certificate does not name the host")

	// ErrExpired means a DANE-TA(2) record matched but a certificate of the
	// chain is expired or not yet valid.
	ErrExpired = errors.New("certificate expired or not yet valid")

	// ErrChain means a DANE-TA(2) record matched but no valid chain leads
	// from the server certificate to the trust anchor.
	ErrChain = errors.New("no valid certificate chain to the TLSA trust anchor")

	// ErrNoCertificate means the server presented no certificate.
	ErrNoCertificate = errors.New("server presented no certificate")

	// ErrDANERequired means DANE authentication was required for a host
	// that has no usable TLSA records (RFC 7672 §6).
	ErrDANERequired = errors.New("DANE required but the host has no usable TLSA records")
)

// ExtendedError is an RFC 8914 extended DNS error from the resolver.
type ExtendedError struct {
	Code uint16 // INFO-CODE
	Text string // EXTRA-TEXT, may be empty
}

// String returns the code, its registered name and the text.
func (e ExtendedError) String() string {
	s := fmt.Sprintf("EDE %d", e.Code)
	if name, ok := dns.ExtendedErrorCodeToString[e.Code]; ok {
		s += " (" + name + ")"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// DNSSEC reports whether the code is one of the RFC 8914 codes that report
// a DNSSEC validation failure.
func (e ExtendedError) DNSSEC() bool {
	switch e.Code {
	case dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm,
		dns.ExtendedErrorCodeUnsupportedDSDigestType,
		dns.ExtendedErrorCodeDNSSECIndeterminate,
		dns.ExtendedErrorCodeDNSBogus,
		dns.ExtendedErrorCodeSignatureExpired,
		dns.ExtendedErrorCodeSignatureNotYetValid,
		dns.ExtendedErrorCodeDNSKEYMissing,
		dns.ExtendedErrorCodeRRSIGsMissing,
		dns.ExtendedErrorCodeNoZoneKeyBitSet,
		dns.ExtendedErrorCodeNSECMissing,
		dns.ExtendedErrorCodeSignatureExpiredBeforeValid,
		dns.ExtendedErrorCodeUnsupportedNSEC3IterValue:
		return true
	}
	return false
}

// LookupError reports a DNS answer that cannot be used: a lookup that
// failed or was bogus, or a TLSA RRset with no usable record.
type LookupError struct {
	Name   string          // the name looked up, A-labels, no trailing dot
	Type   string          // the record type, such as "TLSA"
	Server string          // the resolver that answered last, if any
	Status Status          // Bogus or Indeterminate; Secure for ErrUnusableTLSA
	Rcode  int             // the DNS response code, -1 when there was no response
	EDE    []ExtendedError // extended errors from the resolver
	Err    error           // wraps ErrBogus, ErrLookup, ErrNoAddresses or ErrUnusableTLSA, and the cause
}

// Error says what failed, where, and what to do about it.
func (e *LookupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dane: %s lookup for %s", e.Type, e.Name)
	if e.Server != "" {
		fmt.Fprintf(&b, " via %s", e.Server)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Rcode > 0 {
		fmt.Fprintf(&b, " (%s", dns.RcodeToString[e.Rcode])
		for _, x := range e.EDE {
			fmt.Fprintf(&b, ", %v", x)
		}
		b.WriteString(")")
	}
	switch {
	case errors.Is(e.Err, ErrBogus):
		b.WriteString("; the domain's DNSSEC is broken or the answer was tampered with: do not use this host until its DNSSEC validates")
	case errors.Is(e.Err, ErrUnusableTLSA):
		b.WriteString("; TLS is still required, without certificate authentication")
	case errors.Is(e.Err, ErrNoAddresses):
		b.WriteString("; no connection can be made to this host")
	default:
		b.WriteString("; this is not a \"no records\" answer: try again later and check the resolver")
	}
	return b.String()
}

// Unwrap returns the wrapped sentinel and cause.
func (e *LookupError) Unwrap() error { return e.Err }

// ReportResultType returns the RFC 8460 result type for a TLS report (see
// package tlsrpt): "tlsa-invalid" for a TLSA RRset without usable records,
// else "dnssec-invalid" (no valid records came from the resolver).
func (e *LookupError) ReportResultType() string {
	if errors.Is(e.Err, ErrUnusableTLSA) {
		return rfc8460.TLSAInvalid
	}
	return rfc8460.DNSSECInvalid
}

// VerifyError reports a server certificate chain that the TLSA records do
// not authenticate. A caller that required DANE for the host must not
// deliver over the connection: it is a downgrade or an operator error, and
// the delivery should go to another MX host or be deferred.
type VerifyError struct {
	Host    string // the TLSA base domain (the SNI name)
	Owner   string // the TLSA owner name, such as "_25._tcp.mx.example.com"
	Records []TLSA // the usable records that were tried
	Err     error  // wraps ErrNoMatch, ErrNameMismatch, ErrExpired, ErrChain, ErrNoCertificate or ErrDANERequired, and the cause

	at time.Time // when the chain was verified, to tell expired from not yet valid
}

// Error says what failed, where, and what to do about it.
func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dane: server %s: %v", e.Host, e.Err)
	if len(e.Records) > 0 {
		where := e.Owner
		if where == "" {
			where = "the TLSA RRset"
		}
		fmt.Fprintf(&b, " (%d usable record(s) at %s:", len(e.Records), where)
		for i, r := range e.Records {
			if i == 4 {
				b.WriteString(" …")
				break
			}
			fmt.Fprintf(&b, " [%s]", r.short())
		}
		b.WriteString(")")
	}
	if errors.Is(e.Err, ErrDANERequired) {
		b.WriteString("; delivery requires DANE: defer it or use another host")
	} else {
		b.WriteString("; the server's certificate and its TLSA records disagree: deliver to another MX host or defer, never without authentication")
	}
	return b.String()
}

// Unwrap returns the wrapped sentinel and cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// ReportResultType returns the RFC 8460 result type for a TLS report (see
// package tlsrpt): "certificate-host-mismatch" (ErrNameMismatch),
// "dane-required" (ErrDANERequired); for ErrExpired and ErrChain the type
// of the x509 failure, as every package of this module classifies it
// (expired: "certificate-expired"; no path to the trust anchor:
// "certificate-not-trusted"; not yet valid, wrong key usage and the rest:
// "validation-failure"); else "validation-failure" (ErrNoMatch and the
// rest).
func (e *VerifyError) ReportResultType() string {
	switch {
	case errors.Is(e.Err, ErrNameMismatch):
		return rfc8460.CertificateHostMismatch
	case errors.Is(e.Err, ErrDANERequired):
		return rfc8460.DANERequired
	case errors.Is(e.Err, ErrExpired), errors.Is(e.Err, ErrChain):
		if rt, ok := rfc8460.CertificateResult(e.Err, e.at); ok {
			return rt
		}
		// Without the x509 error (a chain without a CA, an anchor key that
		// does not parse) the sentinel decides.
		if errors.Is(e.Err, ErrChain) {
			return rfc8460.CertificateNotTrusted
		}
		return rfc8460.CertificateExpired
	}
	return rfc8460.ValidationFailure
}
