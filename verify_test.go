package smtpsecure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/smtp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// selfSignedServer starts a server whose certificate no CA vouches for.
func selfSignedServer(t *testing.T, names ...string) (*smtptest.Server, *testpki.Leaf) {
	t.Helper()
	self, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: names})
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, func(s *smtptest.Server) { s.TLSConfig = self.ServerConfig() }), self
}

// Issue 9 §2: a VerifyConnection hook runs in addition to chain and name
// verification, as in crypto/tls, whether it is the Dialer's or the
// TLSConfig's. It can refuse a server, never accept one that verification
// refused, and its error is a policy failure whatever it looks like.
func TestVerifyConnectionIsAdditive(t *testing.T) {
	hookErr := errors.New("pinned certificate does not match")
	// An error shaped like an x509 error must still be reported as the
	// hook's: classification is by where an error came from.
	shaped := x509.HostnameError{Certificate: &x509.Certificate{}, Host: "elsewhere.example"}
	type hook = func(tls.ConnectionState) error
	cases := []struct {
		name       string
		selfSigned bool
		hook       func(calls *atomic.Int32) hook
		reason     DowngradeReason // 0: the session is established
		err        error           // the DowngradeError's Err, with errors.Is
	}{
		{"logging hook on an untrusted certificate", true,
			func(n *atomic.Int32) hook { return func(tls.ConnectionState) error { n.Add(1); return nil } },
			ReasonCertificateUntrusted, nil},
		{"logging hook on a valid certificate", false,
			func(n *atomic.Int32) hook {
				return func(cs tls.ConnectionState) error {
					n.Add(1)
					if len(cs.VerifiedChains) == 0 {
						return errors.New("hook ran before the chain was verified")
					}
					return nil
				}
			}, 0, nil},
		{"refusing hook on a valid certificate", false,
			func(n *atomic.Int32) hook { return func(tls.ConnectionState) error { n.Add(1); return hookErr } },
			ReasonPolicy, hookErr},
		{"hook error shaped like a host name error", false,
			func(n *atomic.Int32) hook { return func(tls.ConnectionState) error { n.Add(1); return shaped } },
			ReasonPolicy, shaped},
	}
	for _, where := range []string{"Dialer", "TLSConfig"} {
		for _, tc := range cases {
			t.Run(where+"/"+tc.name, func(t *testing.T) {
				var s *smtptest.Server
				if tc.selfSigned {
					s, _ = selfSignedServer(t, testHost)
				} else {
					s = newServer(t, nil)
				}
				d := dialerFor(t, s)
				d.Auth = PlainAuth("", "alice", "secret")
				calls := new(atomic.Int32)
				if where == "Dialer" {
					d.VerifyConnection = tc.hook(calls)
				} else {
					d.TLSConfig.VerifyConnection = tc.hook(calls)
				}
				c, err := d.Dial(ctxT(t))
				if tc.reason == 0 {
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					if calls.Load() != 1 || c.ServerAuth() != ServerAuthWebPKI || !c.Verified() {
						t.Fatalf("hook called %d times, server auth %v", calls.Load(), c.ServerAuth())
					}
					return
				}
				var dg *DowngradeError
				if !errors.As(err, &dg) || dg.Reason != tc.reason {
					t.Fatalf("err = %v, want a DowngradeError with reason %v", err, tc.reason)
				}
				if tc.err != nil && (dg.Err != tc.err || !errors.Is(err, tc.err)) {
					t.Errorf("DowngradeError.Err = %#v, want the hook's error", dg.Err)
				}
				if tc.reason == ReasonPolicy && dg.ReportResultType() != "validation-failure" {
					t.Errorf("result type %q", dg.ReportResultType())
				}
				s.Close()
				for _, sess := range s.Sessions() {
					assertNothingInPlaintext(t, sess.Plaintext())
					if len(sess.Encrypted()) != 0 {
						t.Errorf("client sent %q to a server it refused", sess.Encrypted())
					}
				}
			})
		}
	}
}

// A hook error that carries an RFC 8460 result type reports it.
func TestVerifyConnectionHookResultType(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	d.VerifyConnection = func(tls.ConnectionState) error { return resultErr("sts-webpki-invalid") }
	_, err := d.Dial(ctxT(t))
	var dg *DowngradeError
	var re resultErr
	if !errors.As(err, &dg) || dg.Reason != ReasonPolicy || dg.ReportResultType() != "sts-webpki-invalid" || !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
}

type resultErr string

func (e resultErr) Error() string            { return "policy says no: " + string(e) }
func (e resultErr) ReportResultType() string { return string(e) }

// tlsaFor returns a TLSA record of the given usage for cert.
func tlsaFor(t *testing.T, cert *x509.Certificate, u dane.Usage) dane.TLSA {
	t.Helper()
	// DANE-EE: the digest of the key; DANE-TA: the whole certificate, so
	// that the anchor need not be presented (RFC 7671 §5.2).
	sel, mt := dane.SelectorSPKI, dane.MatchSHA256
	if u == dane.DANETA {
		sel, mt = dane.SelectorCert, dane.MatchFull
	}
	r, err := dane.NewTLSA(cert, u, sel, mt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verifier(t *testing.T, base string, records ...dane.TLSA) *dane.Verifier {
	t.Helper()
	v, err := dane.NewVerifier(records, base)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue 9 §2, STD-74, STD-78, STD-79, STD-83: Dialer.DANE authenticates the
// server by its TLSA records instead of the Web PKI, sends the TLSA base
// domain as SNI, counts as verified (AUTH and REQUIRETLS are allowed) and
// says how the chain matched. A chain the records do not authenticate is a
// DowngradeError with the verifier's error and result type, even when the
// Web PKI would have accepted it.
func TestDialerDANE(t *testing.T) {
	const base = "mx.dane.test.example" // not the Host the client dials
	t.Run("DANE-EE with a self-signed certificate", func(t *testing.T) {
		s, self := selfSignedServer(t, "anything.example")
		s.TLSExtensions = append(stdExtensions, "REQUIRETLS")
		d := dialerFor(t, s)
		d.DANE = verifier(t, base, tlsaFor(t, self.Cert, dane.DANEEE))
		d.Auth = PlainAuth("", "alice", "secret")
		c, err := d.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if c.ServerAuth() != ServerAuthDANEEE || !c.Verified() || c.AuthMechanism() != "PLAIN" {
			t.Fatalf("server auth %v, verified %v, mechanism %q", c.ServerAuth(), c.Verified(), c.AuthMechanism())
		}
		if m := c.DANEMatch(); m == nil || m.Record.Usage != dane.DANEEE || m.Depth != 0 {
			t.Fatalf("match %+v", m)
		}
		env := &Envelope{From: "a@test.example", To: []string{"b@test.example"}, MailOptions: MailOptions{RequireTLS: true}}
		if _, err := c.Send(ctxT(t), env, strings.NewReader(testMsg)); err != nil {
			t.Fatalf("REQUIRETLS over DANE: %v", err)
		}
		c.Quit(ctxT(t))
		s.WaitSessions(ctxT(t), 1)
		if st, _ := s.Sessions()[0].TLSState(); st.ServerName != base {
			t.Errorf("SNI %q, want the TLSA base domain %q", st.ServerName, base)
		}
	})
	t.Run("DANE-TA", func(t *testing.T) {
		ca, _ := pki(t)
		leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{base}})
		if err != nil {
			t.Fatal(err)
		}
		s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = leaf.ServerConfig() })
		d := dialerFor(t, s)
		d.TLSConfig = nil // no Web PKI root needed
		d.DANE = verifier(t, base, tlsaFor(t, ca.Cert, dane.DANETA))
		c, err := d.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.ServerAuth() != ServerAuthDANETA || c.DANEMatch().Name != base {
			t.Fatalf("server auth %v, match %+v", c.ServerAuth(), c.DANEMatch())
		}
	})
	t.Run("mismatch although the Web PKI accepts", func(t *testing.T) {
		s := newServer(t, nil)
		other, _ := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{base}})
		d := dialerFor(t, s) // trusts the server's CA
		d.DANE = verifier(t, base, tlsaFor(t, other.Cert, dane.DANEEE))
		d.Auth = PlainAuth("", "alice", "secret")
		_, err := d.Dial(ctxT(t))
		var dg *DowngradeError
		var ve *dane.VerifyError
		if !errors.As(err, &dg) || dg.Reason != ReasonDANE || !errors.As(err, &ve) || !errors.Is(err, dane.ErrNoMatch) {
			t.Fatalf("err = %v", err)
		}
		if dg.ReportResultType() != ve.ReportResultType() || dg.ReportResultType() != "validation-failure" {
			t.Errorf("result type %q", dg.ReportResultType())
		}
		s.Close()
		for _, sess := range s.Sessions() {
			if len(sess.Encrypted()) != 0 {
				t.Errorf("client sent %q to a server DANE refused", sess.Encrypted())
			}
		}
	})
	t.Run("a hook runs after DANE", func(t *testing.T) {
		s, self := selfSignedServer(t, base)
		d := dialerFor(t, s)
		d.DANE = verifier(t, base, tlsaFor(t, self.Cert, dane.DANEEE))
		hookErr := errors.New("not today")
		d.VerifyConnection = func(tls.ConnectionState) error { return hookErr }
		_, err := d.Dial(ctxT(t))
		var dg *DowngradeError
		if !errors.As(err, &dg) || dg.Reason != ReasonPolicy || dg.Err != hookErr {
			t.Fatalf("err = %v", err)
		}
	})
}

// Issue 9 §2: DANE cannot be combined with anything that would weaken it
// or send another SNI; the refusal comes before anything is dialled.
func TestDialerDANEOptionConflicts(t *testing.T) {
	self, _ := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.dane.test.example"}})
	v := verifier(t, "mx.dane.test.example", tlsaFor(t, self.Cert, dane.DANEEE))
	cases := map[string]func(d *Dialer){
		"InsecureSkipVerify":           func(d *Dialer) { d.InsecureSkipVerify = true },
		"InsecureOpportunisticTLS":     func(d *Dialer) { d.InsecureOpportunisticTLS = true },
		"InsecurePlaintext":            func(d *Dialer) { d.InsecurePlaintext = true },
		"TLSConfig.InsecureSkipVerify": func(d *Dialer) { d.TLSConfig = &tls.Config{InsecureSkipVerify: true} },
		"TLSConfig.ServerName":         func(d *Dialer) { d.TLSConfig = &tls.Config{ServerName: "smtp.test.example"} },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			dialled := false
			d := &Dialer{Host: testHost, Port: 25, DANE: v, DialContext: func(context.Context, string, string) (net.Conn, error) {
				dialled = true
				return nil, errors.New("must not dial")
			}}
			set(d)
			if _, err := d.Dial(ctxT(t)); !errors.Is(err, ErrInvalidOptions) || dialled {
				t.Fatalf("err = %v, dialled = %v", err, dialled)
			}
		})
	}
	// The TLSA base domain itself, in any case, is no contradiction.
	d := &Dialer{Host: testHost, DANE: v, TLSConfig: &tls.Config{ServerName: "MX.dane.test.example."}}
	if _, err := d.prepare(); err != nil {
		t.Fatalf("ServerName equal to the base domain: %v", err)
	}
}

// Issue 9 §3: InsecurePlaintext with anything that implies or configures
// TLS is refused before dialling, not half-tried.
func TestInsecurePlaintextConflicts(t *testing.T) {
	cases := map[string]Dialer{
		"port 465":                 {Port: 465},
		"port 465 in Host":         {Host: testHost + ":465"},
		"port 465 with STARTTLS":   {Port: 465, Security: SecuritySTARTTLS},
		"SecurityImplicitTLS":      {Port: 2525, Security: SecurityImplicitTLS},
		"SecuritySTARTTLS":         {Port: 2525, Security: SecuritySTARTTLS},
		"InsecureOpportunisticTLS": {Port: 2525, InsecureOpportunisticTLS: true},
		"InsecureSkipVerify":       {Port: 2525, InsecureSkipVerify: true},
		"VerifyConnection":         {Port: 2525, VerifyConnection: func(tls.ConnectionState) error { return nil }},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			dialled := false
			if d.Host == "" {
				d.Host = testHost
			}
			d.InsecurePlaintext = true
			d.DialContext = func(context.Context, string, string) (net.Conn, error) {
				dialled = true
				return nil, errors.New("must not dial")
			}
			if _, err := d.Dial(ctxT(t)); !errors.Is(err, ErrInvalidOptions) || dialled {
				t.Fatalf("err = %v, dialled = %v", err, dialled)
			}
		})
	}
	// The one valid form: a plaintext port, Security left at its default.
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
	d := dialerFor(t, s)
	d.Security, d.InsecurePlaintext = SecurityAuto, true
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ServerAuth() != ServerAuthNone || c.Verified() {
		t.Fatalf("plaintext session reports %v", c.ServerAuth())
	}
}

// Issue 9 §3: net/smtp's PlainAuth is told the name it was given when that
// is the verified name (port, brackets, trailing dot and case aside, and
// U-labels written the same way), else the verified name; TLS only when
// verified.
func TestNetSMTPAuthServerName(t *testing.T) {
	ca, _ := pki(t)
	idnLeaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"xn--bcher-kva.test.example", testHost}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		host      string // Dialer.Host; ":PORT" is replaced by the server's port
		port      bool   // set Dialer.Port
		tlsName   string // TLSConfig.ServerName
		plainAuth string // the host given to smtp.PlainAuth
		ok        bool
	}{
		{"host:port", testHost + ":PORT", false, "", testHost, true},
		{"trailing dot", testHost + ".", true, "", testHost, true},
		{"capitals written the same way", strings.ToUpper(testHost), true, "", strings.ToUpper(testHost), true},
		{"U-label written the same way", "Bücher.test.example", true, "", "Bücher.test.example", true},
		// As with net/smtp, a name written differently is another name.
		{"A-label for a U-label host", "Bücher.test.example", true, "", "xn--bcher-kva.test.example", false},
		{"IP address", "127.0.0.1:PORT", false, "", "127.0.0.1", true},
		{"ServerName differs from Host", "127.0.0.1", true, testHost, testHost, true},
		{"another host", testHost, true, "", "smtp.elsewhere.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = idnLeaf.ServerConfig() })
			d := dialerFor(t, s)
			_, port, _ := net.SplitHostPort(s.Addr())
			d.Host = strings.Replace(tc.host, "PORT", port, 1)
			if !tc.port {
				d.Port = 0
			}
			d.TLSConfig.ServerName = tc.tlsName
			d.Auth = NetSMTPAuth(smtp.PlainAuth("", "alice", "secret", tc.plainAuth))
			c, err := d.Dial(ctxT(t))
			if !tc.ok {
				if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "wrong host name") {
					t.Fatalf("err = %v, want net/smtp's wrong host name", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.AuthMechanism() != "PLAIN" {
				t.Fatalf("mechanism %q", c.AuthMechanism())
			}
		})
	}
	// Over unverified TLS net/smtp is told TLS = false, and refuses.
	s := newServer(t, nil)
	d := dialerFor(t, s)
	d.InsecureSkipVerify, d.InsecureAuth = true, true
	var seen smtp.ServerInfo
	d.Auth = NetSMTPAuth(spyAuth{&seen})
	if _, err := d.Dial(ctxT(t)); err == nil || seen.TLS || seen.Name != testHost {
		t.Fatalf("unverified TLS: err %v, net/smtp told %+v", err, seen)
	}
}

// spyAuth records what net/smtp would tell an Auth, and refuses.
type spyAuth struct{ seen *smtp.ServerInfo }

func (a spyAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	*a.seen = *s
	return "", nil, errors.New("spy")
}

func (a spyAuth) Next([]byte, bool) ([]byte, error) { return nil, errors.New("spy") }

func TestServerAuthString(t *testing.T) {
	for a, want := range map[ServerAuth]string{
		ServerAuthNone: "none", ServerAuthWebPKI: "Web PKI", ServerAuthDANEEE: "DANE-EE", ServerAuthDANETA: "DANE-TA", ServerAuth(9): "ServerAuth(9)",
	} {
		if a.String() != want || a.DANE() != (a == ServerAuthDANEEE || a == ServerAuthDANETA) {
			t.Errorf("%d: %q, DANE %v", int(a), a.String(), a.DANE())
		}
	}
}
