package smtptest

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// parseCommandLine splits one command line (without its CRLF) into the verb
// and the argument. The verb is the text before the first space, upper-cased
// (ASCII letters only); the argument is everything after that space, exactly
// as received.
func parseCommandLine(line string) Command {
	verb, arg, _ := strings.Cut(line, " ")
	return Command{Verb: asciiUpper(verb), Arg: arg, Line: line}
}

// asciiUpper upper-cases ASCII letters and leaves every other byte alone, so
// the result has the same length as s.
func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// errSyntax is the reason a MAIL or RCPT argument was rejected with 501.
type errSyntax string

func (e errSyntax) Error() string { return string(e) }

// param is one ESMTP parameter of MAIL or RCPT: keyword upper-cased, value as
// received ("" when the parameter has no value).
type param struct {
	Key, Value string
	HasValue   bool
}

// parsePathArg parses the argument of MAIL ("FROM:") or RCPT ("TO:"):
// prefix, then "<" path ">", then zero or more " keyword[=value]". The path is
// returned without angle brackets. Quoted local parts may contain ">" and
// spaces. The syntax is that of RFC 5321 section 4.1.2, read strictly: no
// space after the colon, single spaces between parameters, no trailing space.
func parsePathArg(arg, prefix string) (path string, params []param, err error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, errSyntax("expected " + prefix + "<address>")
	}
	rest := arg[len(prefix):]
	if rest == "" || rest[0] != '<' {
		return "", nil, errSyntax("expected \"<\" right after " + prefix)
	}
	end, err := pathEnd(rest)
	if err != nil {
		return "", nil, err
	}
	path = rest[1:end]
	if err := checkPath(path); err != nil {
		return "", nil, err
	}
	rest = rest[end+1:]
	if rest == "" {
		return path, nil, nil
	}
	if rest[0] != ' ' {
		return "", nil, errSyntax("expected a space after the address")
	}
	params, err = parseParams(rest[1:])
	if err != nil {
		return "", nil, err
	}
	return path, params, nil
}

// pathEnd returns the index of the ">" that closes the path starting with
// "<" at s[0], skipping quoted strings and quoted pairs.
func pathEnd(s string) (int, error) {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i, nil
		case !quoted && c == '<':
			return 0, errSyntax("\"<\" inside the address")
		}
	}
	return 0, errSyntax("address not closed by \">\"")
}

// checkPath rejects control characters, unquoted spaces and invalid UTF-8
// in a path.
func checkPath(p string) error {
	if !utf8.ValidString(p) {
		return errSyntax("address is not valid UTF-8")
	}
	quoted := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return errSyntax("control character in the address")
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ' ':
			return errSyntax("space in the address")
		}
	}
	if quoted {
		return errSyntax("unterminated quoted string in the address")
	}
	return nil
}

// parseParams parses space-separated ESMTP parameters (RFC 5321 section
// 4.1.2 esmtp-param): keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
// value = 1*(%d33-60 / %d62-126), or UTF-8 (RFC 6531). Keywords are
// upper-cased; a keyword given twice is an error.
func parseParams(s string) ([]param, error) {
	if s == "" {
		return nil, errSyntax("empty parameter")
	}
	var out []param
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return nil, errSyntax("empty parameter (extra space)")
		}
		key, value, hasValue := strings.Cut(tok, "=")
		if !validKeyword(key) {
			return nil, errSyntax("invalid parameter keyword")
		}
		if hasValue && !validParamValue(value) {
			return nil, errSyntax("invalid value of parameter " + asciiUpper(key))
		}
		key = asciiUpper(key)
		for _, p := range out {
			if p.Key == key {
				return nil, errSyntax("parameter " + key + " given twice")
			}
		}
		out = append(out, param{Key: key, Value: value, HasValue: hasValue})
	}
	return out, nil
}

func validKeyword(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validParamValue(v string) bool {
	if v == "" || !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return true
}

// isASCII reports whether s has no octet >= 0x80.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// validMailbox reports whether a non-empty path looks like a mailbox: a
// local part and a domain separated by the last "@" outside quotes, after an
// optional source route ("@a,@b:"), which is accepted and kept.
func validMailbox(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '@' {
		i := strings.IndexByte(p, ':')
		if i < 0 {
			return false
		}
		p = p[i+1:]
	}
	at := -1
	quoted := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '@':
			at = i
		}
	}
	return at > 0 && at < len(p)-1
}

// parseBDAT parses the argument of BDAT: chunk-size [SP "LAST"]
// (RFC 3030 section 2).
func parseBDAT(arg string) (size int64, last bool, err error) {
	sz, rest, hasRest := strings.Cut(arg, " ")
	if sz == "" || len(sz) > 18 {
		return 0, false, errors.New("chunk size missing or too long")
	}
	for i := 0; i < len(sz); i++ {
		if sz[i] < '0' || sz[i] > '9' {
			return 0, false, errors.New("chunk size is not a number")
		}
		size = size*10 + int64(sz[i]-'0')
	}
	if hasRest {
		if !strings.EqualFold(rest, "LAST") {
			return 0, false, errors.New("expected LAST after the chunk size")
		}
		last = true
	}
	return size, last, nil
}

// authMechanisms returns the SASL mechanisms listed in an extension list,
// upper-cased, from "AUTH m1 m2" lines and the old "AUTH=m1 m2" form.
func authMechanisms(ext []string) []string {
	var out []string
	for _, line := range ext {
		var rest string
		switch {
		case len(line) >= 5 && strings.EqualFold(line[:5], "AUTH "):
			rest = line[5:]
		case len(line) >= 5 && strings.EqualFold(line[:5], "AUTH="):
			rest = line[5:]
		case strings.EqualFold(line, "AUTH"):
		default:
			continue
		}
		for _, m := range strings.Fields(rest) {
			m = asciiUpper(m)
			dup := false
			for _, o := range out {
				dup = dup || o == m
			}
			if !dup {
				out = append(out, m)
			}
		}
	}
	return out
}

// extKeyword returns the keyword of an EHLO extension line, upper-cased.
func extKeyword(line string) string {
	k, _, _ := strings.Cut(line, " ")
	k, _, _ = strings.Cut(k, "=")
	return asciiUpper(k)
}

// hasExt reports whether the extension list has keyword (case-insensitive).
func hasExt(ext []string, keyword string) bool {
	for _, l := range ext {
		if extKeyword(l) == keyword {
			return true
		}
	}
	return false
}
