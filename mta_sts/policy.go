package mtasts

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
)

// Mode is the policy mode (RFC 8461 §5).
type Mode string

const (
	// ModeEnforce: deliver only to MX hosts that match the policy and
	// present a valid certificate over TLS.
	ModeEnforce Mode = "enforce"
	// ModeTesting: check as for enforce and report failures, but deliver
	// anyway.
	ModeTesting Mode = "testing"
	// ModeNone: behave as if the domain had no policy. Domains publish it
	// to withdraw an earlier policy from caches.
	ModeNone Mode = "none"
)

// MaxMaxAge is the largest max_age a policy may have: 31557600 seconds,
// about one year (RFC 8461 §3.2).
const MaxMaxAge = 31557600 * time.Second

// MaxPolicySize is the largest policy body this package accepts: 64 KiB
// (RFC 8461 §3.3).
const MaxPolicySize = 64 * 1024

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	// Mode is enforce, testing or none.
	Mode Mode
	// MaxAge is how long the policy may be cached after it was fetched.
	MaxAge time.Duration
	// MX holds the "mx" patterns as written in the policy: host names in
	// A-label form, optionally starting with "*." to cover exactly one
	// extra left-most label.
	MX []string
	// Extensions holds fields this package does not interpret, and later
	// duplicates of version, mode and max_age (the first occurrence wins).
	Extensions []Extension
	// Lines holds the policy text as served, one string per line without
	// the terminator. It is what a TLS-RPT report carries as policy-string
	// (RFC 8460). Policies built in code may leave it empty.
	Lines []string
}

// ParsePolicy parses a policy body by the grammar of RFC 8461 §3.2:
// "key:" *WSP value lines ended by LF or CRLF (the last terminator is
// optional), trailing white space allowed; version STSv1, mode and max_age
// exactly as specified (case-sensitive), at least one mx unless the mode is
// none. Unknown keys are kept as extensions, a repeated version, mode or
// max_age is ignored (the first one wins), blank lines and lines starting
// with white space are errors. mx values must be A-labels: a U-label makes
// the policy invalid.
//
// Errors are *SyntaxError values matching ErrPolicyInvalid, or
// ErrPolicyTooLarge for a body over MaxPolicySize.
func ParsePolicy(body []byte) (*Policy, error) {
	if len(body) > MaxPolicySize {
		return nil, newKindError(fmt.Sprintf("policy is %d octets, the limit is %d", len(body), MaxPolicySize), nil, ErrPolicyTooLarge, ErrPolicyInvalid)
	}
	fail := func(line int, format string, args ...any) (*Policy, error) {
		return nil, &SyntaxError{What: whatPolicy, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(body) {
		return fail(0, "not valid UTF-8")
	}
	text := string(body)
	if text == "" {
		return fail(0, "empty")
	}
	// The last terminator is optional: drop it, then every remaining LF
	// separates two fields.
	switch {
	case strings.HasSuffix(text, "\r\n"):
		text = text[:len(text)-2]
	case strings.HasSuffix(text, "\n"):
		text = text[:len(text)-1]
	}
	lines := strings.Split(text, "\n")
	p := &Policy{Lines: make([]string, 0, len(lines))}
	var haveVersion, haveMode, haveMaxAge bool
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		p.Lines = append(p.Lines, line)
		if line == "" {
			return fail(n, "empty line")
		}
		for j := 0; j < len(line); j++ {
			if c := line[j]; c < 0x20 && c != '\t' || c == 0x7f {
				return fail(n, "control character 0x%02x", c)
			}
		}
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fail(n, "no \":\" in %q", clip(line))
		}
		if !txtrecord.ValidExtName(key) {
			return fail(n, "invalid key %q", clip(key))
		}
		value := strings.TrimRight(txtrecord.TrimWSP(rest), " \t")
		if value == "" {
			return fail(n, "no value for %q", key)
		}
		switch {
		case key == "version" && !haveVersion:
			if value != "STSv1" {
				return fail(n, "version %q is not STSv1", clip(value))
			}
			haveVersion = true
		case key == "mode" && !haveMode:
			switch m := Mode(value); m {
			case ModeEnforce, ModeTesting, ModeNone:
				p.Mode = m
			default:
				return fail(n, "mode %q is not enforce, testing or none", clip(value))
			}
			haveMode = true
		case key == "max_age" && !haveMaxAge:
			if len(value) > 10 || !allDigits(value) {
				return fail(n, "max_age %q is not 1 to 10 digits", clip(value))
			}
			secs, err := strconv.ParseUint(value, 10, 64)
			if err != nil || secs > uint64(MaxMaxAge/time.Second) {
				return fail(n, "max_age %s is over the maximum %d", value, uint64(MaxMaxAge/time.Second))
			}
			p.MaxAge = time.Duration(secs) * time.Second
			haveMaxAge = true
		case key == "mx":
			if err := checkMXPattern(value); err != "" {
				return fail(n, "mx %q: %s", clip(value), err)
			}
			p.MX = append(p.MX, value)
		default:
			if !validPolicyExtValue(value) {
				return fail(n, "invalid value for %q", key)
			}
			p.Extensions = append(p.Extensions, Extension{Key: key, Value: value})
		}
	}
	switch {
	case !haveVersion:
		return fail(0, "no version field")
	case !haveMode:
		return fail(0, "no mode field")
	case !haveMaxAge:
		return fail(0, "no max_age field")
	case len(p.MX) == 0 && p.Mode != ModeNone:
		return fail(0, "no mx field in mode %s", p.Mode)
	}
	return p, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !txtrecord.IsDigit(s[i]) {
			return false
		}
	}
	return true
}

// validPolicyExtValue checks sts-policy-vchar [*(%x20 / sts-policy-vchar)
// sts-policy-vchar]: visible ASCII or UTF-8 and inner spaces, no tab.
func validPolicyExtValue(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// checkMXPattern checks ["*."] Domain with Domain an RFC 5321 domain in
// A-labels, and returns what is wrong or "".
func checkMXPattern(v string) string {
	base := strings.TrimPrefix(v, "*.")
	if base == "" {
		return "empty domain"
	}
	if !idn.IsASCII(base) {
		return "not in A-label form (U-labels are not allowed in a policy)"
	}
	if strings.HasSuffix(base, ".") {
		return "trailing dot"
	}
	for _, l := range strings.Split(base, ".") {
		if l == "" {
			return "empty label"
		}
		for j := 0; j < len(l); j++ {
			if c := l[j]; !txtrecord.IsAlpha(c) && !txtrecord.IsDigit(c) && c != '-' {
				return fmt.Sprintf("invalid character %q", c)
			}
		}
	}
	a, err := idn.ToASCII(base)
	if err != nil {
		return err.Error()
	}
	if a != strings.ToLower(base) {
		return "not a canonical A-label"
	}
	return ""
}

// String returns the policy text: the lines as served, or for a policy
// built in code its canonical form. Lines end in LF.
func (p *Policy) String() string {
	return strings.Join(p.PolicyStrings(), "\n") + "\n"
}

// PolicyStrings returns the policy-string array for a TLS-RPT report
// (RFC 8460): one string per line of the policy as served, or, for a
// policy built in code, its canonical lines with one "mx" line per pattern.
func (p *Policy) PolicyStrings() []string {
	if p == nil {
		return nil
	}
	if len(p.Lines) > 0 {
		return append([]string(nil), p.Lines...)
	}
	out := []string{
		"version: STSv1",
		"mode: " + string(p.Mode),
	}
	for _, mx := range p.MX {
		out = append(out, "mx: "+mx)
	}
	out = append(out, "max_age: "+strconv.FormatInt(int64(p.MaxAge/time.Second), 10))
	for _, e := range p.Extensions {
		out = append(out, e.Key+": "+e.Value)
	}
	return out
}

// Match reports whether the MX host name host is allowed by the policy's mx
// patterns (RFC 8461 §4.1): equal to a pattern, or one label followed by the
// rest of a "*." pattern ("*.example.com" covers mx.example.com, not
// example.com nor a.b.example.com). Both sides are compared as lower-case
// A-labels, so U-labels, upper case and a trailing dot on host do not
// matter; a name that is not a valid host name matches nothing. A nil
// policy matches nothing.
func (p *Policy) Match(host string) bool {
	if p == nil {
		return false
	}
	h, err := idn.ToASCII(host)
	if err != nil {
		return false
	}
	for _, pat := range p.MX {
		wild := strings.HasPrefix(pat, "*.")
		base := strings.TrimPrefix(pat, "*.")
		b, err := idn.ToASCII(base)
		if err != nil || strings.HasSuffix(base, ".") {
			continue
		}
		if !wild {
			if h == b {
				return true
			}
			continue
		}
		if i := strings.IndexByte(h, '.'); i > 0 && h[i+1:] == b {
			return true
		}
	}
	return false
}

// clone returns a deep copy of p.
func (p *Policy) clone() *Policy {
	if p == nil {
		return nil
	}
	c := *p
	c.MX = append([]string(nil), p.MX...)
	c.Extensions = append([]Extension(nil), p.Extensions...)
	c.Lines = append([]string(nil), p.Lines...)
	return &c
}
