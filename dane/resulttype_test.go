package dane

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// STD-87, STD-97: the result type of a DANE-TA failure is that of its x509
// cause, classified once for the whole module (internal/rfc8460): expired
// is certificate-expired, a chain that does not reach the anchor is
// certificate-not-trusted, and a certificate not yet valid or for clients
// only is validation-failure (they were certificate-expired and
// certificate-not-trusted before the one classification).
func TestVerifyErrorResultTypeFromChain(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	chainOf := func(o testpki.LeafOptions) []*x509.Certificate {
		o.DNSNames = []string{"mx.example.com"}
		return parseChain(t, p.leaf(t, o).Chain...)
	}
	now := time.Now()
	cases := []struct {
		name    string
		record  TLSA
		chain   []*x509.Certificate
		want    string
		errWant error
	}{
		{"expired leaf", rec(t, p.inter.Cert, DANETA, SelectorSPKI, MatchSHA256),
			chainOf(testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}), rfc8460.CertificateExpired, ErrExpired},
		{"expired leaf, anchor key from DNS", rec(t, p.inter.Cert, DANETA, SelectorSPKI, MatchFull),
			chainOf(testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})[:1], rfc8460.CertificateExpired, ErrExpired},
		{"leaf not yet valid", rec(t, p.inter.Cert, DANETA, SelectorSPKI, MatchSHA256),
			chainOf(testpki.LeafOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}), rfc8460.ValidationFailure, ErrExpired},
		{"leaf for clients only", rec(t, p.inter.Cert, DANETA, SelectorSPKI, MatchSHA256),
			chainOf(testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), rfc8460.ValidationFailure, ErrChain},
		{"anchor of another hierarchy", rec(t, other.root.Cert, DANETA, SelectorCert, MatchFull),
			chainOf(testpki.LeafOptions{}), rfc8460.CertificateNotTrusted, ErrChain},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier([]TLSA{tc.record}, "mx.example.com")
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tc.chain)
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, tc.errWant) {
				t.Fatalf("Verify = %v, want a VerifyError wrapping %v", err, tc.errWant)
			}
			if got := ve.ReportResultType(); got != tc.want {
				t.Errorf("ReportResultType = %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}
