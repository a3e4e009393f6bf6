package smtpsecure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// dkimTestKey is a signing key and the DNS record of its public key.
type dkimTestKey struct {
	name   string
	key    crypto.Signer
	record string // the TXT record at <selector>._domainkey.<domain>
	alg    string
}

var (
	dkimKeysOnce sync.Once
	dkimKeys     []dkimTestKey
)

// testDKIMKeys returns an RSA (2048 bits) and an Ed25519 key, made once.
func testDKIMKeys(t testing.TB) []dkimTestKey {
	t.Helper()
	dkimKeysOnce.Do(func() {
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
		if err != nil {
			panic(err)
		}
		edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		dkimKeys = []dkimTestKey{
			{"RSA", rsaKey, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), "rsa-sha256"},
			{"Ed25519", edKey, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub), "ed25519-sha256"},
		}
	})
	return dkimKeys
}

// verifyDKIM verifies a received message as a receiver does, with
// go-msgauth's verifier and the key record published at
// selector._domainkey.domain, and returns the one verification.
func verifyDKIM(t testing.TB, data []byte, domain, selector, record string) *dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != selector+"._domainkey."+domain {
				return nil, errors.New("no such record: " + name)
			}
			return []string{record}, nil
		},
	})
	if err != nil {
		t.Fatalf("verifying: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d signatures, want 1", len(vs))
	}
	return vs[0]
}

// signedBytes signs msg with s through SignMessage and returns the result
// as a server stores it: with the line ends a session sends.
func signedBytes(t *testing.T, s MessageSigner, msg string) []byte {
	t.Helper()
	r, err := SignMessage(context.Background(), s, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	dw := wire.NewDataWriter(&b, wire.DataOptions{})
	if _, err := io.Copy(dw, r); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A DKIM signature made by DKIMSigner verifies as a receiver checks it,
// with RSA and Ed25519, whatever the message's line ends, dots at line
// starts, UTF-8 in the header or a folded field; and it covers the default
// fields the message has, each as often as it has it.
func TestDKIMSignerVerifies(t *testing.T) {
	messages := []struct {
		name, msg, wantH string
	}{
		{"CRLF", "From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\nX-Mailer: not signed\r\n\r\nHello.\r\n",
			"h=From:Subject:To;"},
		{"LF only", "From: a@example.org\nSubject: lf\nMessage-ID: <1@example.org>\n\nLine one\nLine two\n",
			"h=From:Subject:Message-ID;"},
		{"dots and no final line end", "From: a@example.org\r\n\r\n.\r\n..\r\n.hidden\r\nlast", "h=From;"},
		{"repeated and folded fields", "From: a@example.org\r\nSubject: one\r\nSubject: two\r\nTo: b@example.net,\r\n c@example.net\r\n\r\nBody\r\n",
			"h=From:Subject:Subject:To;"},
		{"UTF-8 header, empty body", "From: Jürgen <j@example.org>\r\nSubject: Grüße\r\n\r\n", "h=From:Subject;"},
	}
	for _, k := range testDKIMKeys(t) {
		for _, m := range messages {
			t.Run(k.name+"/"+m.name, func(t *testing.T) {
				s := &DKIMSigner{Domain: "example.org", Selector: "mail", Key: k.key}
				signed := signedBytes(t, s, m.msg)
				sig, _, _ := strings.Cut(string(signed), "\r\n\r\n")
				sig = strings.ReplaceAll(strings.ReplaceAll(sig, "\r\n", ""), " ", "")
				for _, want := range []string{"DKIM-Signature:", "a=" + k.alg + ";", "d=example.org;", "s=mail;", "c=relaxed/relaxed;", m.wantH} {
					if !strings.Contains(sig, want) {
						t.Errorf("signature %q lacks %q", sig, want)
					}
				}
				// What a server stores: the message as sent, CRLF line ends.
				v := verifyDKIM(t, signed, "example.org", "mail", k.record)
				if v.Err != nil || v.Domain != "example.org" {
					t.Errorf("verification: domain %q, error %v", v.Domain, v.Err)
				}
			})
		}
	}
}

// The signature breaks when a signed field is changed, and, with
// HeaderFields listing Subject twice, when a Subject is added (RFC 6376
// §8.15); a field the default list does not sign can be added.
func TestDKIMSignerProtectsFields(t *testing.T) {
	k := testDKIMKeys(t)[1]
	msg := "From: a@example.org\r\nSubject: original\r\n\r\nBody.\r\n"
	def := signedBytes(t, &DKIMSigner{Domain: "example.org", Selector: "mail", Key: k.key}, msg)
	over := signedBytes(t, &DKIMSigner{Domain: "example.org", Selector: "mail", Key: k.key, HeaderFields: []string{"From", "Subject", "Subject"}}, msg)
	tests := []struct {
		name   string
		signed []byte
		change func(string) string
		ok     bool
	}{
		{"unchanged", def, func(s string) string { return s }, true},
		{"Subject changed", def, func(s string) string { return strings.Replace(s, "original", "changed", 1) }, false},
		{"body changed", def, func(s string) string { return strings.Replace(s, "Body.", "Bode.", 1) }, false},
		{"unsigned field added", def, func(s string) string { return strings.Replace(s, "\r\n\r\n", "\r\nX-Spam: no\r\n\r\n", 1) }, true},
		{"oversigned, unchanged", over, func(s string) string { return s }, true},
		{"oversigned, Subject added", over, func(s string) string { return strings.Replace(s, "\r\n\r\n", "\r\nSubject: added\r\n\r\n", 1) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifyDKIM(t, []byte(tt.change(string(tt.signed))), "example.org", "mail", k.record)
			if (v.Err == nil) != tt.ok {
				t.Errorf("verification error %v, want ok=%v", v.Err, tt.ok)
			}
		})
	}
}

// Mistakes in a DKIMSigner's fields are errors matching ErrInvalidOptions,
// inside a *SignError, that say what to fix.
func TestDKIMSignerOptions(t *testing.T) {
	ed := testDKIMKeys(t)[1].key
	// A 512-bit public key, for the check alone: Go refuses to make one.
	small := publicOnlySigner{&rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 511), E: 65537}}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    *DKIMSigner
		want string
	}{
		{"no domain", &DKIMSigner{Selector: "s", Key: ed}, "DKIMSigner.Domain"},
		{"one-label domain", &DKIMSigner{Domain: "localhost", Selector: "s", Key: ed}, "DKIMSigner.Domain"},
		{"no selector", &DKIMSigner{Domain: "example.org", Key: ed}, "DKIMSigner.Selector"},
		{"selector with a semicolon", &DKIMSigner{Domain: "example.org", Selector: "a;b", Key: ed}, "DKIMSigner.Selector"},
		{"no key", &DKIMSigner{Domain: "example.org", Selector: "s"}, "DKIMSigner.Key is nil"},
		{"short RSA key", &DKIMSigner{Domain: "example.org", Selector: "s", Key: small}, "the RSA key has 512 bits"},
		{"ECDSA key", &DKIMSigner{Domain: "example.org", Selector: "s", Key: ec}, "cannot sign DKIM: use RSA or Ed25519"},
		{"HeaderFields without From", &DKIMSigner{Domain: "example.org", Selector: "s", Key: ed, HeaderFields: []string{"Subject"}}, "must name From"},
		{"HeaderFields with a bad name", &DKIMSigner{Domain: "example.org", Selector: "s", Key: ed, HeaderFields: []string{"From", "Sub ject"}}, "not a header field name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignMessage(context.Background(), tt.s, strings.NewReader("From: a@example.org\r\n\r\nx\r\n"))
			var se *SignError
			if !errors.As(err, &se) || !errors.Is(err, ErrSign) || !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a *SignError matching ErrInvalidOptions that says %q", err, tt.want)
			}
		})
	}
	// An IDN domain is signed in A-labels.
	signed := signedBytes(t, &DKIMSigner{Domain: "bücher.example", Selector: "s", Key: ed}, "From: a@example.org\r\n\r\nx\r\n")
	if !bytes.Contains(signed, []byte("d=xn--bcher-kva.example;")) {
		t.Errorf("IDN domain not in A-labels: %q", signed)
	}
}

// A message DKIM cannot sign is a *SignError that is not about the
// options: no From field, no end to the header, a header over the limit.
func TestDKIMSignerMessageErrors(t *testing.T) {
	s := &DKIMSigner{Domain: "example.org", Selector: "s", Key: testDKIMKeys(t)[1].key}
	tests := []struct{ name, msg, want string }{
		{"no From", "Subject: x\r\n\r\nBody\r\n", "no From field"},
		{"no empty line", "From: a@example.org\r\nSubject: x\r\n", "no empty line after its header"},
		{"header too large", "From: a@example.org\r\nX-Big: " + strings.Repeat("x", maxDKIMHeader) + "\r\n\r\n", "header is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignMessage(context.Background(), s, strings.NewReader(tt.msg))
			var se *SignError
			if !errors.As(err, &se) || errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a *SignError saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "nothing was sent") || !strings.Contains(err.Error(), "d=example.org, s=s") {
				t.Errorf("message %q does not say which signature failed and that nothing was sent", err)
			}
		})
	}
}

// publicOnlySigner is a crypto.Signer with a public key and no signing.
type publicOnlySigner struct{ pub crypto.PublicKey }

func (p publicOnlySigner) Public() crypto.PublicKey { return p.pub }

func (p publicOnlySigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("this key cannot sign")
}
