package tlsrpt

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package matches at least one
// of them with errors.Is; the comment of a more specific one names the
// general one it also matches.
var (
	// ErrInvalidDomain: a policy domain is not a valid host name (empty, an
	// IP literal, bad IDNA).
	ErrInvalidDomain = errors.New("invalid policy domain")

	// ErrNoRecord: there is no _smtp._tls TXT record that starts with
	// v=TLSRPTv1, so the domain does not ask for reports.
	ErrNoRecord = errors.New("no TLS-RPT TXT record")
	// ErrMultipleRecords: more than one TXT record starts with v=TLSRPTv1;
	// RFC 8460 §3 says to act as if there were none.
	ErrMultipleRecords = errors.New("more than one TLS-RPT TXT record")
	// ErrRecordSyntax: the one v=TLSRPTv1 record breaks the RFC 8460 §3
	// grammar, so the domain is treated as not asking for reports.
	ErrRecordSyntax = errors.New("invalid TLS-RPT TXT record")
	// ErrDNS: the TXT lookup itself failed (SERVFAIL, timeout, network); it
	// says nothing about whether the domain asks for reports.
	ErrDNS = errors.New("TLS-RPT TXT lookup failed")

	// ErrInvalidResult: a Result cannot be counted (no valid policy domain,
	// an unknown policy type or result type). The Recorder drops it.
	ErrInvalidResult = errors.New("invalid TLS-RPT result")

	// ErrInvalidReport: a report is not a valid RFC 8460 JSON report.
	ErrInvalidReport = errors.New("invalid TLS-RPT report")
	// ErrReportTooLarge: a report, compressed or not, is over
	// MaxReportSize (also ErrInvalidReport).
	ErrReportTooLarge = errors.New("TLS-RPT report too large")

	// ErrNotFound is returned by Store.Load when the store holds nothing
	// for the policy domain and day.
	ErrNotFound = errors.New("no TLS-RPT data stored")
	// ErrCorrupt: stored data could not be read back.
	ErrCorrupt = errors.New("corrupt TLS-RPT store entry")

	// ErrSend: a report could not be delivered to a reporting URI. The
	// errors below also match ErrSend.
	ErrSend = errors.New("sending the TLS-RPT report failed")
	// ErrUnsupportedURI: the reporting URI is neither mailto: nor https:,
	// or is not usable as one (also ErrSend). Sending to it is not retried.
	ErrUnsupportedURI = errors.New("unsupported TLS-RPT reporting URI")
	// ErrHTTPStatus: the HTTPS collector answered with a status other than
	// 2xx (also ErrSend).
	ErrHTTPStatus = errors.New("TLS-RPT collector answered with an HTTP status other than 2xx")
	// ErrRedirect: the HTTPS collector redirected, which is not followed
	// (also ErrSend and ErrHTTPStatus).
	ErrRedirect = errors.New("TLS-RPT collector redirected, which is not followed")
	// ErrWebPKI: the HTTPS collector's certificate failed verification
	// (also ErrSend).
	ErrWebPKI = errors.New("TLS-RPT collector certificate failed verification")
	// ErrNoMailer: a report is due to a mailto: URI and the Scheduler has
	// no Mail function (also ErrSend and ErrUnsupportedURI).
	ErrNoMailer = errors.New("no mail function configured for mailto: reporting URIs")
	// ErrPermanent marks a sending failure that retrying will not cure. A
	// MailFunc wraps its error with it (for example on a 5xx reply) to
	// stop the Scheduler's retries for that URI.
	ErrPermanent = errors.New("permanent failure")
)

// Error is the error type of TXT record lookups and of sending a report: it
// says which step failed, for which policy domain and name, and wraps the
// cause, so that errors.Is reaches both the sentinels above and lower-level
// errors such as *net.DNSError, *url.Error or context.Canceled.
type Error struct {
	// Op is the step that failed: "lookup", "post", "mail" or "send".
	Op string
	// Domain is the policy domain (A-labels), if known.
	Domain string
	// Name is the DNS name queried or the reporting URI (with any password
	// removed), if any.
	Name string
	// Err is the cause.
	Err error
}

// Error says what failed, for which domain and why.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tlsrpt: ")
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
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// SyntaxError says where a TXT record breaks the RFC 8460 §3 grammar. It
// matches ErrRecordSyntax.
type SyntaxError struct {
	// Record is the record text, clipped to 100 octets.
	Record string
	// Msg says what is wrong.
	Msg string
}

// Error names the record and what is wrong with it.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid TLS-RPT TXT record %q: %s", e.Record, e.Msg)
}

// Unwrap returns ErrRecordSyntax.
func (e *SyntaxError) Unwrap() error { return ErrRecordSyntax }

// ReportError says why a report could not be parsed. It matches
// ErrInvalidReport, and ErrReportTooLarge when that is the reason.
type ReportError struct {
	// Msg says what is wrong.
	Msg string
	// Err is the cause, such as a *json.SyntaxError, if any.
	Err error

	tooLarge bool
}

// Error says what is wrong with the report.
func (e *ReportError) Error() string {
	if e.Err != nil {
		return "invalid TLS-RPT report: " + e.Msg + ": " + e.Err.Error()
	}
	return "invalid TLS-RPT report: " + e.Msg
}

// Unwrap returns ErrInvalidReport, ErrReportTooLarge if the report was too
// large, and the cause.
func (e *ReportError) Unwrap() []error {
	out := []error{ErrInvalidReport}
	if e.tooLarge {
		out = append(out, ErrReportTooLarge)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// CorruptError reports stored data that cannot be read back. It matches
// ErrCorrupt.
type CorruptError struct {
	// Path is the file (FileStore) or key of the entry.
	Path string
	// Err says what is wrong with it.
	Err error
}

// Error names the entry and what is wrong with it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("tlsrpt: corrupt store entry %s (move it away or delete it; its counts are lost): %v", e.Path, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// kindError carries a message, the sentinels it matches and an optional
// cause.
type kindError struct {
	msg   string
	kinds []error
	cause error
}

// Error returns the description and the cause.
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

// clip shortens s for an error message.
func clip(s string) string {
	const n = 100
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
