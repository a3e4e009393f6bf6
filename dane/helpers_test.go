package dane

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// testResolver returns a resolver that asks only srv, with short timeouts.
func testResolver(srv *dnstest.Server) *Resolver {
	return &Resolver{Servers: []string{srv.Addr}, Timeout: 250 * time.Millisecond, Attempts: 1}
}

// pki is a three-level hierarchy for verification tests: root -> inter ->
// leaves.
type pki struct {
	root, inter *testpki.CA
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	root, err := testpki.NewCA("DANE Test Root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("DANE Test Intermediate")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{root: root, inter: inter}
}

// leaf issues a leaf from the intermediate.
func (p *pki) leaf(t testing.TB, o testpki.LeafOptions) *testpki.Leaf {
	t.Helper()
	l, err := p.inter.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// parseChain parses DER certificates.
func parseChain(t testing.TB, ders ...[]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// rec makes a TLSA record for cert or fails the test.
func rec(t testing.TB, cert *x509.Certificate, u Usage, s Selector, m MatchingType) TLSA {
	t.Helper()
	r, err := NewTLSA(cert, u, s, m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rr returns a TLSA record in zone file form at owner.
func rr(owner string, r TLSA) string {
	return fmt.Sprintf("%s. 300 IN TLSA %s", owner, r)
}
