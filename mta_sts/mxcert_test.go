package mtasts

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// STD-53: the MX certificate must chain to a trusted root, be unexpired and
// carry a SAN DNS-ID matching the MX host (wildcard only as the whole
// left-most label; never the CN).
func TestVerifyMXCertificate(t *testing.T) {
	ca, err := testpki.NewCA("mx root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := ca.NewIntermediate("mx intermediate")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("other root")
	if err != nil {
		t.Fatal(err)
	}
	chain := func(l *testpki.Leaf, err error) []*x509.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []*x509.Certificate
		for _, der := range l.Chain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	now := time.Now()
	tests := []struct {
		name  string
		host  string
		chain []*x509.Certificate
		want  string // "" = valid
	}{
		{"valid", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})), ""},
		{"valid, host in upper case with dot", "MX.Example.COM.", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})), ""},
		{"wildcard", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"*.example.com"}})), ""},
		{"wildcard covers one label only", "a.mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"*.example.com"}})), rfc8460.CertificateHostMismatch},
		{"partial wildcard", "mx1.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx*.example.com"}})), rfc8460.CertificateHostMismatch},
		{"IDN host", "mx.müller.example", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.xn--mller-kva.example"}})), ""},
		{"wrong name", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"other.example.com"}})), rfc8460.CertificateHostMismatch},
		{"CN only", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{CommonName: "mx.example.com", IPs: nil, DNSNames: nil})), rfc8460.CertificateHostMismatch},
		{"expired", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})), rfc8460.CertificateExpired},
		{"not yet valid", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})), rfc8460.ValidationFailure},
		{"untrusted root", "mx.example.com", chain(other.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})), rfc8460.CertificateNotTrusted},
		{"self-signed", "mx.example.com", chain(testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})), rfc8460.CertificateNotTrusted},
		{"missing intermediate", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, OmitIntermediates: true})), rfc8460.CertificateNotTrusted},
		{"client auth only", "mx.example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})), rfc8460.ValidationFailure}, // was certificate-not-trusted before the one classification (internal/rfc8460)
		{"no certificate", "mx.example.com", nil, rfc8460.ValidationFailure},
		{"invalid host", "mx..example.com", chain(inter.Issue(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})), rfc8460.ValidationFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyMXCertificate(tt.host, tt.chain, ca.Pool(), now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("VerifyMXCertificate: %v", err)
				}
				return
			}
			var ce *CertificateError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CertificateError", err)
			}
			if ce.ReportResultType() != tt.want {
				t.Errorf("result type %q, want %q (%v)", ce.ReportResultType(), tt.want, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "MX host") {
				t.Errorf("message %q", err)
			}
			var hostErr x509.HostnameError
			if tt.want == rfc8460.CertificateHostMismatch && !errors.As(err, &hostErr) {
				t.Errorf("host mismatch does not wrap x509.HostnameError: %v", err)
			}
		})
	}
}

func TestMXVerifyOptions(t *testing.T) {
	ca, _ := testpki.NewCA("root")
	leaf, _ := ca.Issue(testpki.LeafOptions{DNSNames: []string{"mx.xn--mller-kva.example"}})
	opts, err := MXVerifyOptions("MX.müller.example.", ca.Pool(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if opts.DNSName != "mx.xn--mller-kva.example" {
		t.Errorf("DNSName = %q", opts.DNSName)
	}
	if _, err := leaf.Cert.Verify(opts); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := MXVerifyOptions("[192.0.2.1]", nil, nil, time.Time{}); err == nil {
		t.Error("IP literal accepted")
	}
}
