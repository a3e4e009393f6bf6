package smtpsecure

import (
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/policy"
)

// verifierFor builds a DANE verifier for the test: records in presentation
// form, the TLSA base domain and further reference identifiers.
func verifierFor(t *testing.T, records []string, serverName string, names ...string) *dane.Verifier {
	t.Helper()
	var rs []dane.TLSA
	for _, s := range records {
		r, err := dane.ParseTLSA(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	v, err := dane.NewVerifier(rs, serverName, names...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The rule of MXPool over every pair of what a session proved and what a
// message needs: a session never carries a message whose requirement is
// stronger than, or incomparable with, what it met (no authentication,
// the Web PKI for another name or against other roots, DANE against
// another TLSA set or other names, no REQUIRETLS); it carries every message
// whose requirement it met or that is weaker.
func TestMXPoolRuleEveryPair(t *testing.T) {
	const host = "mx.example.net"
	addr := netip.MustParseAddr("192.0.2.1")
	r1, r2 := x509.NewCertPool(), x509.NewCertPool()
	rec1 := "3 1 1 " + strings.Repeat("ab", 32)
	rec2 := "3 1 1 " + strings.Repeat("cd", 32) // published next to rec1 in a rollover
	v1 := verifierFor(t, []string{rec1}, host, "example.net")
	v2 := verifierFor(t, []string{rec1, rec2}, host, "example.net")
	v1n := verifierFor(t, []string{rec1}, host) // an insecure MX RRset: no next-hop name
	t1, n1 := daneIdentity(v1)
	t2, _ := daneIdentity(v2)
	_, n1n := daneIdentity(v1n)

	sessions := []struct {
		name string
		sec  mxSecurity
	}{
		{"plaintext", mxSecurity{}},
		{"TLS, not authenticated", mxSecurity{tls: true}},
		{"TLS, not authenticated, REQUIRETLS", mxSecurity{tls: true, requireTLS: true}},
		{"Web PKI for the host", mxSecurity{tls: true, auth: ServerAuthWebPKI, webPKI: []string{host}, roots: r1}},
		{"Web PKI for the host, REQUIRETLS", mxSecurity{tls: true, auth: ServerAuthWebPKI, webPKI: []string{host}, roots: r1, requireTLS: true}},
		{"Web PKI for another name", mxSecurity{tls: true, auth: ServerAuthWebPKI, webPKI: []string{"other.example.net"}, roots: r1}},
		{"Web PKI against other roots", mxSecurity{tls: true, auth: ServerAuthWebPKI, webPKI: []string{host}, roots: r2}},
		{"DANE", mxSecurity{tls: true, auth: ServerAuthDANEEE, tlsa: t1, daneNames: n1}},
		{"DANE, REQUIRETLS", mxSecurity{tls: true, auth: ServerAuthDANEEE, tlsa: t1, daneNames: n1, requireTLS: true}},
		{"DANE, rollover set", mxSecurity{tls: true, auth: ServerAuthDANEEE, tlsa: t2, daneNames: n1}},
		{"DANE, host name only", mxSecurity{tls: true, auth: ServerAuthDANETA, tlsa: t1, daneNames: n1n}},
		{"DANE and Web PKI, REQUIRETLS", mxSecurity{tls: true, auth: ServerAuthDANEEE, tlsa: t1, daneNames: n1, webPKI: []string{host}, roots: r1, requireTLS: true}},
	}
	req := func(tls policy.TLS, auth policy.Auth, names []string, v *dane.Verifier) *policy.Requirement {
		return &policy.Requirement{TLS: tls, Auth: auth, ServerName: host, WebPKINames: names, DANE: v}
	}
	wants := []struct {
		name string
		w    mxWant
	}{
		{"insecure-plaintext", mxWant{rq: req(policy.TLSInsecurePlaintext, policy.AuthNone, nil, nil)}},
		{"insecure-opportunistic", mxWant{rq: req(policy.TLSInsecureOpportunistic, policy.AuthNone, nil, nil)}},
		{"TLS", mxWant{rq: req(policy.TLSRequired, policy.AuthNone, nil, nil)}},
		{"Web PKI", mxWant{rq: req(policy.TLSRequired, policy.AuthWebPKI, []string{host}, nil), roots: r1}},
		{"Web PKI, two names", mxWant{rq: req(policy.TLSRequired, policy.AuthWebPKI, []string{"other.example.net", "MX.Example.NET"}, nil), roots: r1}},
		{"Web PKI, another name", mxWant{rq: req(policy.TLSRequired, policy.AuthWebPKI, []string{"other.example.net"}, nil), roots: r1}},
		{"Web PKI, other roots", mxWant{rq: req(policy.TLSRequired, policy.AuthWebPKI, []string{host}, nil), roots: r2}},
		{"DANE", mxWant{rq: req(policy.TLSRequired, policy.AuthDANE, nil, v1)}},
		{"DANE, rollover set", mxWant{rq: req(policy.TLSRequired, policy.AuthDANE, nil, v2)}},
		{"DANE, host name only", mxWant{rq: req(policy.TLSRequired, policy.AuthDANE, nil, v1n)}},
		{"DANE and Web PKI", mxWant{rq: req(policy.TLSRequired, policy.AuthDANEAndWebPKI, []string{host}, v1), roots: r1}},
		{"Web PKI, REQUIRETLS", mxWant{rq: req(policy.TLSRequired, policy.AuthWebPKI, []string{host}, nil), roots: r1, hostReqTLS: true, requireTLS: true}},
		{"DANE, REQUIRETLS", mxWant{rq: req(policy.TLSRequired, policy.AuthDANE, nil, v1), hostReqTLS: true, requireTLS: true}},
		{"DANE, REQUIRETLS, not allowed by the plan", mxWant{rq: req(policy.TLSRequired, policy.AuthDANE, nil, v1), requireTLS: true}},
		{"TLS, REQUIRETLS", mxWant{rq: req(policy.TLSRequired, policy.AuthNone, nil, nil), hostReqTLS: true, requireTLS: true}},
	}
	// Rows are the sessions, columns the wants, in the order above: x may
	// carry, . must not.
	grid := []string{
		"xx.............", // plaintext
		"xxx............", // TLS, not authenticated
		"xxx............", // TLS, not authenticated, REQUIRETLS
		"xxxxx..........", // Web PKI for the host
		"xxxxx......x...", // Web PKI for the host, REQUIRETLS
		"xxx.xx.........", // Web PKI for another name
		"xxx...x........", // Web PKI against other roots
		"xxx....x.......", // DANE
		"xxx....x....x..", // DANE, REQUIRETLS
		"xxx.....x......", // DANE, rollover set
		"xxx......x.....", // DANE, host name only
		"xxxxx..x..xxx..", // DANE and Web PKI, REQUIRETLS
	}
	if len(grid) != len(sessions) {
		t.Fatalf("%d grid rows for %d sessions", len(grid), len(sessions))
	}
	for i, s := range sessions {
		if len(grid[i]) != len(wants) {
			t.Fatalf("row %q has %d columns for %d wants", s.name, len(grid[i]), len(wants))
		}
		s.sec.host, s.sec.addr = host, addr
		for j, w := range wants {
			w.w.host, w.w.addr = host, addr
			want := grid[i][j] == 'x'
			if got := s.sec.meets(&w.w); got != want {
				t.Errorf("session %q for a message that needs %q: meets = %v, want %v", s.name, w.name, got, want)
			}
			// Never across hosts or addresses, whatever the security.
			other := w.w
			other.host = "mx2.example.net"
			if s.sec.meets(&other) {
				t.Errorf("session %q meets %q for another host", s.name, w.name)
			}
			other = w.w
			other.addr = netip.MustParseAddr("192.0.2.2")
			if s.sec.meets(&other) {
				t.Errorf("session %q meets %q at another address", s.name, w.name)
			}
		}
	}
}

// Equal requirements have one key, whatever the order and case of their
// names and records; requirements that differ have different keys.
func TestMXPoolRequirementKey(t *testing.T) {
	const host = "mx.example.net"
	rec1 := "3 1 1 " + strings.Repeat("ab", 32)
	rec2 := "2 1 1 " + strings.Repeat("cd", 32)
	a := verifierFor(t, []string{rec1, rec2}, host, "example.net")
	b := verifierFor(t, []string{rec2, rec1}, host, "example.net")
	same := []*policy.Requirement{
		{Auth: policy.AuthWebPKI, ServerName: host, WebPKINames: []string{"a.example", "b.example"}},
		{Auth: policy.AuthWebPKI, ServerName: "MX.example.net", WebPKINames: []string{"B.example", "a.example"}},
	}
	if requirementKey(same[0]) != requirementKey(same[1]) {
		t.Errorf("keys %q and %q differ", requirementKey(same[0]), requirementKey(same[1]))
	}
	if ka, kb := requirementKey(&policy.Requirement{Auth: policy.AuthDANE, DANE: a}), requirementKey(&policy.Requirement{Auth: policy.AuthDANE, DANE: b}); ka != kb {
		t.Errorf("DANE keys %q and %q differ", ka, kb)
	}
	differ := []*policy.Requirement{
		{},
		{TLS: policy.TLSInsecureOpportunistic},
		{TLS: policy.TLSInsecurePlaintext},
		{Auth: policy.AuthWebPKI, ServerName: host, WebPKINames: []string{host}},
		{Auth: policy.AuthWebPKI, ServerName: host, WebPKINames: []string{"other.example"}},
		{Auth: policy.AuthDANE, ServerName: host, DANE: a},
		{Auth: policy.AuthDANE, ServerName: host, DANE: verifierFor(t, []string{rec1}, host, "example.net")},
		{Auth: policy.AuthDANE, ServerName: host, DANE: verifierFor(t, []string{rec1, rec2}, host)},
		{Auth: policy.AuthDANEAndWebPKI, ServerName: host, DANE: a, WebPKINames: []string{host}},
	}
	seen := map[string]int{}
	for i, rq := range differ {
		k := requirementKey(rq)
		if j, ok := seen[k]; ok {
			t.Errorf("requirements %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
	}
}
