package scram

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxMessageLen bounds every SCRAM message either side parses. Real messages
// are well under 1 KiB; the bound keeps a hostile peer from making us hash or
// copy megabytes.
const maxMessageLen = 8 << 10

// attr is one attr-val of RFC 5802 section 7: ALPHA "=" value.
type attr struct {
	name  byte
	value string
}

// checkMessage applies the limits every message shares: bounded length and
// valid UTF-8 (value-char admits UTF-8 only).
func checkMessage(what string, msg []byte) error {
	if len(msg) == 0 {
		return fmt.Errorf("%w: empty %s", ErrMalformed, what)
	}
	if len(msg) > maxMessageLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, what, maxMessageLen)
	}
	if !utf8.Valid(msg) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, what)
	}
	return nil
}

// splitAttrs splits a comma-separated list of attr-val. Every attribute needs a
// one-letter name, "=", and a non-empty value without NUL.
func splitAttrs(what, s string) ([]attr, error) {
	parts := strings.Split(s, ",")
	attrs := make([]attr, 0, len(parts))
	for i, p := range parts {
		if len(p) < 3 || !isAlpha(p[0]) || p[1] != '=' {
			return nil, fmt.Errorf("%w: %s attribute %d is not of the form x=value", ErrMalformed, what, i+1)
		}
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("%w: %s attribute %q contains NUL", ErrMalformed, what, p[0])
		}
		attrs = append(attrs, attr{name: p[0], value: p[2:]})
	}
	return attrs, nil
}

// checkExtensions applies RFC 5802 section 5.1 to attributes in extension
// position: "m" (mandatory extension) fails the exchange, unknown optional
// extensions are ignored, and repeating an attribute that has a fixed place
// is malformed.
func checkExtensions(what string, attrs []attr, fixed string) error {
	for _, a := range attrs {
		if a.name == 'm' {
			return fmt.Errorf("%w: %s carries m=", ErrExtension, what)
		}
		if strings.IndexByte(fixed, a.name) >= 0 {
			return fmt.Errorf("%w: %s repeats attribute %q", ErrMalformed, what, a.name)
		}
	}
	return nil
}

// isPrintable reports whether s is 1*printable: ASCII 0x21-0x7E except ",".
func isPrintable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7E || s[i] == ',' {
			return false
		}
	}
	return true
}

// decodeBase64 decodes the RFC 5802 base64 production: the standard alphabet
// with padding, canonical, and nothing else (encoding/base64 would skip CR and
// LF, which the grammar does not allow).
func decodeBase64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '/' && c != '=' {
			return nil, fmt.Errorf("%w: character %q in base64", ErrMalformed, c)
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %v", ErrMalformed, err)
	}
	return b, nil
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// parsePositNumber parses posit-number (%x31-39 *DIGIT) up to limit. It
// returns ok=false for anything that is not a posit-number and over=true
// for a well-formed number above limit.
func parsePositNumber(s string, limit int) (n int, over, ok bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false, false
		}
	}
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
		if n > limit {
			return 0, true, true
		}
	}
	return n, false, true
}

var saslnameEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

// escapeSASLName encodes a prepared name as saslname: "=" becomes "=3D" and
// "," becomes "=2C" (RFC 5802 section 5.1).
func escapeSASLName(s string) string { return saslnameEscaper.Replace(s) }

// unescapeSASLName decodes saslname. An "=" not followed by "2C" or "3D"
// fails, as RFC 5802 section 5.1 requires of the server.
func unescapeSASLName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty name", ErrMalformed)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in name", ErrMalformed)
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: \"=\" in a name not followed by 2C or 3D (invalid-username-encoding)", ErrMalformed)
		}
		i += 2
	}
	return b.String(), nil
}
