package dane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// verifyCase is one verification: records, the chain the server sends, the
// reference identifiers, and the outcome.
type verifyCase struct {
	name    string
	records []TLSA
	chain   []*x509.Certificate
	names   []string // reference identifiers; the first is the server name
	want    error    // nil, or the sentinel the error wraps
	depth   int
}

func runVerify(t *testing.T, tc verifyCase) {
	t.Helper()
	v, err := NewVerifier(tc.records, tc.names[0], tc.names[1:]...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	m, err := v.Verify(tc.chain)
	if tc.want == nil {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if m.Depth != tc.depth {
			t.Errorf("matched at depth %d, want %d", m.Depth, tc.depth)
		}
		return
	}
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, tc.want) {
		t.Fatalf("Verify = %v, %v; want a *VerifyError wrapping %v", m, err, tc.want)
	}
	if ve.Host != v.ServerName() || !strings.Contains(err.Error(), v.ServerName()) {
		t.Errorf("error does not name the host: %v", err)
	}
}

// TestVerify covers RFC 7672 §3 with generated certificates.
func TestVerify(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	chain := parseChain(t, leaf.Chain...)    // leaf, intermediate
	full := append(chain[:2:2], p.root.Cert) // leaf, intermediate, root
	leafOnly := chain[:1]                    // leaf alone
	expired := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	expiredChain := parseChain(t, expired.Chain...)
	future := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	futureChain := parseChain(t, future.Chain...)
	wrong := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"other.example.net"}})
	wrongChain := parseChain(t, wrong.Chain...)
	clientOnly := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	clientChain := parseChain(t, clientOnly.Chain...)
	noEKU := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.example.com"}, NoExtKeyUsage: true})
	noEKUChain := parseChain(t, noEKU.Chain...)
	wild := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"*.example.com"}})
	wildChain := parseChain(t, wild.Chain...)
	cnOnly := p.leaf(t, testpki.LeafOptions{CommonName: "mx.example.com"})
	cnOnlyChain := parseChain(t, cnOnly.Chain...)
	cnNotSAN := p.leaf(t, testpki.LeafOptions{CommonName: "mx.example.com", DNSNames: []string{"other.example.com"}})
	cnNotSANChain := parseChain(t, cnNotSAN.Chain...)
	idnLeaf := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.xn--bcher-kva.example"}})
	idnChain := parseChain(t, idnLeaf.Chain...)
	self, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	selfChain := parseChain(t, self.Chain...)
	// A different hierarchy, for records that must not match.
	other := newPKI(t)

	ee := func(c *x509.Certificate, s Selector, m MatchingType) TLSA { return rec(t, c, DANEEE, s, m) }
	ta := func(c *x509.Certificate, s Selector, m MatchingType) TLSA { return rec(t, c, DANETA, s, m) }
	mx := []string{"mx.example.com"}
	inter, root := p.inter.Cert, p.root.Cert

	tests := []verifyCase{
		// STD-78: DANE-EE matches the leaf in every form.
		{"EE 3 0 0", []TLSA{ee(chain[0], 0, 0)}, chain, mx, nil, 0},
		{"EE 3 1 0", []TLSA{ee(chain[0], 1, 0)}, chain, mx, nil, 0},
		{"EE 3 0 1", []TLSA{ee(chain[0], 0, 1)}, chain, mx, nil, 0},
		{"EE 3 1 1", []TLSA{ee(chain[0], 1, 1)}, leafOnly, mx, nil, 0},
		{"EE 3 0 2", []TLSA{ee(chain[0], 0, 2)}, chain, mx, nil, 0},
		{"EE 3 1 2", []TLSA{ee(chain[0], 1, 2)}, chain, mx, nil, 0},
		// STD-78: DANE-EE ignores validity dates and names.
		{"EE expired leaf", []TLSA{ee(expiredChain[0], 1, 1)}, expiredChain, mx, nil, 0},
		{"EE not yet valid leaf", []TLSA{ee(futureChain[0], 1, 1)}, futureChain, mx, nil, 0},
		{"EE wrong name", []TLSA{ee(wrongChain[0], 1, 1)}, wrongChain, mx, nil, 0},
		{"EE wrong key purpose", []TLSA{ee(clientChain[0], 1, 1)}, clientChain, mx, nil, 0},
		{"EE self-signed", []TLSA{ee(selfChain[0], 0, 1)}, selfChain, mx, nil, 0},
		// STD-78: DANE-EE matches only the leaf.
		{"EE naming the intermediate", []TLSA{ee(inter, 1, 1)}, chain, mx, ErrNoMatch, 0},
		{"EE other key", []TLSA{ee(wrongChain[0], 1, 1)}, chain, mx, ErrNoMatch, 0},

		// STD-79: DANE-TA: a presented certificate is the trust anchor.
		{"TA intermediate 2 0 1", []TLSA{ta(inter, 0, 1)}, chain, mx, nil, 1},
		{"TA intermediate 2 1 2", []TLSA{ta(inter, 1, 2)}, chain, mx, nil, 1},
		{"TA root sent 2 1 1", []TLSA{ta(root, 1, 1)}, full, mx, nil, 2},
		{"TA root sent 2 0 0", []TLSA{ta(root, 0, 0)}, full, mx, nil, 2},
		// STD-79: a digest-only TA that the server does not send cannot be used.
		{"TA root not sent", []TLSA{ta(root, 1, 1)}, chain, mx, ErrNoMatch, 0},
		{"TA intermediate not sent", []TLSA{ta(inter, 0, 1)}, leafOnly, mx, ErrNoMatch, 0},
		// STD-79: a full certificate or key in the record need not be sent.
		{"TA root from DNS 2 0 0", []TLSA{ta(root, 0, 0)}, chain, mx, nil, -1},
		{"TA root key from DNS 2 1 0", []TLSA{ta(root, 1, 0)}, chain, mx, nil, -1},
		{"TA intermediate from DNS 2 0 0", []TLSA{ta(inter, 0, 0)}, leafOnly, mx, nil, -1},
		{"TA intermediate key from DNS 2 1 0", []TLSA{ta(inter, 1, 0)}, leafOnly, mx, nil, -1},
		// STD-79: the chain must reach the anchor.
		{"TA root from DNS, intermediate missing", []TLSA{ta(root, 0, 0)}, leafOnly, mx, ErrChain, 0},
		{"TA root key from DNS, intermediate missing", []TLSA{ta(root, 1, 0)}, leafOnly, mx, ErrChain, 0},
		{"TA of another hierarchy from DNS", []TLSA{ta(other.root.Cert, 0, 0)}, full, mx, ErrChain, 0},
		// STD-79: dates are checked under DANE-TA.
		{"TA expired leaf", []TLSA{ta(inter, 1, 1)}, expiredChain, mx, ErrExpired, 0},
		{"TA not yet valid leaf", []TLSA{ta(inter, 1, 1)}, futureChain, mx, ErrExpired, 0},
		{"TA key from DNS, expired leaf", []TLSA{ta(inter, 1, 0)}, expiredChain[:1], mx, ErrExpired, 0},
		// The server-authentication purpose is checked under DANE-TA.
		{"TA leaf for clients only", []TLSA{ta(inter, 1, 1)}, clientChain, mx, ErrChain, 0},
		{"TA leaf without EKU", []TLSA{ta(inter, 1, 1)}, noEKUChain, mx, nil, 1},
		// STD-79: a DANE-TA record naming a leaf that is not self-issued fails.
		{"TA naming the leaf", []TLSA{ta(chain[0], 1, 1)}, full, mx, ErrNoMatch, 0},
		// STD-79: a self-signed leaf can be its own trust anchor.
		{"TA self-signed depth 0", []TLSA{ta(selfChain[0], 0, 1)}, selfChain, mx, nil, 0},
		{"TA self-signed wrong name", []TLSA{ta(selfChain[0], 0, 1)}, selfChain, []string{"whatever.example.com"}, ErrNameMismatch, 0},

		// STD-80, STD-81: names under DANE-TA.
		{"TA wrong name", []TLSA{ta(inter, 1, 1)}, wrongChain, mx, ErrNameMismatch, 0},
		{"TA name is an extra reference ID", []TLSA{ta(inter, 1, 1)}, wrongChain, []string{"mx.example.com", "other.example.net"}, nil, 1},
		{"TA wildcard", []TLSA{ta(inter, 1, 1)}, wildChain, mx, nil, 1},
		{"TA wildcard is one label", []TLSA{ta(inter, 1, 1)}, wildChain, []string{"a.mx.example.com"}, ErrNameMismatch, 0},
		{"TA wildcard not the parent", []TLSA{ta(inter, 1, 1)}, wildChain, []string{"example.com"}, ErrNameMismatch, 0},
		{"TA CN without SAN", []TLSA{ta(inter, 1, 1)}, cnOnlyChain, mx, nil, 1},
		{"TA CN ignored with SAN", []TLSA{ta(inter, 1, 1)}, cnNotSANChain, mx, ErrNameMismatch, 0},
		// STD-96: reference identifiers are compared as A-labels.
		{"TA IDN reference", []TLSA{ta(inter, 1, 1)}, idnChain, []string{"MX.Bücher.example"}, nil, 1},

		// STD-82: digest agility: a weaker digest is ignored when a stronger
		// one is published for the same usage and selector.
		{"agility: SHA-256 ignored for SHA-512", []TLSA{ee(chain[0], 1, 1), {DANEEE, SelectorSPKI, MatchSHA512, make([]byte, 64)}}, chain, mx, ErrNoMatch, 0},
		{"agility: per selector", []TLSA{ee(chain[0], 1, 1), {DANEEE, SelectorCert, MatchSHA512, make([]byte, 64)}}, chain, mx, nil, 0},
		{"agility: per usage", []TLSA{ta(inter, 1, 1), {DANEEE, SelectorSPKI, MatchSHA512, make([]byte, 64)}}, chain, mx, nil, 1},
		{"agility: Full(0) is not a digest", []TLSA{ee(chain[0], 1, 0), {DANEEE, SelectorSPKI, MatchSHA512, make([]byte, 64)}}, chain, mx, nil, 0},
		{"agility: unusable SHA-512 does not count", []TLSA{ee(chain[0], 1, 1), {DANEEE, SelectorSPKI, MatchSHA512, make([]byte, 63)}}, chain, mx, nil, 0},

		// STD-75: unusable records are ignored next to usable ones.
		{"PKIX-EE ignored", []TLSA{rec(t, chain[0], PKIXEE, 1, 1), ee(wrongChain[0], 1, 1)}, chain, mx, ErrNoMatch, 0},
		{"one of several", []TLSA{ee(wrongChain[0], 1, 1), ta(other.inter.Cert, 1, 1), ta(inter, 0, 2)}, chain, mx, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runVerify(t, tc) })
	}
}

// STD-97: each failure has its own sentinel and RFC 8460 result type.
func TestVerifyErrorResultTypes(t *testing.T) {
	tests := map[error]string{
		ErrNoMatch:       rfc8460.ValidationFailure,
		ErrNoCertificate: rfc8460.ValidationFailure,
		ErrNameMismatch:  rfc8460.CertificateHostMismatch,
		ErrExpired:       rfc8460.CertificateExpired,
		ErrChain:         rfc8460.CertificateNotTrusted,
		ErrDANERequired:  rfc8460.DANERequired,
	}
	for sentinel, want := range tests {
		e := &VerifyError{Host: "mx.example.com", Err: sentinel}
		if e.ReportResultType() != want {
			t.Errorf("%v: %q, want %q", sentinel, e.ReportResultType(), want)
		}
	}
	le := &LookupError{Name: "_25._tcp.mx.example.com", Type: "TLSA", Err: ErrUnusableTLSA}
	if le.ReportResultType() != rfc8460.TLSAInvalid {
		t.Error(le.ReportResultType())
	}
	if le = (&LookupError{Name: "x", Type: "TLSA", Err: ErrBogus}); le.ReportResultType() != rfc8460.DNSSECInvalid {
		t.Error(le.ReportResultType())
	}
}

func TestNewVerifierErrors(t *testing.T) {
	d32 := make([]byte, 32)
	_, err := NewVerifier([]TLSA{{PKIXEE, 1, 1, d32}, {DANEEE, 1, 1, d32[:5]}}, "mx.example.com")
	var le *LookupError
	if !errors.Is(err, ErrUnusableTLSA) || !errors.As(err, &le) || le.ReportResultType() != rfc8460.TLSAInvalid {
		t.Errorf("no usable records: %v", err)
	}
	if _, err := NewVerifier([]TLSA{{DANEEE, 1, 1, d32}}, "192.0.2.1"); err == nil {
		t.Error("an IP address as server name was accepted")
	}
	if _, err := NewVerifier([]TLSA{{DANEEE, 1, 1, d32}}, "mx.example.com", "bad..name"); err == nil {
		t.Error("a bad reference identifier was accepted")
	}
	v, err := NewVerifier([]TLSA{{DANEEE, 1, 1, d32}, {PKIXTA, 1, 1, d32}}, "MX.Example.COM.", "mx.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if v.ServerName() != "mx.example.com" || len(v.ReferenceIDs()) != 1 || len(v.Records()) != 1 {
		t.Errorf("server name %q names %v records %v", v.ServerName(), v.ReferenceIDs(), v.Records())
	}
	for _, chain := range [][]*x509.Certificate{nil, {nil}} {
		_, err := v.Verify(chain)
		if !errors.Is(err, ErrNoCertificate) {
			t.Errorf("empty chain: %v", err)
		}
	}
	if err := v.VerifyConnection(tls.ConnectionState{}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("VerifyConnection: %v", err)
	}
}

// The verifier keeps its own copy of the records.
func TestVerifierCopiesRecords(t *testing.T) {
	l, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rec(t, l.Cert, DANEEE, SelectorSPKI, MatchSHA256)
	v, err := NewVerifier([]TLSA{r}, "mx.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r.Data[0] ^= 0xff
	if _, err := v.Verify([]*x509.Certificate{l.Cert}); err != nil {
		t.Errorf("changing the caller's record changed the verifier: %v", err)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		id, ref string
		ok      bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.Example.COM.", "mx.example.com", true},
		{"*.example.com", "mx.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.mx.example.com", false},
		{"m*.example.com", "mx.example.com", false},
		{"*x.example.com", "mx.example.com", false},
		{"mx.*.com", "mx.example.com", false},
		{"*.*.com", "mx.example.com", false},
		{"*", "com", false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"*.xn--bcher-kva.example", "mx.xn--bcher-kva.example", true},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"", "mx.example.com", false},
	}
	for _, tc := range tests {
		pat, ok := presentedID(tc.id)
		got := ok && matchPattern(pat, tc.ref)
		if got != tc.ok {
			t.Errorf("%q vs %q: %v, want %v", tc.id, tc.ref, got, tc.ok)
		}
	}
}

// STD-79: a trust anchor key from DNS must have signed a CA, not a leaf
// that then signs another leaf.
func TestBareKeyAnchorMustSignACA(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchorTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "anchor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	anchorDER, _ := x509.CreateCertificate(rand.Reader, anchorTmpl, anchorTmpl, key.Public(), key)
	anchor := parseChain(t, anchorDER)[0]
	// A non-CA certificate signed by the anchor key, that signs the leaf.
	midKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	midTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "not a CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}
	midDER, _ := x509.CreateCertificate(rand.Reader, midTmpl, anchor, midKey.Public(), key)
	mid := parseChain(t, midDER)[0]
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "mx.example.com"}, DNSNames: []string{"mx.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, mid, leafKey.Public(), midKey)
	leaf := parseChain(t, leafDER)[0]
	runVerify(t, verifyCase{
		records: []TLSA{rec(t, anchor, DANETA, SelectorSPKI, MatchFull)},
		chain:   []*x509.Certificate{leaf, mid},
		names:   []string{"mx.example.com"},
		want:    ErrChain,
	})
}

// The Postfix DANE matrix (tls_dane.sh, described in
// vectors/dane/postfix-tls_dane-matrix.md), re-created with generated
// certificates: Root -> CA1 -> CA2 -> EE(mail.example.com).
func TestPostfixMatrix(t *testing.T) {
	root, err := testpki.NewCA("Root CA")
	if err != nil {
		t.Fatal(err)
	}
	ca1, err := root.NewIntermediate("CA 1")
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := ca1.NewIntermediate("CA 2")
	if err != nil {
		t.Fatal(err)
	}
	ee, err := ca2.Issue(testpki.LeafOptions{DNSNames: []string{"mail.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	chain1 := parseChain(t, ee.Chain...) // EE, CA2, CA1
	chain := append(chain1[:3:3], root.Cert)
	eeOnly := chain1[:1]
	self, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mail.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	selfChain := parseChain(t, self.Chain...)
	acert, err := testpki.SelfSigned(testpki.LeafOptions{CommonName: "acert", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	acertChain := parseChain(t, acert.Chain...)
	host := []string{"mail.example.com"}
	whatever := []string{"whatever.example.net"}

	type row struct {
		u      Usage
		cert   *x509.Certificate
		chain  []*x509.Certificate
		names  []string
		pass   bool
		label  string
		mtypes []MatchingType
	}
	all := []MatchingType{0, 1, 2}
	rows := []row{
		{DANETA, root.Cert, chain1, host, true, "OOB root TA", []MatchingType{0}},
		{DANETA, ca2.Cert, eeOnly, host, true, "OOB TA", []MatchingType{0}},
		{DANETA, root.Cert, chain, host, true, "in-chain root TA", all},
		{DANETA, ca1.Cert, chain, host, true, "CA1 TA", all},
		{DANETA, ca2.Cert, chain, host, true, "CA2 TA", all},
		{DANETA, ca1.Cert, chain1, host, true, "CA1 TA, no root", all},
		{DANETA, ca2.Cert, chain1, host, true, "CA2 TA, no root", all},
		{DANETA, ca1.Cert, chain1, whatever, false, "CA1 TA, wrong name", all},
		{DANETA, ca2.Cert, chain1, whatever, false, "CA2 TA, wrong name", all},
		{DANETA, root.Cert, chain1, host, false, "missing TA", []MatchingType{1}},
		{DANETA, selfChain[0], selfChain, host, true, "depth 0 TA", all},
		{DANETA, chain[0], chain, host, false, "non-TA", all},
		{DANETA, selfChain[0], selfChain, whatever, false, "depth 0 TA namecheck", all},
		{DANEEE, chain[0], chain, whatever, true, "valid EE", all},
		{DANEEE, acertChain[0], acertChain, whatever, true, "key-only EE, expired", all},
		{DANEEE, ca2.Cert, chain, whatever, false, "wrong EE", all},
	}
	n := 0
	for _, r := range rows {
		for _, s := range []Selector{SelectorCert, SelectorSPKI} {
			for _, m := range r.mtypes {
				tc := verifyCase{records: []TLSA{rec(t, r.cert, r.u, s, m)}, chain: r.chain, names: r.names}
				v, err := NewVerifier(tc.records, tc.names[0])
				if err != nil {
					t.Fatal(err)
				}
				_, err = v.Verify(tc.chain)
				if (err == nil) != r.pass {
					t.Errorf("%s (%d %d %d): err = %v, want pass=%v", r.label, r.u, s, m, err, r.pass)
				}
				n++
			}
		}
	}
	t.Logf("Postfix matrix: %d cases", n)
}
