package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// TestDKIMSignatureVerifies signs with RSA and Ed25519 keys, in PKCS #1 and
// PKCS #8 files, and verifies the result as a receiver would, with the
// public key published at selector._domainkey.domain.
func TestDKIMSignatureVerifies(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	rsaPub, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, alg, record string
		pem               []byte
	}{
		{"RSA PKCS1", "rsa-sha256", "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub),
			pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{"RSA PKCS8", "rsa-sha256", "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub), pkcs8(rsaKey)},
		{"Ed25519", "ed25519-sha256", "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub), pkcs8(edKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(keyFile, tc.pem, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := newDKIMSigner(dkimOptions{Domain: "example.org", Selector: "sel", KeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			if dkimAlgorithm(s) != tc.alg {
				t.Errorf("algorithm %s, want %s", dkimAlgorithm(s), tc.alg)
			}
			msg, err := readMessage(strings.NewReader("From: a@example.org\nTo: b@example.net\nSubject: hi\nSubject: twice\nX-Other: not signed\n\nBody line\n.\nno dot-stuffing here\n"), true)
			if err != nil {
				t.Fatal(err)
			}
			sr, err := signMessage(context.Background(), s, msg.bytes())
			if err != nil {
				t.Fatal(err)
			}
			signed, err := io.ReadAll(sr)
			if err != nil {
				t.Fatal(err)
			}
			verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{
				LookupTXT: func(name string) ([]string, error) {
					if name != "sel._domainkey.example.org" {
						t.Errorf("key looked up at %s", name)
					}
					return []string{tc.record}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(verifs) != 1 || verifs[0].Err != nil {
				t.Fatalf("verification: %+v", verifs)
			}
			v := verifs[0]
			if v.Domain != "example.org" {
				t.Errorf("d=%s", v.Domain)
			}
			h := strings.Join(v.HeaderKeys, ":")
			// Both Subject fields are signed, so neither can be removed or
			// replaced; X-Other is not in RFC 6376's list.
			if want := "From:Subject:Subject:To"; h != want {
				t.Errorf("signed fields %s, want %s", h, want)
			}
		})
	}
}

func TestDKIMKeyErrors(t *testing.T) {
	dir := t.TempDir()
	ecKey := filepath.Join(dir, "ec.pem")
	os.WriteFile(ecKey, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), 0o600)
	for _, tc := range []struct {
		opts dkimOptions
		want string
		code int
	}{
		{dkimOptions{Domain: "example.org"}, "together", exitUsage},
		{dkimOptions{Domain: "exa mple.org", Selector: "s", KeyFile: ecKey}, "invalid --dkim-domain", exitUsage},
		{dkimOptions{Domain: "example.org", Selector: "s", KeyFile: filepath.Join(dir, "missing")}, "reading the DKIM key", exitConfig},
		{dkimOptions{Domain: "example.org", Selector: "s", KeyFile: ecKey}, `"EC PRIVATE KEY" is not a private key in PKCS #1 or PKCS #8 form`, exitConfig},
	} {
		_, err := newDKIMSigner(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != tc.code {
			t.Errorf("%+v: error %v (exit %d), want %q (exit %d)", tc.opts, err, exitCode(err), tc.want, tc.code)
		}
	}
	if s, err := newDKIMSigner(dkimOptions{}); s != nil || err != nil {
		t.Errorf("no flags: %v, %v; want no signer", s, err)
	}
}
