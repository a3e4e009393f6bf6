package main

import (
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/dane"
)

// TestDNSSECSource: check says where DNSSEC verdicts come from. No query
// is sent: CanValidate only looks at the configuration.
func TestDNSSECSource(t *testing.T) {
	for _, tc := range []struct {
		r          *dane.Resolver
		kind, text string
	}{
		{&dane.Resolver{Servers: []string{"192.0.2.1"}, Validator: &dane.Validator{}}, "in-library", "validated by smtpsecure itself"},
		{&dane.Resolver{Servers: []string{"127.0.0.1:53"}}, "trusted-resolver", "trusted validating resolver 127.0.0.1:53"},
		{&dane.Resolver{Servers: []string{"192.0.2.1"}, TrustedServers: []string{"192.0.2.1"}}, "trusted-resolver", "192.0.2.1"},
		{&dane.Resolver{Servers: []string{"192.0.2.1"}}, "none", "not checked: no trusted validating resolver among 192.0.2.1"},
	} {
		kind, text := dnssecSource(tc.r)
		if kind != tc.kind || !strings.Contains(text, tc.text) {
			t.Errorf("%+v: %s %q, want %s %q", tc.r.Servers, kind, text, tc.kind, tc.text)
		}
	}
}
