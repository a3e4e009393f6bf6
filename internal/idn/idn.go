// Package idn converts host and domain names to the one form that is used on
// the wire, in SNI, in DNS queries, in certificate name checks and in policy
// matching: lower-case A-labels (IDNA2008, RFC 5890/5891) without a trailing
// dot.
//
// The profile is UTS #46 non-transitional lookup mapping with the Bidi and
// joiner rules, and supplied A-labels are decoded and checked to round-trip
// (RFC 5891 §5.3-5.5). The UTS #46 CheckHyphens rule is off, as in browsers,
// because labels such as "r3---sn-abc" are common in real host names; the
// result must still be LDH: letters, digits and hyphens, no label starting or
// ending with a hyphen, labels of 1 to 63 octets, 253 octets in all.
package idn

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalid is matched by every error this package returns.
var ErrInvalid = errors.New("invalid domain name")

// Error reports a name that cannot be converted and why.
type Error struct {
	Name   string // the name as given
	Reason string // what is wrong with it
	Err    error  // the IDNA library's error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("invalid domain name %q: %s: %v", e.Name, e.Reason, e.Err)
	}
	return fmt.Sprintf("invalid domain name %q: %s", e.Name, e.Reason)
}

// Unwrap returns ErrInvalid and the IDNA library's error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
)

var display = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
)

// ToASCII returns name as lower-case A-labels without a trailing dot.
// It rejects empty names, empty labels, IP address literals, characters that
// are not allowed in host names and A-labels that do not round-trip.
func ToASCII(name string) (string, error) {
	in := name
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", &Error{Name: in, Reason: "empty name"}
	}
	if !utf8.ValidString(name) {
		return "", &Error{Name: in, Reason: "not valid UTF-8"}
	}
	if maybeIP(name) {
		if _, err := netip.ParseAddr(name); err == nil {
			return "", &Error{Name: in, Reason: "an IP address is not a domain name"}
		}
	}
	var out string
	if isLDH(name) && !hasACE(name) {
		out = lower(name)
	} else {
		a, err := profile.ToASCII(name)
		if err != nil {
			return "", &Error{Name: in, Reason: "not a valid internationalised name", Err: err}
		}
		out = strings.ToLower(a)
	}
	if err := checkLDH(out); err != "" {
		return "", &Error{Name: in, Reason: err}
	}
	return out, nil
}

// ToUnicode returns name in U-label form for display. Names that cannot be
// converted are returned as given, so it never fails.
func ToUnicode(name string) string {
	u, err := display.ToUnicode(strings.TrimSuffix(name, "."))
	if err != nil {
		return name
	}
	return u
}

// Equal reports whether a and b are the same name once both are in A-label
// form. Names that cannot be converted are never equal to anything.
func Equal(a, b string) bool {
	aa, err := ToASCII(a)
	if err != nil {
		return false
	}
	bb, err := ToASCII(b)
	if err != nil {
		return false
	}
	return aa == bb
}

// IsASCII reports whether s holds only 7-bit characters.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// maybeIP reports whether name could be an IP address: only digits and
// dots, or a colon. Other names skip the (allocating) address parse.
func maybeIP(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == ':' {
			return true
		}
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// lower returns s in lower case, without allocating when it already is.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// labels calls f with each dot-separated label of s until f returns false.
func labels(s string, f func(string) bool) {
	for {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			f(s)
			return
		}
		if !f(s[:i]) {
			return
		}
		s = s[i+1:]
	}
}

// hasACE reports whether some label starts with the ACE prefix and so must
// be decoded and checked by the IDNA library.
func hasACE(s string) bool {
	found := false
	labels(s, func(l string) bool {
		found = len(l) >= 4 && strings.EqualFold(l[:4], "xn--")
		return !found
	})
	return found
}

// checkLDH returns what is wrong with an A-label name, or "".
func checkLDH(s string) string {
	if len(s) > 253 {
		return "longer than 253 octets"
	}
	if !isLDH(s) {
		return "contains a character that is not a letter, digit or hyphen"
	}
	problem := ""
	labels(s, func(l string) bool {
		switch {
		case l == "":
			problem = "empty label"
		case len(l) > 63:
			problem = "label longer than 63 octets"
		case l[0] == '-' || l[len(l)-1] == '-':
			problem = "label starts or ends with a hyphen"
		}
		return problem == ""
	})
	return problem
}
