package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// dkimOptions are the DKIM flags of send and deliver.
type dkimOptions struct {
	Domain   string // --dkim-domain: d=, where the public key is published
	Selector string // --dkim-selector: s=, the key's name under _domainkey
	KeyFile  string // --dkim-key: a PEM private key, RSA or Ed25519
}

// enabled reports whether any DKIM flag was given.
func (o dkimOptions) enabled() bool { return o.Domain != "" || o.Selector != "" || o.KeyFile != "" }

// dkimSignedFields are the header fields signed when present: those RFC 6376
// §5.4.1 says SHOULD be signed, and the fields that say what the body is
// and which message it is (Message-ID, MIME-Version, Content-Type,
// Content-Transfer-Encoding), so that none of them can be changed or added
// without breaking the signature. From is always signed.
var dkimSignedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// minRSABits is the smallest RSA key accepted for signing: RFC 8301 §3.2
// makes verifiers ignore signatures with shorter keys.
const minRSABits = 1024

// dkimSigner signs messages for one domain and selector.
type dkimSigner struct {
	opts dkimOptions
	key  crypto.Signer
}

// newDKIMSigner checks the DKIM flags and loads the key.
func newDKIMSigner(o dkimOptions) (*dkimSigner, error) {
	if !o.enabled() {
		return nil, nil
	}
	if o.Domain == "" || o.Selector == "" || o.KeyFile == "" {
		return nil, usageError("DKIM signing needs --dkim-domain, --dkim-selector and --dkim-key together")
	}
	if strings.ContainsAny(o.Domain+o.Selector, " ;=\r\n\t") {
		return nil, usageError("invalid --dkim-domain or --dkim-selector")
	}
	pemBytes, err := os.ReadFile(expandTilde(o.KeyFile))
	if err != nil {
		return nil, configError("reading the DKIM key: %v", err)
	}
	key, err := parseDKIMKey(pemBytes)
	if err != nil {
		return nil, configError("the DKIM key %s: %v", o.KeyFile, err)
	}
	return &dkimSigner{opts: o, key: key}, nil
}

// parseDKIMKey reads a PEM private key: PKCS #8 (RSA or Ed25519), or
// PKCS #1 RSA ("RSA PRIVATE KEY", what openssl genrsa writes).
func parseDKIMKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: the file must hold a PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key in PKCS #1 or PKCS #8 form", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits; verifiers ignore signatures with fewer than %d (RFC 8301), and 2048 is recommended", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign DKIM: use RSA or Ed25519", key)
}

// algorithm names the signing algorithm, for messages.
func (s *dkimSigner) algorithm() string {
	if _, ok := s.key.(ed25519.PrivateKey); ok {
		return "ed25519-sha256"
	}
	return "rsa-sha256"
}

// sign returns the message (CRLF line ends) with a DKIM-Signature field
// added at the top, relaxed/relaxed canonicalization, signing the fields of
// dkimSignedFields that the message has.
func (s *dkimSigner) sign(msg *message) ([]byte, error) {
	var keys []string
	for _, name := range dkimSignedFields {
		if name == "From" || msg.has(name) {
			keys = append(keys, name)
		}
	}
	if !msg.has("From") {
		return nil, codef(exitDataErr, "DKIM signing needs a From field in the message")
	}
	// A field that appears twice is signed as often as it appears.
	for _, f := range msg.Fields {
		if n := countFold(msg, f.Name); n > 1 && slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(k, f.Name) }) {
			for range n - countFoldIn(keys, f.Name) {
				keys = append(keys, f.Name)
			}
		}
	}
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg.bytes()), &dkim.SignOptions{
		Domain:                 s.opts.Domain,
		Selector:               s.opts.Selector,
		Signer:                 s.key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	})
	if err != nil {
		return nil, codef(exitSoftware, "DKIM signing: %v", err)
	}
	return out.Bytes(), nil
}

func countFold(m *message, name string) int { return len(m.get(name)) }

func countFoldIn(list []string, name string) int {
	n := 0
	for _, s := range list {
		if strings.EqualFold(s, name) {
			n++
		}
	}
	return n
}
