package mtasts

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// Sentinel errors. Every error returned by this package matches at least one
// of them with errors.Is; the more specific ones also match the general one
// noted in their comment.
var (
	// ErrInvalidDomain: the domain is not a valid host name (IP literal,
	// empty label, bad IDNA).
	ErrInvalidDomain = errors.New("invalid policy domain")

	// ErrNoRecord: there is no _mta-sts TXT record that starts with
	// v=STSv1, so the domain does not publish MTA-STS. It is not a
	// failure to report.
	ErrNoRecord = errors.New("no MTA-STS TXT record")
	// ErrMultipleRecords: more than one v=STSv1 TXT record; RFC 8461 §3.1
	// says to act as if there were none.
	ErrMultipleRecords = errors.New("more than one MTA-STS TXT record")
	// ErrRecordSyntax: the one v=STSv1 TXT record does not follow the
	// RFC 8461 §3.1 grammar.
	ErrRecordSyntax = errors.New("invalid MTA-STS TXT record")
	// ErrDNS: the TXT lookup itself failed (SERVFAIL, timeout, network);
	// it says nothing about whether the domain uses MTA-STS.
	ErrDNS = errors.New("MTA-STS TXT lookup failed")

	// ErrFetch: the HTTPS fetch of the policy failed. The errors below
	// up to ErrWebPKI also match ErrFetch.
	ErrFetch = errors.New("MTA-STS policy fetch failed")
	// ErrPolicyNotFound: the policy host answered 404 or does not exist in
	// DNS (also ErrFetch).
	ErrPolicyNotFound = errors.New("MTA-STS policy not found")
	// ErrHTTPStatus: the policy host answered with a status other than 200
	// (also ErrFetch).
	ErrHTTPStatus = errors.New("MTA-STS policy host answered with an HTTP status other than 200")
	// ErrRedirect: the policy host answered with a redirect, which
	// RFC 8461 §3.3 forbids following (also ErrFetch and ErrHTTPStatus).
	ErrRedirect = errors.New("MTA-STS policy host redirected, which must not be followed")
	// ErrContentType: the response was not text/plain (also ErrFetch).
	ErrContentType = errors.New("MTA-STS policy is not served as text/plain")
	// ErrWebPKI: the policy host's certificate is not valid for
	// mta-sts.<domain> under the Web PKI (also ErrFetch).
	ErrWebPKI = errors.New("MTA-STS policy host certificate failed Web PKI validation")

	// ErrPolicyInvalid: the body is not a valid policy (syntax, missing or
	// bad field, too large).
	ErrPolicyInvalid = errors.New("invalid MTA-STS policy")
	// ErrPolicyTooLarge: the body is over the 64 KiB limit (also
	// ErrPolicyInvalid).
	ErrPolicyTooLarge = errors.New("MTA-STS policy larger than 64 KiB")

	// ErrNotCached is returned by Store.Load when the store holds no
	// policy for the domain.
	ErrNotCached = errors.New("no cached MTA-STS policy")
	// ErrCorrupt: a stored policy could not be read back; the store entry
	// is ignored.
	ErrCorrupt = errors.New("corrupt MTA-STS policy cache entry")
)

// ResultType returns the RFC 8460 result type (see package tlsrpt) for an
// error of this package, or "" when err is nil or is not a failure to
// report (ErrNoRecord, ErrInvalidDomain, a cancelled context):
//
//   - sts-webpki-invalid: the policy host's certificate failed Web PKI
//     validation (untrusted, expired, or not valid for mta-sts.<domain>);
//   - sts-policy-invalid: the policy host answered, but what it served is
//     not a valid policy;
//   - sts-policy-fetch-error: the policy could not be discovered or
//     retrieved (DNS failure, unusable TXT record, HTTP failure).
func ResultType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrWebPKI):
		return rfc8460.STSWebPKIInvalid
	case errors.Is(err, ErrPolicyInvalid):
		return rfc8460.STSPolicyInvalid
	case errors.Is(err, ErrFetch), errors.Is(err, ErrDNS),
		errors.Is(err, ErrMultipleRecords), errors.Is(err, ErrRecordSyntax):
		return rfc8460.STSPolicyFetchError
	}
	return ""
}

// Error is the error type returned by lookups, fetches and the Client. It
// says which step failed, for which policy domain and name, and wraps the
// cause, so that errors.Is reaches both the sentinels above and lower-level
// errors such as *net.DNSError, *x509.HostnameError or context.Canceled.
type Error struct {
	// Op is the step that failed: "lookup", "fetch", "parse" or "store".
	Op string
	// Domain is the policy domain (A-labels).
	Domain string
	// Name is the DNS name queried or the URL fetched, if any.
	Name string
	// Err is the cause.
	Err error
}

// Error says what failed, for which domain and why.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mtasts: ")
	b.WriteString(e.Op)
	if e.Domain != "" {
		b.WriteString(" for ")
		b.WriteString(e.Domain)
	}
	if e.Name != "" {
		b.WriteString(" (")
		b.WriteString(e.Name)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if rt := ResultType(e.Err); rt != "" {
		b.WriteString(" [")
		b.WriteString(rt)
		b.WriteString("]")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ReportResultType returns the RFC 8460 result type of the failure, or "" if
// it is not a failure to report (for example ErrNoRecord).
func (e *Error) ReportResultType() string { return ResultType(e.Err) }

// SyntaxError reports where a TXT record or a policy breaks the RFC 8461
// grammar. It matches ErrRecordSyntax or ErrPolicyInvalid.
type SyntaxError struct {
	// What is "TXT record" or "policy".
	What string
	// Line is the 1-based policy line, 0 for TXT records and for errors
	// about the policy as a whole (a missing field).
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error says what is wrong with the text and where.
func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("invalid MTA-STS %s: line %d: %s", e.What, e.Line, e.Msg)
	}
	return fmt.Sprintf("invalid MTA-STS %s: %s", e.What, e.Msg)
}

// Unwrap returns ErrRecordSyntax for TXT records and ErrPolicyInvalid for
// policies.
func (e *SyntaxError) Unwrap() error {
	if e.What == whatRecord {
		return ErrRecordSyntax
	}
	return ErrPolicyInvalid
}

// ReportResultType returns sts-policy-fetch-error for a TXT record (the
// policy could not be discovered) and sts-policy-invalid for a policy.
func (e *SyntaxError) ReportResultType() string { return ResultType(e) }

const (
	whatRecord = "TXT record"
	whatPolicy = "policy"
)

// kindError carries a message, the sentinels it matches and an optional
// cause.
type kindError struct {
	msg   string
	kinds []error
	cause error
}

// Error returns the description.
func (e *kindError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

// Unwrap returns the sentinels and the cause.
func (e *kindError) Unwrap() []error {
	out := append([]error(nil), e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

func newKindError(msg string, cause error, kinds ...error) error {
	return &kindError{msg: msg, kinds: kinds, cause: cause}
}

// CorruptError reports a cache entry that cannot be read back. It matches
// ErrCorrupt.
type CorruptError struct {
	// Path is the file (FileStore) or key of the entry.
	Path string
	// Err says what is wrong with it.
	Err error
}

// Error names the cache entry and what is wrong with it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("mtasts: corrupt policy cache entry %s (ignored; it is replaced at the next successful fetch): %v", e.Path, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
