package mxworld

import (
	"fmt"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// pki holds the world's certificate authorities.
type pki struct {
	web       *testpki.CA // the Web PKI root: RootCAs
	other     *testpki.CA // a CA outside RootCAs
	daneInter *testpki.CA // under a private root, named by DANE-TA records
}

func newPKI() (*pki, error) {
	web, err := testpki.NewCA("mxworld Web PKI root")
	if err != nil {
		return nil, err
	}
	other, err := testpki.NewCA("mxworld rogue CA")
	if err != nil {
		return nil, err
	}
	daneRoot, err := testpki.NewCA("mxworld private DANE root")
	if err != nil {
		return nil, err
	}
	daneInter, err := daneRoot.NewIntermediate("mxworld private DANE intermediate")
	if err != nil {
		return nil, err
	}
	return &pki{web: web, other: other, daneInter: daneInter}, nil
}

// leaf issues the certificate of an MX host named names (the server's own
// name first) for the recipient domain domain.
func (p *pki) leaf(kind Cert, names []string, domain string) (*testpki.Leaf, error) {
	o := testpki.LeafOptions{DNSNames: names}
	expired := func() {
		o.NotBefore = time.Now().Add(-30 * 24 * time.Hour)
		o.NotAfter = time.Now().Add(-24 * time.Hour)
	}
	switch kind {
	case CertValid:
		return p.web.Issue(o)
	case CertWrongName:
		o.DNSNames = []string{"wrong-name.example"}
		return p.web.Issue(o)
	case CertExpired:
		expired()
		return p.web.Issue(o)
	case CertSelfSigned:
		return testpki.SelfSigned(o)
	case CertSelfSignedExpired:
		expired()
		return testpki.SelfSigned(o)
	case CertOtherCA:
		return p.other.Issue(o)
	case CertDANETA:
		return p.daneInter.Issue(o)
	case CertDANETAWrongName:
		o.DNSNames = []string{"wrong-name.example"}
		return p.daneInter.Issue(o)
	case CertDANETADomain:
		o.DNSNames = []string{domain}
		return p.daneInter.Issue(o)
	}
	return nil, fmt.Errorf("unknown certificate kind %d", kind)
}

// tlsa returns the TLSA record of kind for a host presenting leaf, or
// false for TLSANone.
func (p *pki) tlsa(kind TLSA, leaf *testpki.Leaf) (dane.TLSA, bool, error) {
	switch kind {
	case TLSANone:
		return dane.TLSA{}, false, nil
	case TLSAEE, TLSABogus:
		t, err := dane.NewTLSA(leaf.Cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
		return t, true, err
	case TLSAEEMismatch:
		stranger, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"stranger.example"}})
		if err != nil {
			return dane.TLSA{}, false, err
		}
		t, err := dane.NewTLSA(stranger.Cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
		return t, true, err
	case TLSATA:
		t, err := dane.NewTLSA(p.daneInter.Cert, dane.DANETA, dane.SelectorSPKI, dane.MatchSHA256)
		return t, true, err
	case TLSAUnusable:
		t, err := dane.NewTLSA(leaf.Cert, dane.PKIXEE, dane.SelectorSPKI, dane.MatchSHA256)
		return t, true, err
	}
	return dane.TLSA{}, false, fmt.Errorf("unknown TLSA kind %d", kind)
}

// pkiLeaf describes the certificate of a policy host.
func pkiLeaf(host string) testpki.LeafOptions {
	return testpki.LeafOptions{DNSNames: []string{host}}
}
