package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/smtpsecure/smtpsecure"
)

// dkimOptions are the DKIM flags of send and deliver.
type dkimOptions struct {
	Domain   string // --dkim-domain: d=, where the public key is published
	Selector string // --dkim-selector: s=, the key's name under _domainkey
	KeyFile  string // --dkim-key: a PEM private key, RSA or Ed25519
}

// enabled reports whether any DKIM flag was given.
func (o dkimOptions) enabled() bool { return o.Domain != "" || o.Selector != "" || o.KeyFile != "" }

// newDKIMSigner checks the DKIM flags and loads the key into the library's
// signer, which send and deliver both use (through smtpsecure.SignMessage
// and Deliverer.Signer). The library checks the rest when it signs (the
// RSA key's size, the selector's form), before anything is sent.
func newDKIMSigner(o dkimOptions) (*smtpsecure.DKIMSigner, error) {
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
	return &smtpsecure.DKIMSigner{Domain: o.Domain, Selector: o.Selector, Key: key}, nil
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
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign DKIM: use RSA or Ed25519", key)
}

// dkimAlgorithm names the signing algorithm of s, for reports.
func dkimAlgorithm(s *smtpsecure.DKIMSigner) string {
	if _, ok := s.Key.Public().(ed25519.PublicKey); ok {
		return "ed25519-sha256"
	}
	return "rsa-sha256"
}

// signMessage signs the message (CRLF line ends) with the library's path,
// as deliver's Deliverer.Signer does, and returns what to send: the
// DKIM-Signature field, then data.
func signMessage(ctx context.Context, s *smtpsecure.DKIMSigner, data []byte) (*io.SectionReader, error) {
	if s == nil {
		return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))), nil
	}
	return smtpsecure.SignMessage(ctx, s, bytes.NewReader(data))
}
