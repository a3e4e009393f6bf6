package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadCommand is returned by [CheckArg] for an argument that would end the
// command line early or that a server would truncate.
var ErrBadCommand = errors.New("command argument contains CR, LF or NUL")

// ErrBadXText is matched by the errors of [DecodeXText] and
// [DecodeUTF8AddrXText].
var ErrBadXText = errors.New("invalid xtext")

// CheckArg returns an error wrapping [ErrBadCommand] if s cannot be placed in
// an SMTP command line because it contains CR, LF or NUL, and nil otherwise.
// Call it on every argument that comes from outside the client's code. The
// error names the offending byte and its offset but not the argument itself,
// which may be a credential.
func CheckArg(s string) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			return fmt.Errorf("%w: CR at offset %d", ErrBadCommand, i)
		case '\n':
			return fmt.Errorf("%w: LF at offset %d", ErrBadCommand, i)
		case 0:
			return fmt.Errorf("%w: NUL at offset %d", ErrBadCommand, i)
		}
	}
	return nil
}

const upperHex = "0123456789ABCDEF"

// xchar reports whether c stands for itself in xtext (RFC 3461 §4): the
// printable ASCII characters "!" to "~" except "+" and "=".
func xchar(c byte) bool {
	return c >= 33 && c <= 126 && c != '+' && c != '='
}

// XText encodes s as RFC 3461 §4 xtext, the form of the ENVID, ORCPT (with the
// rfc822 address type) and AUTH= parameter values. Every octet outside "!" to
// "~", and "+" and "=", is written as "+" and two upper-case hex digits, so
// the result is printable ASCII without spaces. Non-ASCII input is encoded
// octet by octet.
func XText(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !xchar(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if xchar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// DecodeXText reverses [XText]. It is strict, as a server should be: every
// character must be "!" to "~" other than "=", and every "+" must be followed
// by two upper-case hex digits. Errors wrap [ErrBadXText].
func DecodeXText(s string) (string, error) {
	if strings.IndexByte(s, '+') < 0 {
		for i := 0; i < len(s); i++ {
			if !xchar(s[i]) {
				return "", xtextError(s, i, "character not allowed in xtext")
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", xtextError(s, i, "incomplete hexchar")
			}
			hi, lo := unhexUpper(s[i+1]), unhexUpper(s[i+2])
			if hi < 0 || lo < 0 {
				return "", xtextError(s, i, "hexchar needs two upper-case hex digits")
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		case xchar(c):
			b.WriteByte(c)
		default:
			return "", xtextError(s, i, "character not allowed in xtext")
		}
	}
	return b.String(), nil
}

func xtextError(s string, i int, reason string) error {
	return fmt.Errorf("%w: %s at offset %d of %s", ErrBadXText, reason, i, quoteLine(s))
}

// unhexUpper returns the value of an upper-case hex digit, or -1.
func unhexUpper(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// qchar reports whether c stands for itself in utf-8-addr-xtext (RFC 6533 §3
// QCHAR): printable ASCII except SP, "\", "+" and "=".
func qchar(c byte) bool {
	return c >= 0x21 && c <= 0x7e && c != '\\' && c != '+' && c != '='
}

// UTF8AddrXText encodes an address as RFC 6533 utf-8-addr-xtext, the value
// that follows "utf-8;" in an ORCPT parameter (ORCPT=utf-8;...). It is 7-bit
// and safe whether or not the server offers SMTPUTF8. Printable ASCII stands
// for itself except "\", "+" and "=", which, like SP and control characters,
// become "\x{HH}"; every non-ASCII character becomes "\x{H...}" with its code
// point in upper-case hex without leading zeros (at least two digits).
// Invalid UTF-8 is encoded as U+FFFD.
func UTF8AddrXText(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !qchar(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 6*n)
	for _, r := range s {
		if r < utf8.RuneSelf && qchar(byte(r)) {
			b.WriteByte(byte(r))
			continue
		}
		b.WriteString(`\x{`)
		digits := 2
		for v := r >> 8; v > 0; v >>= 4 {
			digits++
		}
		for sh := 4 * (digits - 1); sh >= 0; sh -= 4 {
			b.WriteByte(upperHex[(r>>sh)&15])
		}
		b.WriteByte('}')
	}
	return b.String()
}

// DecodeUTF8AddrXText reverses [UTF8AddrXText]. It accepts both RFC 6533 forms,
// utf-8-addr-xtext and utf-8-addr-unitext (which carries non-ASCII characters
// as raw UTF-8), with hex digits in either case. It rejects SP, controls, "+",
// "=", a "\" that does not start a well-formed "\x{...}" escape, escapes of
// surrogates, of control characters or of values above U+10FFFF, and invalid
// UTF-8. Errors wrap
// [ErrBadXText].
func DecodeUTF8AddrXText(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			r, n, ok := embeddedChar(s[i:])
			if !ok {
				return "", xtextError(s, i, `malformed \x{...} escape`)
			}
			b.WriteRune(r)
			i += n
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				return "", xtextError(s, i, "invalid UTF-8")
			}
			b.WriteString(s[i : i+n])
			i += n
		case qchar(c):
			b.WriteByte(c)
			i++
		default:
			return "", xtextError(s, i, "character not allowed in utf-8-addr-xtext")
		}
	}
	return b.String(), nil
}

// embeddedChar reads one `\x{HEX}` escape at the start of s.
func embeddedChar(s string) (rune, int, bool) {
	if len(s) < 5 || s[1] != 'x' || s[2] != '{' {
		return 0, 0, false
	}
	var v rune
	i := 3
	for ; i < len(s) && s[i] != '}'; i++ {
		if i-3 >= 6 {
			return 0, 0, false
		}
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		default:
			return 0, 0, false
		}
	}
	if i == len(s) || i == 3 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
		return 0, 0, false
	}
	if v < 0x20 || v == 0x7f {
		// RFC 6533 requires the decoded value to be an RFC 6531 Mailbox,
		// which has no control characters; CR, LF and NUL in particular
		// must not come out of a parameter value.
		return 0, 0, false
	}
	return v, i + 1, true
}
