package mtasts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// STD-48, STD-49, STD-50, STD-51: the policy grammar of RFC 8461 §3.2.
func TestParsePolicy(t *testing.T) {
	type want struct {
		mode   Mode
		maxAge time.Duration
		mx     []string
		exts   []Extension
	}
	tests := []struct {
		name string
		in   string
		want *want // nil = invalid
	}{
		{"lf", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
			&want{ModeEnforce, 86400 * time.Second, []string{"mx.example.com"}, nil}},
		{"crlf", "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 1\r\n",
			&want{ModeTesting, time.Second, []string{"mx.example.com"}, nil}},
		{"mixed terminators, last one omitted", "version: STSv1\r\nmode: testing\nmx: a.example\r\nmax_age: 1",
			&want{ModeTesting, time.Second, []string{"a.example"}, nil}},
		{"no space, tabs, trailing white space", "version:STSv1 \nmode:\tenforce\t\nmx:\t *.example.com  \nmax_age:0\t \n",
			&want{ModeEnforce, 0, []string{"*.example.com"}, nil}},
		{"any order", "max_age: 5\nmx: b.example\nmode: enforce\nmx: a.example\nversion: STSv1",
			&want{ModeEnforce, 5 * time.Second, []string{"b.example", "a.example"}, nil}},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 86400",
			&want{ModeNone, 86400 * time.Second, nil, nil}},
		{"none with mx", "version: STSv1\nmode: none\nmx: a.example\nmax_age: 86400",
			&want{ModeNone, 86400 * time.Second, []string{"a.example"}, nil}},
		{"max_age at the limit", "version: STSv1\nmode: none\nmax_age: 31557600",
			&want{ModeNone, MaxMaxAge, nil, nil}},
		{"max_age ten digits with leading zeros", "version: STSv1\nmode: none\nmax_age: 0000000001",
			&want{ModeNone, time.Second, nil, nil}},
		{"unknown keys ignored", "version: STSv1\nmode: none\nmax_age: 1\nfoo: bar baz\nMode: enforce\nx.y_z-1: ✓ utf-8",
			&want{ModeNone, time.Second, nil, []Extension{{"foo", "bar baz"}, {"Mode", "enforce"}, {"x.y_z-1", "✓ utf-8"}}}},
		{"first non-mx key wins", "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 10\nmax_age: 20\nversion: STSv2\nmx: a.example",
			&want{ModeTesting, 10 * time.Second, []string{"a.example"}, []Extension{{"mode", "enforce"}, {"max_age", "20"}, {"version", "STSv2"}}}},
		{"later duplicate may hold anything", "version: STSv1\nmode: none\nmax_age: 10\nmode: bogus\nmax_age: -1",
			&want{ModeNone, 10 * time.Second, nil, []Extension{{"mode", "bogus"}, {"max_age", "-1"}}}},
		{"mx in upper case and A-label", "version: STSv1\nmode: enforce\nmx: MX.Example.COM\nmx: *.xn--mller-kva.example\nmax_age: 1",
			&want{ModeEnforce, time.Second, []string{"MX.Example.COM", "*.xn--mller-kva.example"}, nil}},
		{"single-label mx", "version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1",
			&want{ModeEnforce, time.Second, []string{"localhost"}, nil}},

		{"empty", "", nil},
		{"only a newline", "\n", nil},
		{"no version", "mode: none\nmax_age: 1", nil},
		{"wrong version", "version: STSv2\nmode: none\nmax_age: 1", nil},
		{"version case", "version: stsv1\nmode: none\nmax_age: 1", nil},
		{"Version key case", "Version: STSv1\nmode: none\nmax_age: 1", nil},
		{"no mode", "version: STSv1\nmx: a.example\nmax_age: 1", nil},
		{"mode case", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1", nil},
		{"mode unknown", "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1", nil},
		{"no max_age", "version: STSv1\nmode: none", nil},
		{"max_age over the limit", "version: STSv1\nmode: none\nmax_age: 31557601", nil},
		{"max_age eleven digits", "version: STSv1\nmode: none\nmax_age: 00000000001", nil},
		{"max_age sign", "version: STSv1\nmode: none\nmax_age: +1", nil},
		{"max_age not a number", "version: STSv1\nmode: none\nmax_age: 1d", nil},
		{"max_age inner space", "version: STSv1\nmode: none\nmax_age: 1 0", nil},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1", nil},
		{"testing without mx", "version: STSv1\nmode: testing\nmax_age: 1", nil},
		{"empty mx", "version: STSv1\nmode: enforce\nmx:\nmax_age: 1", nil},
		{"mx U-label", "version: STSv1\nmode: enforce\nmx: müller.example\nmax_age: 1", nil},
		{"mx bad A-label", "version: STSv1\nmode: enforce\nmx: xn--zz.example\nmax_age: 1", nil},
		{"mx trailing dot", "version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1", nil},
		{"mx wildcard in the middle", "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1", nil},
		{"mx partial wildcard", "version: STSv1\nmode: enforce\nmx: mx*.example\nmax_age: 1", nil},
		{"mx bare wildcard", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1", nil},
		{"mx double wildcard", "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1", nil},
		{"mx underscore", "version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 1", nil},
		{"mx IP address", "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 1", nil},
		{"mx hyphen at label end", "version: STSv1\nmode: enforce\nmx: a-.example\nmax_age: 1", nil},
		{"mx inner space", "version: STSv1\nmode: enforce\nmx: a.example b.example\nmax_age: 1", nil},
		{"blank line", "version: STSv1\n\nmode: none\nmax_age: 1", nil},
		{"two trailing newlines", "version: STSv1\nmode: none\nmax_age: 1\n\n", nil},
		{"leading white space", " version: STSv1\nmode: none\nmax_age: 1", nil},
		{"space before colon", "version : STSv1\nmode: none\nmax_age: 1", nil},
		{"no colon", "version: STSv1\nmode none\nmax_age: 1", nil},
		{"empty key", "version: STSv1\n: x\nmode: none\nmax_age: 1", nil},
		{"bad key", "version: STSv1\n_x: y\nmode: none\nmax_age: 1", nil},
		{"long key", "version: STSv1\n" + strings.Repeat("k", 33) + ": y\nmode: none\nmax_age: 1", nil},
		{"empty extension", "version: STSv1\nmode: none\nmax_age: 1\nfoo:", nil},
		{"tab inside extension", "version: STSv1\nmode: none\nmax_age: 1\nfoo: a\tb", nil},
		{"bare CR", "version: STSv1\rmode: none\nmax_age: 1", nil},
		{"NUL", "version: STSv1\nmode: none\x00\nmax_age: 1", nil},
		{"invalid UTF-8", "version: STSv1\nmode: none\nmax_age: 1\nfoo: \xff", nil},
		{"too large", "version: STSv1\nmode: none\nmax_age: 1\nfoo: " + strings.Repeat("a", MaxPolicySize), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("ParsePolicy(%q) = %+v, want an error", tt.in, p)
				}
				if !errors.Is(err, ErrPolicyInvalid) || ResultType(err) != rfc8460.STSPolicyInvalid {
					t.Errorf("error %v does not match ErrPolicyInvalid / %s", err, rfc8460.STSPolicyInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%q): %v", tt.in, err)
			}
			got := want{p.Mode, p.MaxAge, p.MX, p.Extensions}
			if !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("ParsePolicy(%q) = %+v, want %+v", tt.in, got, *tt.want)
			}
			// String gives text that parses to the same policy.
			again, err := ParsePolicy([]byte(p.String()))
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("round trip of %q: %+v, %v", p.String(), again, err)
			}
		})
	}
}

func TestParsePolicySyntaxErrorLine(t *testing.T) {
	_, err := ParsePolicy([]byte("version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n"))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 3 || se.What != "policy" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("message %q does not name the line", err)
	}
	_, err = ParsePolicy([]byte(strings.Repeat("a", MaxPolicySize+1)))
	if !errors.Is(err, ErrPolicyTooLarge) || !errors.Is(err, ErrPolicyInvalid) {
		t.Errorf("oversize: %v", err)
	}
}

// The policy-string of a TLS-RPT report is the policy as served, one string
// per line (RFC 8460).
func TestPolicyStrings(t *testing.T) {
	p, err := ParsePolicy([]byte("version: STSv1\r\nmode: testing\r\nmx: *.mail.example\r\nmx: b.example\r\nmax_age: 86400\r\nx: y\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"version: STSv1", "mode: testing", "mx: *.mail.example", "mx: b.example", "max_age: 86400", "x: y"}
	if got := p.PolicyStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyStrings = %q, want %q", got, want)
	}
	built := &Policy{Mode: ModeEnforce, MaxAge: time.Hour, MX: []string{"a.example", "*.b.example"}}
	want = []string{"version: STSv1", "mode: enforce", "mx: a.example", "mx: *.b.example", "max_age: 3600"}
	if got := built.PolicyStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("built PolicyStrings = %q, want %q", got, want)
	}
	if (*Policy)(nil).PolicyStrings() != nil {
		t.Error("nil policy has policy strings")
	}
}

// STD-52, STD-96: exact or one-label wildcard matching on A-labels,
// case-insensitively, ignoring a trailing dot on the host.
func TestPolicyMatch(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mx1.example.com", "*.mail.example.net", "*.xn--mller-kva.example", "Upper.Example.ORG"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mx1.example.com", true},
		{"MX1.EXAMPLE.COM", true},
		{"mx1.example.com.", true},
		{"mx2.example.com", false},
		{"example.com", false},
		{"a.mail.example.net", true},
		{"A.Mail.Example.Net.", true},
		{"mail.example.net", false},     // the wildcard needs one label
		{"a.b.mail.example.net", false}, // and covers only one
		{"amail.example.net", false},
		{"x.müller.example", true}, // U-label host, A-label pattern
		{"x.xn--mller-kva.example", true},
		{"xn--caf-dma.müller.example", true}, // an A-label is a whole label
		{"x.muller.example", false},
		{"upper.example.org", true},
		{"", false},
		{"*.mail.example.net", false},
		{"a..mail.example.net", false},
		{"192.0.2.1", false},
	}
	for _, tt := range tests {
		if got := p.Match(tt.host); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if (*Policy)(nil).Match("mx1.example.com") {
		t.Error("nil policy matched")
	}
	// Patterns that are not A-label host names never match.
	bad := &Policy{MX: []string{"mx*.example.com", "*", "a.example.", "*.*.example.com", "bad name.example"}}
	for _, h := range []string{"mx1.example.com", "a.example", "x.y.example.com", "bad name.example"} {
		if bad.Match(h) {
			t.Errorf("invalid pattern matched %q", h)
		}
	}
}
