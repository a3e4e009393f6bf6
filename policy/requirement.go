package policy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// TLS says whether a session to a host must use TLS. The zero value,
// TLSRequired, is the safe one.
type TLS int

const (
	// TLSRequired: STARTTLS is mandatory; a server that does not offer it,
	// refuses it or fails the handshake is not used (a downgrade error).
	TLSRequired TLS = iota
	// TLSInsecureOpportunistic: STARTTLS when the server offers it,
	// plaintext otherwise. An attacker on the path can force plaintext.
	// Only a local rule (LevelInsecureOpportunistic) gives it.
	TLSInsecureOpportunistic
	// TLSInsecurePlaintext: no TLS at all. Only a local rule
	// (LevelInsecurePlaintext) gives it.
	TLSInsecurePlaintext
)

var tlsNames = [...]string{"required", "insecure-opportunistic", "insecure-plaintext"}

// String returns "required", "insecure-opportunistic" or
// "insecure-plaintext".
func (t TLS) String() string {
	if t >= 0 && int(t) < len(tlsNames) {
		return tlsNames[t]
	}
	return "TLS(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText returns String, for JSON.
func (t TLS) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Auth says how a host's certificate must be authenticated.
type Auth int

const (
	// AuthNone: the certificate is not checked. The session is encrypted
	// but an active attacker can intercept it. This is what RFC 7672 §1.3
	// describes for hosts found through unauthenticated DNS.
	AuthNone Auth = iota
	// AuthWebPKI: the chain must lead to RootCAs and the certificate must
	// be valid for one of Requirement.WebPKINames.
	AuthWebPKI
	// AuthDANE: the chain must match the host's usable TLSA records
	// (Requirement.DANE), by the rules of RFC 7672 §3.
	AuthDANE
	// AuthDANEAndWebPKI: both, when a Planner requires DANE and MTA-STS
	// together where both apply.
	AuthDANEAndWebPKI
)

var authNames = [...]string{"none", "webpki", "dane", "dane+webpki"}

// String returns "none", "webpki", "dane" or "dane+webpki".
func (a Auth) String() string {
	if a >= 0 && int(a) < len(authNames) {
		return authNames[a]
	}
	return "Auth(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText returns String, for JSON.
func (a Auth) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Authenticated reports whether the certificate is checked at all.
func (a Auth) Authenticated() bool { return a != AuthNone }

// Requirement is what a session to one MX host must achieve.
type Requirement struct {
	// TLS says whether TLS is mandatory.
	TLS TLS `json:"tls"`
	// Auth says how the certificate is authenticated.
	Auth Auth `json:"auth"`
	// ServerName is the name to send in SNI (crypto/tls's ServerName):
	// the TLSA base domain under DANE (RFC 7672 §8.1), else the MX host
	// name, in A-labels. Empty with TLSInsecurePlaintext.
	ServerName string `json:"server_name,omitempty"`
	// WebPKINames are, with AuthWebPKI or AuthDANEAndWebPKI, the names
	// of which the certificate must be valid for one: the MX host name
	// under MTA-STS (RFC 8461 §4.2), or a local rule's names.
	WebPKINames []string `json:"webpki_names,omitempty"`
	// TLSA are, with AuthDANE or AuthDANEAndWebPKI, the usable TLSA
	// records in presentation form, after digest agility.
	TLSA []string `json:"tlsa,omitempty"`
	// DANENames are the reference identifiers a certificate may match under
	// a DANE-TA(2) record (RFC 7672 §3.2.2).
	DANENames []string `json:"dane_names,omitempty"`
	// DANE is the verifier for AuthDANE and AuthDANEAndWebPKI: hand it to
	// the SMTP client (it sets SNI to the TLSA base domain and replaces Web
	// PKI verification); nil otherwise.
	DANE *dane.Verifier `json:"-"`

	roots *x509.CertPool // for WebPKINames; nil means the system roots
	now   func() time.Time
}

// String describes the requirement in one line.
func (r *Requirement) String() string {
	switch r.TLS {
	case TLSInsecurePlaintext:
		return "no TLS (insecure-plaintext)"
	case TLSInsecureOpportunistic:
		return "TLS if offered, else plaintext (insecure-opportunistic), certificate not checked"
	}
	var s string
	switch r.Auth {
	case AuthNone:
		s = "TLS required, certificate not checked"
	case AuthWebPKI:
		s = "TLS required, Web PKI certificate for " + orList(r.WebPKINames)
	case AuthDANE:
		s = "TLS required, authenticated by DANE (" + tlsaSummary(r.TLSA) + ")"
	case AuthDANEAndWebPKI:
		s = "TLS required, authenticated by DANE (" + tlsaSummary(r.TLSA) + ") and by a Web PKI certificate for " + orList(r.WebPKINames)
	default:
		s = "TLS required, " + r.Auth.String()
	}
	if r.ServerName != "" {
		s += ", SNI " + r.ServerName
	}
	return s
}

func orList(names []string) string {
	switch len(names) {
	case 0:
		return "(no name)"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func tlsaSummary(recs []string) string {
	if len(recs) == 1 {
		return "TLSA " + shortTLSA(recs[0])
	}
	parts := make([]string, 0, len(recs))
	for _, r := range recs {
		parts = append(parts, shortTLSA(r))
	}
	return "TLSA " + strings.Join(parts, "; ")
}

// shortTLSA abbreviates the association data of a presentation-form TLSA
// record.
func shortTLSA(s string) string {
	f := strings.Fields(s)
	if len(f) == 4 && len(f[3]) > 16 {
		f[3] = f[3][:16] + "…"
	}
	return strings.Join(f, " ")
}

// VerifyConnection checks a completed TLS session against the
// requirement's authentication and returns nil when it passes: the TLSA
// records for AuthDANE, RootCAs and the names for AuthWebPKI, both for
// AuthDANEAndWebPKI, nothing for AuthNone. It has the signature of
// tls.Config.VerifyConnection.
//
// An SMTP client enforces the effective requirement itself (see the
// package documentation); this method is for what it cannot express: the
// Web PKI half of AuthDANEAndWebPKI (as a hook that runs after the DANE
// check) and the would-be check of an MTA-STS testing policy (see
// Testing.Check). Errors are a *dane.VerifyError or a
// *mtasts.CertificateError; both have a ReportResultType method.
func (r *Requirement) VerifyConnection(cs tls.ConnectionState) error {
	if r.Auth == AuthDANE || r.Auth == AuthDANEAndWebPKI {
		if r.DANE == nil {
			return &dane.VerifyError{Host: r.ServerName, Err: fmt.Errorf("%w (no verifier in the plan)", dane.ErrDANERequired)}
		}
		if err := r.DANE.VerifyConnection(cs); err != nil {
			return err
		}
	}
	if r.Auth == AuthWebPKI || r.Auth == AuthDANEAndWebPKI {
		return r.VerifyWebPKI(cs)
	}
	return nil
}

// VerifyWebPKI checks the certificate chain of a TLS session against the
// Web PKI roots of the plan and WebPKINames (RFC 8461 §4.2: chained to a
// root, unexpired, a subject alternative name matching one of the names).
// The error is a *mtasts.CertificateError with the RFC 8460 result type
// of the first thing that is wrong; a name mismatch is reported only when
// the chain itself is valid.
func (r *Requirement) VerifyWebPKI(cs tls.ConnectionState) error {
	var now time.Time
	if r.now != nil {
		now = r.now()
	}
	names := r.WebPKINames
	if len(names) == 0 {
		names = []string{r.ServerName}
	}
	var first error
	for _, n := range names {
		err := mtasts.VerifyMXCertificate(n, cs.PeerCertificates, r.roots, now)
		if err == nil {
			return nil
		}
		var ce *mtasts.CertificateError
		if errors.As(err, &ce) && ce.ReportResultType() != rfc8460.CertificateHostMismatch {
			return err // the chain is bad: no other name helps
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Testing is the would-be requirement of an MTA-STS policy in mode
// testing: delivery goes on as without a policy, and a session that would
// have failed the policy is recorded as a failure in the TLS report (RFC
// 8461 §5, RFC 8460).
type Testing struct {
	// InPolicy reports whether the host matches an mx pattern of the
	// policy; a host that does not would be skipped under enforce.
	InPolicy bool `json:"in_policy"`
	// Requirement is what enforce would require: TLS and a Web PKI
	// certificate for the MX host name.
	Requirement Requirement `json:"requirement"`
}

// Check returns the RFC 8460 result type of the failure a session would
// have had under the policy in mode enforce, and why; "" and nil when it
// would have passed. cs is the state of the session's TLS connection, nil
// when no TLS was negotiated (then the type is starttls-not-supported). A
// host outside the policy fails as validation-failure, RFC 8460 §4.3.3's
// type for what has no other.
func (t *Testing) Check(cs *tls.ConnectionState) (resultType string, err error) {
	if cs == nil {
		return rfc8460.STARTTLSNotSupported, errors.New("no TLS session: the MTA-STS policy requires STARTTLS")
	}
	if !t.InPolicy {
		return rfc8460.ValidationFailure, errors.New("the MX host does not match the MTA-STS policy's mx patterns")
	}
	if err := t.Requirement.VerifyWebPKI(*cs); err != nil {
		var rt interface{ ReportResultType() string }
		if errors.As(err, &rt) && rt.ReportResultType() != "" {
			return rt.ReportResultType(), err
		}
		return rfc8460.ValidationFailure, err
	}
	return "", nil
}
