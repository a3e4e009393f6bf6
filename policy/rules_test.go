package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Rules
	}{
		{"empty", "", &Rules{}},
		{"comments and blank lines", "# local policy\n\n   \t\n# end\n", &Rules{}},
		{"default only", "default encrypt\n", &Rules{Default: Rule{Level: LevelEncrypt}}},
		{
			"every level, CRLF, tabs, trailing comment",
			"default dane\r\n" +
				"example.com\tdane-only\r\n" +
				".corp.example verify mail.corp.example relay.corp.example # two names\n" +
				"legacy.example insecure-opportunistic\n" +
				"lab.example insecure-plaintext\n" +
				"partner.example encrypt",
			&Rules{Domains: []Rule{
				{Domain: "example.com", Level: LevelDANEOnly},
				{Domain: ".corp.example", Level: LevelVerify, Names: []string{"mail.corp.example", "relay.corp.example"}},
				{Domain: "legacy.example", Level: LevelInsecureOpportunistic},
				{Domain: "lab.example", Level: LevelInsecurePlaintext},
				{Domain: "partner.example", Level: LevelEncrypt},
			}},
		},
		{
			"U-labels and case become A-labels, duplicate names merge",
			"Bücher.Example verify MX.Bücher.example mx.xn--bcher-kva.example\n",
			&Rules{Domains: []Rule{{Domain: "xn--bcher-kva.example", Level: LevelVerify, Names: []string{"mx.xn--bcher-kva.example"}}}},
		},
		{"verify without names", "example.net verify\n", &Rules{Domains: []Rule{{Domain: "example.net", Level: LevelVerify}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			again, err := ParseRules(strings.NewReader(got.String()))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("String does not read back: %q -> %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	long := "example.com verify " + strings.Repeat("a", MaxRuleLine) + ".example\n"
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no level", "example.com\n", 1, "needs a level"},
		{"default without a level", "default\nx.example dane\n", 1, "needs a level"},
		{"unknown level", "x.example dane\nx.example secure\n", 2, `unknown level "secure"`},
		{"Postfix's may is not a level", "x.example may\n", 1, `unknown level "may"`},
		{"Postfix's none is not a level", "\n\nx.example none\n", 3, `unknown level "none"`},
		{"names on a level other than verify", "x.example encrypt mx.x.example\n", 1, "only for level verify"},
		{"names on the default rule", "default dane mx.example\n", 1, "only for level verify"},
		{"space in a domain", "exa mple.com dane\n", 1, `unknown level "mple.com"`},
		{"invalid domain with level", "-bad-.example dane\n", 1, "rule domain"},
		{"IP literal", "192.0.2.1 encrypt\n", 1, "rule domain"},
		{"invalid name", "x.example verify under_score!.example\n", 1, "certificate name"},
		{"duplicate domain", "x.example dane\nX.EXAMPLE encrypt\n", 2, "first is on line 1"},
		{"duplicate default", "default dane\ndefault encrypt\n", 2, "a second rule for default"},
		{"NUL", "x.example dane\x00\n", 1, "control character"},
		{"bare CR", "x.example\rdane\n", 1, "control character"},
		{"line too long", "x.example dane\n" + long, 2, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules(strings.NewReader(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrRulesSyntax) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("policy: local rules, line %d: ", tt.line)) {
				t.Errorf("message %q", err)
			}
			if se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("line %d %q, want line %d containing %q", se.Line, se.Msg, tt.line, tt.msg)
			}
		})
	}
}

func TestRulesLookup(t *testing.T) {
	rules, err := ParseRules(strings.NewReader(`
default encrypt
example.com dane-only
.example.com verify
.b.example.com insecure-opportunistic
bücher.example insecure-plaintext
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain string
		want   Level
	}{
		{"example.com", LevelDANEOnly},
		{"EXAMPLE.COM.", LevelDANEOnly},
		{"a.example.com", LevelVerify},
		{"x.a.example.com", LevelVerify},
		{"b.example.com", LevelVerify}, // ".b.example.com" covers names below it only
		{"c.b.example.com", LevelInsecureOpportunistic},
		{"example.org", LevelEncrypt},
		{"bücher.example", LevelInsecurePlaintext},
		{"xn--bcher-kva.example", LevelInsecurePlaintext},
		{"not a domain", LevelEncrypt},
	}
	for _, tt := range tests {
		if got := rules.Lookup(tt.domain).Level; got != tt.want {
			t.Errorf("Lookup(%q) = %s, want %s", tt.domain, got, tt.want)
		}
	}
	var none *Rules
	if got := none.Lookup("example.com"); got.Level != LevelDANE {
		t.Errorf("nil Rules: %s, want dane", got.Level)
	}
	bad := &Rules{Default: Rule{Level: LevelVerify}, Domains: []Rule{{Domain: "x.example", Level: LevelEncrypt, Names: []string{"a.example"}}}}
	if got := bad.Lookup("x.example"); got.Level != LevelVerify {
		t.Errorf("invalid rules: %s, want the default", got.Level)
	}
	if _, err := bad.compile(); !errors.Is(err, ErrRulesSyntax) {
		t.Errorf("compile of invalid rules: %v", err)
	}
}

func TestLevelText(t *testing.T) {
	for l := LevelDANE; l <= LevelInsecurePlaintext; l++ {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("%s: %s -> %v %v", l, b, back, err)
		}
	}
	if _, err := Level(42).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown level succeeded")
	}
	if Level(42).String() != "Level(42)" {
		t.Error(Level(42).String())
	}
	var l Level
	if err := l.UnmarshalText([]byte("secure")); !errors.Is(err, ErrRulesSyntax) {
		t.Errorf("UnmarshalText(secure) = %v", err)
	}
}
