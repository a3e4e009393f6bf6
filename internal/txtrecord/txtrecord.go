// Package txtrecord holds the pieces of grammar that the TXT records of
// MTA-STS (RFC 8461 §3.1, "v=STSv1; id=…") and TLS-RPT (RFC 8460 §3,
// "v=TLSRPTv1; rua=…") share: their version prefix, white space, and the
// extension fields both allow. Each package parses its own fields.
package txtrecord

import "strings"

// HasVersion reports whether a TXT record claims to be of version v (such
// as "v=STSv1"): it starts with v followed by the end, ";" or white space.
// Both RFCs say to discard records not starting with v and ";"; this also
// keeps "v=STSv1 ;", which their grammars allow, and so lets the parser
// reject a bare "v=STSv1" instead of ignoring it.
func HasVersion(txt, v string) bool {
	if !strings.HasPrefix(txt, v) {
		return false
	}
	rest := txt[len(v):]
	return rest == "" || rest[0] == ';' || IsWSP(rest[0])
}

// IsWSP reports whether c is white space (WSP: space or tab).
func IsWSP(c byte) bool { return c == ' ' || c == '\t' }

// TrimWSP removes leading white space.
func TrimWSP(s string) string { return strings.TrimLeft(s, " \t") }

// IsAlpha reports whether c is an ASCII letter (ALPHA).
func IsAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// IsDigit reports whether c is an ASCII digit (DIGIT).
func IsDigit(c byte) bool { return c >= '0' && c <= '9' }

// ValidExtName checks an extension field name:
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func ValidExtName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	if !IsAlpha(s[0]) && !IsDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !IsAlpha(c) && !IsDigit(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// ValidExtValue checks an extension field value of a TXT record:
// 1*(%x21-3A / %x3C / %x3E-7E), visible ASCII without "=" and ";".
func ValidExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '=' || c == ';' {
			return false
		}
	}
	return true
}
