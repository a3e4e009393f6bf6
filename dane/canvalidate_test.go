package dane

import (
	"os"
	"path/filepath"
	"testing"
)

// STD-64: DNSSEC answers are trusted only from a trusted upstream;
// CanValidate tells a caller in advance whether any answer can be secure.
func TestCanValidate(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	local := conf("local.conf", "nameserver 127.0.0.1\noptions trust-ad\n")
	remote := conf("remote.conf", "nameserver 192.0.2.53\noptions trust-ad\n")
	mixed := conf("mixed.conf", "nameserver 192.0.2.53\nnameserver ::1\n")
	empty := conf("empty.conf", "# no nameserver\n")

	tests := []struct {
		name string
		r    *Resolver
		want bool
	}{
		{"loopback IPv4 upstream", &Resolver{Servers: []string{"127.0.0.1:53"}}, true},
		{"loopback IPv6 upstream", &Resolver{Servers: []string{"[::1]:5353"}}, true},
		{"remote upstream, untrusted", &Resolver{Servers: []string{"192.0.2.53"}}, false},
		{"remote upstream listed as trusted", &Resolver{Servers: []string{"192.0.2.53:53"}, TrustedServers: []string{"192.0.2.53"}}, true},
		{"trust names another server", &Resolver{Servers: []string{"192.0.2.53"}, TrustedServers: []string{"192.0.2.54"}}, false},
		{"one trusted among untrusted", &Resolver{Servers: []string{"192.0.2.53", "127.0.0.53"}}, true},
		{"resolv.conf with loopback, trust-ad ignored but loopback trusted", &Resolver{ResolvConf: local}, true},
		{"resolv.conf with remote only, trust-ad not honoured", &Resolver{ResolvConf: remote}, false},
		{"resolv.conf with remote and loopback", &Resolver{ResolvConf: mixed}, true},
		{"resolv.conf without nameservers", &Resolver{ResolvConf: empty}, false},
		{"missing resolv.conf", &Resolver{ResolvConf: filepath.Join(dir, "missing.conf")}, false},
		{"invalid upstream", &Resolver{Servers: []string{"resolver.example"}}, false},
		{"invalid trusted server", &Resolver{Servers: []string{"127.0.0.1"}, TrustedServers: []string{"x"}}, false},
		{"loopback made untrusted (test seam)", &Resolver{Servers: []string{"127.0.0.1"}, loopbackUntrusted: true}, false},
		{"validating in-library through a remote upstream", &Resolver{Servers: []string{"192.0.2.53"}, Validator: &Validator{}}, true},
		{"validating in-library, resolv.conf without nameservers", &Resolver{ResolvConf: empty, Validator: &Validator{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.CanValidate(); got != tt.want {
				t.Errorf("CanValidate() = %v, want %v", got, tt.want)
			}
		})
	}
}
