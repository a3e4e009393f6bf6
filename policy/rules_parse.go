package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of ParseRules.
const (
	// MaxRuleLine is the longest line ParseRules accepts, in octets.
	MaxRuleLine = 4096
	// MaxRules is the most rules ParseRules accepts in one text.
	MaxRules = 100000
)

// SyntaxError reports a line of local rules that ParseRules cannot read.
// It matches ErrRulesSyntax.
type SyntaxError struct {
	// Line is the 1-based line number.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error names the line and what is wrong with it.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("policy: local rules, line %d: %s", e.Line, e.Msg)
}

// Unwrap returns ErrRulesSyntax.
func (e *SyntaxError) Unwrap() error { return ErrRulesSyntax }

// ParseRules reads local rules in their text form: one rule per line,
//
//	default dane
//	example.com dane-only
//	.corp.example verify mail.corp.example relay.corp.example
//	legacy.example insecure-opportunistic
//
// Each line is a target, a level and, for level verify only, the names of
// which the certificate must be valid for one. The target is "default", a
// domain (U-labels or A-labels) or a domain with a leading dot for every
// domain below it. "#" starts a comment; blank lines are ignored; fields
// are separated by spaces or tabs. A target may appear once. Without a
// "default" line the default is level dane.
//
// Lines are at most MaxRuleLine octets and there are at most MaxRules
// rules. Errors are *SyntaxError values, or the reader's error.
func ParseRules(r io.Reader) (*Rules, error) {
	rules := &Rules{}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxRuleLine+2)
	sc.Split(scanLines)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		if strings.ContainsAny(text, "\x00\r\v\f") {
			return nil, &SyntaxError{Line: line, Msg: "control character in line"}
		}
		fields := strings.FieldsFunc(text, func(c rune) bool { return c == ' ' || c == '\t' })
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("%q needs a level after it", fields[0])}
		}
		lvl, err := ParseLevel(fields[1])
		if err != nil {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("unknown level %q", fields[1])}
		}
		rule := Rule{Level: lvl, Names: fields[2:]}
		if len(rule.Names) == 0 {
			rule.Names = nil
		}
		isDefault := fields[0] == "default"
		if !isDefault {
			rule.Domain = fields[0]
		}
		checked, err := checkRule(rule, isDefault)
		if err != nil {
			return nil, &SyntaxError{Line: line, Msg: strings.TrimPrefix(err.Error(), ErrRulesSyntax.Error()+": ")}
		}
		key := checked.Domain
		if isDefault {
			key = "default"
		}
		if prev, dup := seen[key]; dup {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("a second rule for %s (the first is on line %d)", key, prev)}
		}
		seen[key] = line
		if isDefault {
			rules.Default = checked
			continue
		}
		if len(rules.Domains) == MaxRules {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("more than %d rules", MaxRules)}
		}
		rules.Domains = append(rules.Domains, checked)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SyntaxError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d octets", MaxRuleLine)}
		}
		return nil, fmt.Errorf("policy: reading local rules: %w", err)
	}
	return rules, nil
}

// scanLines splits at LF, dropping one CR before it.
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	if atEOF {
		return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
	}
	return 0, nil, nil
}
