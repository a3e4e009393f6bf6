package policy

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRules checks that the rules parser never panics, accepts only
// rules that compile, and that what it accepts prints back to the same
// rules.
func FuzzParseRules(f *testing.F) {
	f.Add("default dane\nexample.com dane-only\n")
	f.Add(".corp.example verify mail.corp.example relay.corp.example # comment\r\n")
	f.Add("bücher.example insecure-opportunistic\nlab.example insecure-plaintext\n")
	f.Add("x.example encrypt mx.x.example\n")
	f.Add("default\tverify\n\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		rules, err := ParseRules(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, err := rules.compile(); err != nil {
			t.Fatalf("accepted rules do not compile: %v\n%q", err, in)
		}
		again, err := ParseRules(strings.NewReader(rules.String()))
		if err != nil {
			t.Fatalf("printed rules do not parse: %v\n%q", err, rules.String())
		}
		if !reflect.DeepEqual(again, rules) {
			t.Fatalf("round trip changed the rules:\n%+v\n%+v", rules, again)
		}
	})
}
