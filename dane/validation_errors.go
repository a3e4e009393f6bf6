package dane

import (
	"errors"
	"strings"

	"github.com/miekg/dns"
)

// ErrValidationLimit means that validating an answer needed more work than
// a lookup is allowed (queries, signature verifications or NSEC3 hashes):
// a hostile or broken zone or upstream. The lookup fails as Indeterminate,
// wrapping ErrLookup too; it is never taken as insecure.
var ErrValidationLimit = errors.New("DNSSEC validation work limit reached")

// ValidationError explains why in-library DNSSEC validation found an
// answer bogus. In validating mode a *LookupError with Status Bogus wraps
// ErrBogus and a *ValidationError.
type ValidationError struct {
	// Name is the owner of the records that failed, or the name whose
	// non-existence was to be proven, in lower case without the trailing
	// dot ("." for the root).
	Name string
	// Type is the type of those records, such as "DNSKEY" or "TLSA".
	Type string
	// Zone is the zone whose keys were to validate them, when known.
	Zone string
	// Code is the RFC 8914 extended DNS error that describes the failure,
	// as a validating resolver would report it: 6 (DNSSEC Bogus), 7
	// (Signature Expired), 8 (Signature Not Yet Valid), 9 (DNSKEY
	// Missing), 10 (RRSIGs Missing), 12 (NSEC Missing), 25 (Signature
	// Expired before Valid), 27 (Unsupported NSEC3 Iterations Value).
	Code uint16
	// Reason says what was wrong.
	Reason string
}

// Error says which records failed in which zone, and why.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Name)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Zone != "" {
		b.WriteString(" (zone " + e.Zone + ")")
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// ExtendedError returns the failure as an RFC 8914 extended error.
func (e *ValidationError) ExtendedError() ExtendedError {
	return ExtendedError{Code: e.Code, Text: e.Error()}
}

// bogus makes a *ValidationError for records of type t at name in zone.
func bogus(name string, t uint16, zone string, code uint16, reason string) *ValidationError {
	return &ValidationError{Name: displayName(name), Type: dns.TypeToString[t], Zone: displayName(zone), Code: code, Reason: reason}
}

// displayName returns a name in lower case without the trailing dot, the
// root as ".".
func displayName(n string) string {
	if n == "" || n == "." {
		return n
	}
	return strings.ToLower(strings.TrimSuffix(n, "."))
}
