package testpki

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func TestChainVerifies(t *testing.T) {
	root, err := NewCA("root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("inter")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		opts    LeafOptions
		host    string
		wantErr any
	}{
		{"valid", LeafOptions{DNSNames: []string{"mx.test.example"}}, "mx.test.example", nil},
		{"wrong name", LeafOptions{DNSNames: []string{"other.test.example"}}, "mx.test.example", x509.HostnameError{}},
		{"expired", LeafOptions{DNSNames: []string{"mx.test.example"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, "mx.test.example", x509.CertificateInvalidError{}},
		{"missing intermediate", LeafOptions{DNSNames: []string{"mx.test.example"}, OmitIntermediates: true}, "mx.test.example", x509.UnknownAuthorityError{}},
		{"client auth only", LeafOptions{DNSNames: []string{"mx.test.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, "mx.test.example", x509.CertificateInvalidError{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := inter.Issue(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			inters := x509.NewCertPool()
			for _, der := range leaf.Chain[1:] {
				c, _ := x509.ParseCertificate(der)
				inters.AddCert(c)
			}
			_, err = leaf.Cert.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: root.Pool(), Intermediates: inters})
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			case x509.HostnameError:
				if !errors.As(err, &want) {
					t.Fatalf("Verify = %v, want HostnameError", err)
				}
			case x509.CertificateInvalidError:
				if !errors.As(err, &want) {
					t.Fatalf("Verify = %v, want CertificateInvalidError", err)
				}
			case x509.UnknownAuthorityError:
				if !errors.As(err, &want) {
					t.Fatalf("Verify = %v, want UnknownAuthorityError", err)
				}
			}
		})
	}
}

func TestSelfSignedNotTrusted(t *testing.T) {
	root, _ := NewCA("root")
	leaf, err := SelfSigned(LeafOptions{DNSNames: []string{"mx.test.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "mx.test.example", Roots: root.Pool()}); err == nil {
		t.Fatal("self-signed leaf verified against an unrelated root")
	}
	if _, err := leaf.KeyPEM(); err != nil {
		t.Fatal(err)
	}
	if len(leaf.ChainPEM()) == 0 || len(root.PEM()) == 0 {
		t.Fatal("empty PEM")
	}
}
