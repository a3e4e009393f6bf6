// Package testpki issues throwaway certificates for tests, examples and the
// interop lab: a root CA, intermediates, and leaves with whatever defect a
// test needs (expired, not yet valid, wrong name, wrong key usage, self-signed,
// missing intermediate).
//
// Keys are ECDSA P-256 unless RSA is asked for, so a whole certificate matrix
// is generated in milliseconds. Nothing here is fit for production use.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyType selects the public key algorithm of a generated certificate.
type KeyType int

const (
	// ECDSAP256 is the default: fast to generate and small.
	ECDSAP256 KeyType = iota
	// RSA2048 is for tests that need an RSA key.
	RSA2048
)

// CA is a certificate authority (a root or an intermediate) that signs
// certificates for tests.
type CA struct {
	// Cert is the CA's own certificate.
	Cert *x509.Certificate
	// Key signs what the CA issues.
	Key crypto.Signer
	// Parent is the issuing CA of an intermediate, nil for a root.
	Parent *CA
}

// Leaf is an issued end-entity certificate with its key and chain.
type Leaf struct {
	// Cert is the parsed end-entity certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// Chain holds the DER certificates the server sends: the leaf first, then
	// the intermediates (unless LeafOptions.OmitIntermediates was set).
	Chain [][]byte
}

// LeafOptions describes a certificate to issue. The zero value, with a DNS
// name added, gives a valid TLS server certificate for a day.
type LeafOptions struct {
	// CommonName is the subject CN; empty means the first DNS name.
	CommonName string
	// DNSNames and IPs are the subject alternative names.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter default to one hour ago and one day ahead.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage defaults to server authentication. NoExtKeyUsage leaves
	// the extension out entirely.
	ExtKeyUsage   []x509.ExtKeyUsage
	NoExtKeyUsage bool
	// OmitIntermediates leaves the issuing intermediates out of Chain, as a
	// misconfigured server would.
	OmitIntermediates bool
	// Key selects the key algorithm.
	Key KeyType
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("testpki: unknown key type %d", t)
	}
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

// NewCA returns a self-signed root CA named name, valid from an hour ago for
// ten years.
func NewCA(name string) (*CA, error) {
	return newCA(name, nil, 10)
}

// NewIntermediate returns a CA named name signed by ca, valid for five
// years.
func (ca *CA) NewIntermediate(name string) (*CA, error) {
	return newCA(name, ca, 5)
}

func newCA(name string, parent *CA, years int) (*CA, error) {
	key, err := newKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"smtpsecure test PKI"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(years, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	var issuer *x509.Certificate = tmpl
	var signer crypto.Signer = key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Parent: parent}, nil
}

// Pool returns a pool holding the root of ca's hierarchy only.
func (ca *CA) Pool() *x509.CertPool {
	root := ca
	for root.Parent != nil {
		root = root.Parent
	}
	p := x509.NewCertPool()
	p.AddCert(root.Cert)
	return p
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

func leafTemplate(o LeafOptions) (*x509.Certificate, error) {
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 && o.CommonName == "" {
		return nil, errors.New("testpki: a leaf needs a DNS name, an IP address or a common name")
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = now.Add(24 * time.Hour)
	}
	cn := o.CommonName
	if cn == "" && len(o.DNSNames) > 0 {
		cn = o.DNSNames[0]
	}
	eku := o.ExtKeyUsage
	if eku == nil && !o.NoExtKeyUsage {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if o.NoExtKeyUsage {
		eku = nil
	}
	return &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  eku,
	}, nil
}

// Issue signs a leaf certificate described by o.
func (ca *CA) Issue(o LeafOptions) (*Leaf, error) {
	leaf, err := newLeaf(o, ca)
	if err != nil || o.OmitIntermediates {
		return leaf, err
	}
	for c := ca; c.Parent != nil; c = c.Parent {
		leaf.Chain = append(leaf.Chain, c.Cert.Raw)
	}
	return leaf, nil
}

// SelfSigned returns a leaf that signs itself, as an unconfigured server has.
func SelfSigned(o LeafOptions) (*Leaf, error) {
	return newLeaf(o, nil)
}

// newLeaf makes a leaf signed by ca, or by itself when ca is nil.
func newLeaf(o LeafOptions, ca *CA) (*Leaf, error) {
	tmpl, err := leafTemplate(o)
	if err != nil {
		return nil, err
	}
	key, err := newKey(o.Key)
	if err != nil {
		return nil, err
	}
	var issuer *x509.Certificate = tmpl
	var signer crypto.Signer = key
	if ca != nil {
		issuer, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key, Chain: [][]byte{der}}, nil
}

// TLSCertificate returns the leaf in the form a tls.Config serves.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: l.Chain, PrivateKey: l.Key, Leaf: l.Cert}
}

// ServerConfig returns a TLS server configuration serving the leaf.
func (l *Leaf) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{l.TLSCertificate()}, MinVersion: tls.VersionTLS12}
}

// ChainPEM returns the chain as concatenated PEM certificates.
func (l *Leaf) ChainPEM() []byte {
	var out []byte
	for _, der := range l.Chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

// KeyPEM returns the private key in PKCS #8 PEM form.
func (l *Leaf) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
