package policy

import (
	"errors"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
)

// Sentinel errors, for errors.Is. A plan's Err is an *Error that wraps one
// of the first six; ErrRulesSyntax comes from ParseRules and from a
// Planner whose Rules are invalid.
var (
	// ErrInvalidDomain: the recipient domain is not a valid domain name
	// (an address literal, an empty label, a name that fails IDNA).
	ErrInvalidDomain = errors.New("invalid recipient domain")
	// ErrNoSuchDomain: the recipient domain does not exist (NXDOMAIN).
	// Permanent.
	ErrNoSuchDomain = errors.New("recipient domain does not exist")
	// ErrNullMX: the domain publishes a null MX (RFC 7505): it accepts no
	// mail. Permanent; a bounce says 5.1.10.
	ErrNullMX = errors.New("recipient domain accepts no mail (null MX, RFC 7505)")
	// ErrNoMailHost: the domain has neither MX records nor addresses of its
	// own (RFC 5321 §5.1). Permanent.
	ErrNoMailHost = errors.New("recipient domain has no MX records and no addresses")
	// ErrMXLookup: the MX lookup failed or was bogus; the error also
	// matches dane.ErrLookup or dane.ErrBogus. Temporary (RFC 7672 §2.1.2).
	ErrMXLookup = errors.New("MX lookup failed")
	// ErrNoUsableHost: every MX host is excluded (see Host.Excluded).
	// Temporary when any exclusion is; see Error.Recheck for MTA-STS.
	ErrNoUsableHost = errors.New("no MX host may be used")

	// ErrRulesSyntax: local rules that cannot be read or are invalid.
	ErrRulesSyntax = errors.New("invalid local policy rules")
)

// Error says why mail for a domain cannot be delivered at all under its
// plan. It is Plan.Err, and it is returned by Planner.Plan for an invalid
// domain.
type Error struct {
	// Domain is the recipient domain (A-labels when it was valid).
	Domain string
	// Temporary is set when the failure may go away (a DNS failure, a host
	// excluded for a lookup error): defer delivery and try again later.
	// When it is false the failure is permanent, unless Recheck is set.
	Temporary bool
	// Recheck is set when every host was excluded because the MTA-STS
	// policy in mode enforce does not list it. RFC 8461 §5.1 forbids
	// failing permanently before checking for a new policy: call
	// Planner.Recheck, deliver under the new plan if it changed, and fail
	// permanently only if it did not.
	Recheck bool
	// Err wraps one of the sentinel errors and the cause.
	Err error
}

// Error says what failed for which domain and what to do.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("policy: mail for ")
	b.WriteString(e.Domain)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	var le *dane.LookupError
	switch {
	case e.Recheck:
		b.WriteString("; check for a new MTA-STS policy (Planner.Recheck) before failing permanently")
	case errors.As(e.Err, &le):
		// The DNS error already says what to do.
	case e.Temporary:
		b.WriteString("; defer delivery and try again later")
	case errors.Is(e.Err, ErrInvalidDomain):
	default:
		b.WriteString("; the failure is permanent")
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() error { return e.Err }
