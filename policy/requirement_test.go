package policy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	r "github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

type certs struct {
	roots                                        *x509.CertPool
	valid, other, expired, selfSigned, otherRoot *testpki.Leaf
}

func newCerts(t *testing.T) *certs {
	t.Helper()
	ca, err := testpki.NewCA("requirement root")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := testpki.NewCA("rogue")
	if err != nil {
		t.Fatal(err)
	}
	must := func(l *testpki.Leaf, err error) *testpki.Leaf {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	mx := testpki.LeafOptions{DNSNames: []string{"mx.example"}}
	old := mx
	old.NotBefore, old.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	return &certs{
		roots:      ca.Pool(),
		valid:      must(ca.Issue(mx)),
		other:      must(ca.Issue(testpki.LeafOptions{DNSNames: []string{"relay.example"}})),
		expired:    must(ca.Issue(old)),
		selfSigned: must(testpki.SelfSigned(mx)),
		otherRoot:  must(rogue.Issue(mx)),
	}
}

func state(l *testpki.Leaf) tls.ConnectionState {
	var chain []*x509.Certificate
	for _, der := range l.Chain {
		c, _ := x509.ParseCertificate(der)
		chain = append(chain, c)
	}
	return tls.ConnectionState{PeerCertificates: chain, Version: tls.VersionTLS13, HandshakeComplete: true}
}

func resultType(err error) string {
	var rt interface{ ReportResultType() string }
	if errors.As(err, &rt) {
		return rt.ReportResultType()
	}
	return ""
}

// VerifyConnection checks what the requirement says, with the RFC 8460
// result type of what is wrong. STD-53, STD-78.
func TestRequirementVerifyConnection(t *testing.T) {
	c := newCerts(t)
	rec, err := dane.NewTLSA(c.selfSigned.Cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dane.NewVerifier([]dane.TLSA{rec}, "mx.example")
	if err != nil {
		t.Fatal(err)
	}
	webpki := Requirement{Auth: AuthWebPKI, ServerName: "mx.example", WebPKINames: []string{"mx.example", "relay.example"}, roots: c.roots}
	daneReq := Requirement{Auth: AuthDANE, ServerName: "mx.example", DANE: v}
	both := Requirement{Auth: AuthDANEAndWebPKI, ServerName: "mx.example", DANE: v, WebPKINames: []string{"mx.example"}, roots: c.roots}
	tests := []struct {
		name string
		req  Requirement
		leaf *testpki.Leaf
		want string // result type, "" for success
	}{
		{"none accepts anything", Requirement{Auth: AuthNone}, c.otherRoot, ""},
		{"webpki, first name", webpki, c.valid, ""},
		{"webpki, second name", webpki, c.other, ""},
		{"webpki, no name matches", Requirement{Auth: AuthWebPKI, WebPKINames: []string{"mx.example"}, roots: c.roots}, c.other, r.CertificateHostMismatch},
		{"webpki, expired", webpki, c.expired, r.CertificateExpired},
		{"webpki, untrusted", webpki, c.otherRoot, r.CertificateNotTrusted},
		{"webpki, self-signed", webpki, c.selfSigned, r.CertificateNotTrusted},
		{"webpki, ServerName when no names", Requirement{Auth: AuthWebPKI, ServerName: "mx.example", roots: c.roots}, c.valid, ""},
		{"dane, match", daneReq, c.selfSigned, ""},
		{"dane, mismatch", daneReq, c.valid, r.ValidationFailure},
		{"dane without a verifier", Requirement{Auth: AuthDANE, ServerName: "mx.example"}, c.selfSigned, r.DANERequired},
		{"dane and webpki, DANE fails first", both, c.valid, r.ValidationFailure},
		{"dane and webpki, Web PKI fails", both, c.selfSigned, r.CertificateNotTrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.VerifyConnection(state(tt.leaf))
			if got := resultType(err); got != tt.want || (tt.want == "") != (err == nil) {
				t.Errorf("VerifyConnection = %v (%q), want %q", err, got, tt.want)
			}
		})
	}
	var ce *mtasts.CertificateError
	if err := webpki.VerifyWebPKI(state(c.expired)); !errors.As(err, &ce) {
		t.Errorf("VerifyWebPKI error %T, want *mtasts.CertificateError", err)
	}
}

// STD-55: under testing, Check says what enforce would have refused.
func TestTestingCheck(t *testing.T) {
	c := newCerts(t)
	listed := &Testing{InPolicy: true, Requirement: Requirement{Auth: AuthWebPKI, ServerName: "mx.example", WebPKINames: []string{"mx.example"}, roots: c.roots}}
	unlisted := &Testing{InPolicy: false, Requirement: listed.Requirement}
	ok, expired, untrusted := state(c.valid), state(c.expired), state(c.otherRoot)
	tests := []struct {
		name string
		t    *Testing
		cs   *tls.ConnectionState
		want string
	}{
		{"passes", listed, &ok, ""},
		{"no TLS", listed, nil, r.STARTTLSNotSupported},
		{"not listed", unlisted, &ok, r.ValidationFailure},
		{"expired", listed, &expired, r.CertificateExpired},
		{"untrusted", listed, &untrusted, r.CertificateNotTrusted},
	}
	for _, tt := range tests {
		got, err := tt.t.Check(tt.cs)
		if got != tt.want || (got == "") != (err == nil) {
			t.Errorf("%s: Check = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestRequirementText(t *testing.T) {
	tests := []struct {
		r    Requirement
		want string
	}{
		{Requirement{TLS: TLSInsecurePlaintext}, "no TLS (insecure-plaintext)"},
		{Requirement{TLS: TLSInsecureOpportunistic, ServerName: "mx.example"}, "TLS if offered, else plaintext (insecure-opportunistic), certificate not checked"},
		{Requirement{ServerName: "mx.example"}, "TLS required, certificate not checked, SNI mx.example"},
		{Requirement{Auth: AuthWebPKI, ServerName: "mx.example", WebPKINames: []string{"a.example", "b.example", "c.example"}},
			"TLS required, Web PKI certificate for a.example, b.example or c.example, SNI mx.example"},
		{Requirement{Auth: AuthDANE, ServerName: "mx.example", TLSA: []string{"3 1 1 0123456789abcdef0123456789abcdef", "2 0 1 ab"}},
			"TLS required, authenticated by DANE (TLSA 3 1 1 0123456789abcdef…; 2 0 1 ab), SNI mx.example"},
		{Requirement{Auth: AuthDANEAndWebPKI, ServerName: "mx.example", TLSA: []string{"3 1 1 ab"}, WebPKINames: []string{"mx.example"}},
			"TLS required, authenticated by DANE (TLSA 3 1 1 ab) and by a Web PKI certificate for mx.example, SNI mx.example"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q\nwant        %q", got, tt.want)
		}
	}
	b, err := json.Marshal(Requirement{Auth: AuthDANEAndWebPKI, TLS: TLSInsecureOpportunistic})
	if err != nil || !strings.Contains(string(b), `"tls":"insecure-opportunistic","auth":"dane+webpki"`) {
		t.Errorf("JSON %s %v", b, err)
	}
	for _, s := range []interface{ String() string }{TLS(9), Auth(9), Source(9)} {
		if !strings.Contains(s.String(), "(9)") {
			t.Errorf("%T(9).String() = %q", s, s.String())
		}
	}
	if !AuthWebPKI.Authenticated() || AuthNone.Authenticated() {
		t.Error("Authenticated")
	}
}
