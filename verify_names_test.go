package smtpsecure

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// The unexported path MX delivery takes for a local verify rule that names
// several certificate names: the chain is verified as crypto/tls verifies
// it (roots, dates, key usage), then the certificate must be valid for one
// of the names instead of the server name. It widens the names and skips
// nothing.
func TestDialerWebPKINames(t *testing.T) {
	ca, _ := pki(t)
	other, err := testpki.NewCA("another root")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{testHost},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	valid := newServer(t, nil)
	old := newServer(t, func(s *smtptest.Server) { s.TLSConfig = expired.ServerConfig() })
	tests := []struct {
		name   string
		srv    *smtptest.Server
		names  []string
		roots  *x509.CertPool
		reason DowngradeReason // 0: verified
	}{
		{"second name matches", valid, []string{"other.example", testHost}, ca.Pool(), 0},
		{"no name matches", valid, []string{"other.example", "third.example"}, ca.Pool(), ReasonCertificateHostMismatch},
		{"untrusted chain", valid, []string{testHost}, other.Pool(), ReasonCertificateUntrusted},
		{"untrusted chain before names", valid, []string{"other.example"}, other.Pool(), ReasonCertificateUntrusted},
		{"expired", old, []string{"other.example", testHost}, ca.Pool(), ReasonCertificateExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dialerFor(t, tt.srv)
			d.Host = "sni.example" // the SNI; the names are what is verified
			d.TLSConfig.RootCAs = tt.roots
			d.webPKINames = tt.names
			c, err := d.Dial(ctxT(t))
			if tt.reason == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.ServerAuth() != ServerAuthWebPKI || c.verifiedAs != testHost {
					t.Errorf("ServerAuth %s, verified as %q", c.ServerAuth(), c.verifiedAs)
				}
				if cs, _ := c.TLSConnectionState(); cs.ServerName != "sni.example" {
					t.Errorf("SNI %q", cs.ServerName)
				}
				c.Quit(ctxT(t))
				return
			}
			var dg *DowngradeError
			if !errors.As(err, &dg) || dg.Reason != tt.reason {
				t.Fatalf("Dial: %v, want a *DowngradeError (%s)", err, tt.reason)
			}
			for _, s := range tt.srv.Sessions() {
				assertNothingInPlaintext(t, s.Plaintext())
			}
		})
	}
}
