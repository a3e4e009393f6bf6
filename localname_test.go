package smtpsecure

import (
	"strings"
	"testing"
)

// The default EHLO name of MX delivery is the host's FQDN, from its host
// name or /etc/hosts, and never a localhost name.
func TestFQDNFrom(t *testing.T) {
	hosts := []byte(`# comment
127.0.0.1	localhost
127.0.1.1	mail.example.org mail # the usual Debian line
192.0.2.7	box box.lan.example
::1	ip6-localhost
127.0.0.1	short
127.0.0.1	lh localhost.localdomain
`)
	for _, tt := range []struct{ hostname, want string }{
		{"mx.example.net", "mx.example.net"},
		{"MX.Example.NET.", "mx.example.net"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"mail", "mail.example.org"},
		{"box", "box.lan.example"},
		{"short", ""},
		{"lh", ""},
		{"localhost", ""},
		{"localhost.localdomain", ""},
		{"nothere", ""},
		{"192.0.2.1", ""},
	} {
		if got := fqdnFrom(tt.hostname, hosts); got != tt.want {
			t.Errorf("fqdnFrom(%q) = %q, want %q", tt.hostname, got, tt.want)
		}
	}
}

// Without LocalName, EHLO names the host by its FQDN or, without one, by
// the address literal of the connection (RFC 5321 §4.1.4), never localhost.
func TestDeliverDefaultLocalName(t *testing.T) {
	w := newMiniWorld(t, miniHost{name: "mx1.mini.example"})
	d := w.deliverer(nil)
	d.LocalName = ""
	_, msg := testMessage(t, "a@mini.example")
	if r := deliver(t, d, &Envelope{To: []string{"a@mini.example"}}, msg)[0]; r.Outcome != OutcomeDelivered {
		t.Fatal(r.Err)
	}
	want := hostFQDN()
	if want == "" {
		want = "[127.0.0.1]"
	}
	for _, s := range w.servers["mx1.mini.example"].Sessions() {
		for _, c := range s.Commands() {
			if c.Verb == "EHLO" && (c.Arg != want || strings.Contains(c.Arg, "localhost")) {
				t.Errorf("EHLO %s, want EHLO %s", c.Arg, want)
			}
		}
	}
}
