// Package address parses and encodes envelope addresses: the mailboxes in
// MAIL FROM and RCPT TO (RFC 5321 §4.1.2, with the UTF-8 extensions of
// RFC 6531 §3.3).
//
// Parse accepts exactly one plain address, "local@domain", and nothing that
// could change the meaning of the command it is written into: no angle
// brackets, display names, comments or surrounding spaces, and no control
// characters anywhere, so "a@b.com>\r\nRCPT TO:<x@y.com" and
// "a@b.com> SIZE=1" are errors rather than injected commands.
//
// The local part is a dot-string (atoms of letters, digits and
// !#$%&'*+-/=?^_`{|}~, joined by single dots) or a quoted-string; both may
// contain non-ASCII UTF-8 (RFC 6531), which needs the SMTPUTF8 extension
// ([Address.NeedsSMTPUTF8]). The domain may be given in U-labels; it is always
// sent as A-labels ([Address.Encode]), so it never needs SMTPUTF8. An address
// literal such as "[192.0.2.1]" or "[IPv6:2001:db8::1]" is also accepted.
//
// Limits: 64 octets of local part, 255 of domain, 254 for the whole address,
// both as given and as encoded.
package address

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// ErrInvalid is matched by every error of this package.
var ErrInvalid = errors.New("invalid email address")

// Error says why an address was rejected.
type Error struct {
	Address string // the address as given
	Reason  string // what is wrong with it
}

func (e *Error) Error() string {
	a := e.Address
	suffix := ""
	if len(a) > 300 {
		a, suffix = a[:300], "..."
	}
	return fmt.Sprintf("invalid email address %q%s: %s", a, suffix, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Limits from RFC 5321 §4.5.3.1.
const (
	maxLocal   = 64
	maxDomain  = 255
	maxAddress = 254 // a path is at most 256 octets with its angle brackets
)

// Address is an envelope address.
type Address struct {
	// Local is the local part as given: a dot-string, or a quoted-string
	// with its quotes and backslashes.
	Local string
	// Domain is as given: a domain name in A-labels or U-labels, or an
	// address literal such as "[192.0.2.1]" or "[IPv6:2001:db8::1]".
	Domain string
}

// Parse parses a plain address, "local@domain". See the package
// documentation for the rules; errors are [*Error] values matching
// [ErrInvalid].
func Parse(s string) (Address, error) {
	fail := func(reason string) (Address, error) {
		return Address{}, &Error{Address: s, Reason: reason}
	}
	if s == "" {
		return fail("empty")
	}
	if reason := checkChars(s); reason != "" {
		return fail(reason)
	}
	at := -1
	if s[0] == '"' {
		end := quotedEnd(s)
		if end < 0 {
			return fail("unterminated quoted local part")
		}
		if end == len(s) || s[end] != '@' {
			return fail("the quoted local part must be followed by @")
		}
		at = end
	} else {
		at = strings.IndexByte(s, '@')
		if at < 0 {
			return fail("no @")
		}
	}
	a := Address{Local: s[:at], Domain: s[at+1:]}
	if strings.IndexByte(a.Domain, '@') >= 0 {
		return fail("more than one @")
	}
	if _, err := a.encodedDomain(); err != "" {
		return fail(err)
	}
	return a, nil
}

// ParseEncode parses s as Parse does and also returns its encoded form, as
// Encode would: s itself when its domain is already in lower-case A-labels,
// without building a new string.
func ParseEncode(s string) (Address, string, error) {
	a, err := Parse(s)
	if err != nil {
		return Address{}, "", err
	}
	domain, _ := a.encodedDomain()
	if domain == a.Domain {
		return a, s, nil
	}
	return a, a.Local + "@" + domain, nil
}

// String returns Local + "@" + Domain, as given.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// NeedsSMTPUTF8 reports whether the local part has non-ASCII characters, so
// that the address may only be sent to a server that offers SMTPUTF8
// (RFC 6531 §3.2). The domain never needs it: it is sent as A-labels.
func (a Address) NeedsSMTPUTF8() bool { return !idn.IsASCII(a.Local) }

// Encode returns the address as it is written between the angle brackets of
// MAIL FROM and RCPT TO: the local part unchanged, "@", and the domain in
// lower-case A-labels (RFC 5891), or the address literal unchanged. It
// validates a as Parse does, so an Address built by hand cannot inject
// anything into a command.
func (a Address) Encode() (string, error) {
	e, reason := a.encode()
	if reason != "" {
		return "", &Error{Address: a.String(), Reason: reason}
	}
	return e, nil
}

// ASCIIDomain returns the domain in lower-case A-labels, for DNS, policy
// lookups and comparisons. It returns "" for an address literal.
func (a Address) ASCIIDomain() (string, error) {
	if strings.HasPrefix(a.Domain, "[") {
		if reason := checkLiteral(a.Domain); reason != "" {
			return "", &Error{Address: a.String(), Reason: reason}
		}
		return "", nil
	}
	d, reason := checkDomain(a.Domain)
	if reason != "" {
		return "", &Error{Address: a.String(), Reason: reason}
	}
	return d, nil
}

// encode validates a and returns its encoded form, or why it is invalid.
func (a Address) encode() (string, string) {
	domain, reason := a.encodedDomain()
	if reason != "" {
		return "", reason
	}
	return a.Local + "@" + domain, ""
}

// encodedDomain validates a and returns its domain as it is encoded, or why
// a is invalid.
func (a Address) encodedDomain() (string, string) {
	if reason := checkChars(a.Local); reason != "" {
		return "", reason
	}
	if reason := checkChars(a.Domain); reason != "" {
		return "", reason
	}
	if reason := checkLocal(a.Local); reason != "" {
		return "", reason
	}
	if len(a.Domain) > maxDomain {
		return "", "domain longer than 255 octets"
	}
	domain := a.Domain
	if strings.HasPrefix(domain, "[") {
		if reason := checkLiteral(domain); reason != "" {
			return "", reason
		}
	} else {
		d, reason := checkDomain(domain)
		if reason != "" {
			return "", reason
		}
		domain = d
	}
	if len(a.Local)+1+len(a.Domain) > maxAddress || len(a.Local)+1+len(domain) > maxAddress {
		return "", "longer than 254 octets"
	}
	return domain, ""
}

// checkChars rejects invalid UTF-8 and control characters (C0, DEL and C1),
// which have no place anywhere in an address, not even quoted.
func checkChars(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("control character %q at offset %d", c, i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Sprintf("invalid UTF-8 at offset %d", i)
		}
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U at offset %d", r, i)
		}
		i += n
	}
	return ""
}

// quotedEnd returns the index after the closing quote of the quoted-string at
// the start of s, or -1 if it is not closed.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// checkLocal checks a local part (RFC 5321 §4.1.2 Local-part, extended by
// RFC 6531 §3.3) and the library's rule against angle brackets.
func checkLocal(l string) string {
	switch {
	case l == "":
		return "empty local part"
	case len(l) > maxLocal:
		return "local part longer than 64 octets"
	case strings.ContainsAny(l, "<>"):
		// Legal inside quotes, but a lenient server could read it as the
		// end of the path; no real mailbox needs it.
		return "angle bracket in local part"
	case l[0] == '"':
		return checkQuoted(l)
	}
	return checkDotString(l)
}

// checkDotString checks Dot-string = Atom *("." Atom).
func checkDotString(l string) string {
	if l[0] == '.' || l[len(l)-1] == '.' {
		return "local part starts or ends with a dot"
	}
	if strings.Contains(l, "..") {
		return "two dots in a row in local part"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c >= utf8.RuneSelf || c == '.' || isAtext(c) {
			continue // non-ASCII is UTF8-non-ascii (RFC 6531), checked by checkChars
		}
		if c == ' ' {
			return "space in local part (only allowed inside quotes)"
		}
		return fmt.Sprintf("character %q not allowed in an unquoted local part", c)
	}
	return ""
}

// isAtext reports whether c is an ASCII atext character (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkQuoted checks Quoted-string = DQUOTE *QcontentSMTP DQUOTE, where
// QcontentSMTP is qtextSMTP (printable ASCII and space except '"' and '\',
// plus UTF-8 per RFC 6531) or quoted-pairSMTP ('\' and printable ASCII or
// space).
func checkQuoted(l string) string {
	if len(l) < 2 || l[len(l)-1] != '"' {
		return "unterminated quoted local part"
	}
	for i := 1; i < len(l)-1; i++ {
		switch c := l[i]; c {
		case '\\':
			i++
			if i >= len(l)-1 {
				return "backslash at the end of the quoted local part"
			}
			if l[i] < 0x20 || l[i] > 0x7e {
				return "backslash before a character that cannot be quoted"
			}
		case '"':
			return "quote inside the quoted local part"
		}
	}
	return ""
}

// checkDomain validates a domain name and returns it as A-labels.
func checkDomain(d string) (string, string) {
	switch {
	case d == "":
		return "", "empty domain"
	case strings.HasSuffix(d, "."):
		return "", "domain ends with a dot"
	}
	a, err := idn.ToASCII(d)
	if err != nil {
		var ie *idn.Error
		if errors.As(err, &ie) {
			return "", "domain " + ie.Reason
		}
		return "", "invalid domain"
	}
	return a, ""
}

// checkLiteral checks an address literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]"
// (RFC 5321 §4.1.3). General address literals are not accepted.
func checkLiteral(d string) string {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return "unterminated address literal"
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		ip, err := netip.ParseAddr(inner[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "invalid IPv6 address literal"
		}
		return ""
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return "invalid address literal (need [IPv4] or [IPv6:address])"
	}
	return ""
}
