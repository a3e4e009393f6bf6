package tlsrpt

import (
	"net/netip"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// Result types of RFC 8460 §4.3, as returned by the ReportResultType
// methods of the errors of packages smtpsecure, dane and mtasts. They are
// untyped string constants so that they compare with those methods'
// results directly.
const (
	// ResultSTARTTLSNotSupported: the server did not offer STARTTLS, or
	// refused it.
	ResultSTARTTLSNotSupported = rfc8460.STARTTLSNotSupported
	// ResultCertificateHostMismatch: the certificate does not name the
	// host it was checked against.
	ResultCertificateHostMismatch = rfc8460.CertificateHostMismatch
	// ResultCertificateExpired: the certificate has expired.
	ResultCertificateExpired = rfc8460.CertificateExpired
	// ResultCertificateNotTrusted: the chain does not lead to a trusted
	// root.
	ResultCertificateNotTrusted = rfc8460.CertificateNotTrusted
	// ResultValidationFailure: any other failure to validate the TLS
	// session or its certificate (RFC 8460 §4.3.3).
	ResultValidationFailure = rfc8460.ValidationFailure

	// ResultTLSAInvalid: the TLSA records are unusable or do not match.
	ResultTLSAInvalid = rfc8460.TLSAInvalid
	// ResultDNSSECInvalid: the DNSSEC data needed for DANE did not
	// validate (bogus) or could not be obtained.
	ResultDNSSECInvalid = rfc8460.DNSSECInvalid
	// ResultDANERequired: the sender requires DANE and the host has no
	// usable TLSA records.
	ResultDANERequired = rfc8460.DANERequired

	// ResultSTSPolicyFetchError: the MTA-STS policy could not be
	// discovered or fetched.
	ResultSTSPolicyFetchError = rfc8460.STSPolicyFetchError
	// ResultSTSPolicyInvalid: the MTA-STS policy host served an invalid
	// policy.
	ResultSTSPolicyInvalid = rfc8460.STSPolicyInvalid
	// ResultSTSWebPKIInvalid: the MTA-STS policy host's certificate failed
	// Web PKI validation.
	ResultSTSWebPKIInvalid = rfc8460.STSWebPKIInvalid
)

// Policy types of RFC 8460 §4.4 ("policy-type").
const (
	// PolicyTLSA: the session was made under DANE (TLSA records).
	PolicyTLSA = "tlsa"
	// PolicySTS: the session was made under an MTA-STS policy.
	PolicySTS = "sts"
	// PolicyNone: the domain published no policy.
	PolicyNone = "no-policy-found"
)

// Policy identifies the policy a delivery attempt was made under: the
// "policy" object of a report (RFC 8460 §4.4). Sessions made under the
// same Policy are counted together.
//
// In JSON it is the report's "policy" object; when parsing, "mx-host" and
// "policy-string" may also be a single string, as some senders write them.
type Policy struct {
	// Type is PolicyTLSA, PolicySTS or PolicyNone.
	Type string `json:"policy-type"`
	// Domain is the policy domain, in A-labels (RFC 8460 §4.4): the
	// recipient domain whose delivery the attempt was for.
	Domain string `json:"policy-domain"`
	// Strings are the policy strings: the TLSA records in presentation
	// form for PolicyTLSA, the policy's lines for PolicySTS, none for
	// PolicyNone.
	Strings []string `json:"policy-string,omitempty"`
	// MXHosts are the MX host patterns of an MTA-STS policy, or the MX
	// host names the policy applied to (RFC 8460 §4.4, erratum 6241).
	MXHosts []string `json:"mx-host,omitempty"`
}

// Result is the TLS outcome of one session attempt to one MX host, as a
// delivering program records it for a report (RFC 8460 §4.3, §4.4).
type Result struct {
	// Time is when the attempt was made; its UTC day decides which report
	// counts it.
	Time time.Time
	// Policy is the policy the attempt was made under.
	Policy Policy
	// ResultType is "" for a session that negotiated TLS as the policy
	// required, else one of the Result… constants.
	ResultType string
	// SendingIP is the local address the session was made from, if known.
	SendingIP netip.Addr
	// ReceivingMXHostname is the MX host name that was tried.
	ReceivingMXHostname string
	// ReceivingMXHelo is the name the server gave in its greeting or EHLO
	// reply, if the session got that far.
	ReceivingMXHelo string
	// ReceivingIP is the address that was connected to, if any.
	ReceivingIP netip.Addr
	// FailureReasonCode is a short free-form code for the failure, such as
	// the TLS alert or the server's reply code (RFC 8460 §4.4).
	FailureReasonCode string
	// AdditionalInfo is a URI or text with more detail about the failure.
	AdditionalInfo string
}

// Success reports whether the attempt negotiated TLS as its policy
// required.
func (r *Result) Success() bool { return r.ResultType == "" }
