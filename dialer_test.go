package smtpsecure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// STD-1, STD-5, STD-10, STD-12: required STARTTLS, then a new EHLO, then the
// transaction inside TLS only.
func TestSTARTTLSRequiredDelivers(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	d.Auth = PlainAuth("", "alice", "secret")
	if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != testMsg || !msgs[0].TLS || msgs[0].AuthUser != "alice" {
		t.Fatalf("messages = %+v", msgs)
	}
	sess := s.Sessions()[0]
	assertNothingInPlaintext(t, sess.Plaintext())
	st, ok := sess.TLSState()
	if !ok || st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %x", ok, st.Version)
	}
	cmds := sess.Commands()
	var seq []string
	for _, c := range cmds {
		seq = append(seq, c.Verb)
	}
	// EHLO, STARTTLS, then EHLO again as the first command under TLS.
	if len(seq) < 4 || seq[0] != "EHLO" || seq[1] != "STARTTLS" || seq[2] != "EHLO" || !cmds[2].TLS {
		t.Fatalf("command sequence %v", seq)
	}
}

// STD-8, STD-9: implicit TLS starts TLS before the greeting.
func TestImplicitTLS(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.ImplicitTLS = true })
	d := dialerFor(t, s)
	d.Security = SecurityImplicitTLS
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Verified() {
		t.Fatal("implicit TLS session not verified")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS listed on an implicit TLS session")
	}
	if err := c.Quit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.WaitSessions(ctxT(t), 1)
	sess := s.Sessions()[0]
	if len(sess.Plaintext()) != 0 {
		t.Fatalf("plaintext on implicit TLS: %q", sess.Plaintext())
	}
	for _, c := range sess.Commands() {
		if c.Verb == "STARTTLS" {
			t.Fatal("STARTTLS sent inside implicit TLS (STD-6)")
		}
	}
}

// STD-9: a plaintext server on the implicit TLS port is a handshake failure,
// never a plaintext session.
func TestImplicitTLSAgainstPlaintextServer(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
	d := dialerFor(t, s)
	d.Security = SecurityImplicitTLS
	_, err := d.Dial(ctxT(t))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonHandshakeFailed {
		t.Fatalf("err = %v, want handshake DowngradeError", err)
	}
}

func TestSecurityModeByPort(t *testing.T) {
	cases := []struct {
		sec  Security
		port int
		want Security
	}{
		{SecurityAuto, 465, SecurityImplicitTLS},
		{SecurityAuto, 587, SecuritySTARTTLS},
		{SecurityAuto, 25, SecuritySTARTTLS},
		{SecurityAuto, 2525, SecuritySTARTTLS},
		{SecuritySTARTTLS, 465, SecuritySTARTTLS},
		{SecurityImplicitTLS, 587, SecurityImplicitTLS},
	}
	for _, c := range cases {
		d := &Dialer{Security: c.sec}
		got, err := d.mode(c.port)
		if err != nil || got != c.want {
			t.Errorf("%v on %d = %v, %v; want %v", c.sec, c.port, got, err, c.want)
		}
	}
	if _, err := (&Dialer{Security: Security(42)}).mode(25); err == nil {
		t.Error("unknown Security accepted")
	}
}

func TestDialerTarget(t *testing.T) {
	cases := []struct {
		d        Dialer
		host     string
		port     int
		wantFail bool
	}{
		{Dialer{Host: "smtp.example.com"}, "smtp.example.com", 587, false},
		{Dialer{Host: "smtp.example.com", Security: SecurityImplicitTLS}, "smtp.example.com", 465, false},
		{Dialer{Host: "smtp.example.com:2525"}, "smtp.example.com", 2525, false},
		{Dialer{Host: "[::1]:25"}, "::1", 25, false},
		{Dialer{Host: "smtp.example.com."}, "smtp.example.com", 587, false},
		{Dialer{}, "", 0, true},
		{Dialer{Host: "smtp.example.com:x"}, "", 0, true},
		{Dialer{Host: "smtp.example.com\r\nRCPT"}, "", 0, true},
		{Dialer{Host: "a", Port: 70000}, "", 0, true},
	}
	for _, c := range cases {
		h, p, err := c.d.target()
		if (err != nil) != c.wantFail || !c.wantFail && (h != c.host || p != c.port) {
			t.Errorf("target(%+v) = %q %d %v", c.d, h, p, err)
		}
	}
}

// STD-2, STD-3, STD-97: every way a server or an attacker can deny TLS
// gives a typed DowngradeError with the right reason and result type, and
// nothing but EHLO, STARTTLS and QUIT crosses in plaintext.
func TestDowngradeReasons(t *testing.T) {
	ca, _ := pki(t)
	issue := func(o testpki.LeafOptions) *tls.Config {
		l, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return l.ServerConfig()
	}
	selfSigned, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{testHost}})
	if err != nil {
		t.Fatal(err)
	}
	reply := func(verb, r string) func(*smtptest.Server) {
		return func(s *smtptest.Server) {
			s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if cmd.Verb == verb && !cmd.TLS {
					return r, true
				}
				return "", false
			}
		}
	}
	cases := []struct {
		name      string
		configure func(*smtptest.Server)
		reason    DowngradeReason
		result    string
		cause     any
	}{
		{"no STARTTLS", func(s *smtptest.Server) { s.TLSConfig = nil }, ReasonSTARTTLSNotOffered, "starttls-not-supported", nil},
		{"STARTTLS 454", reply("STARTTLS", "454 4.7.0 TLS not available\r\n"), ReasonSTARTTLSRefused, "starttls-not-supported", &SMTPError{}},
		{"STARTTLS 501", reply("STARTTLS", "501 5.5.4 Syntax error\r\n"), ReasonSTARTTLSRefused, "starttls-not-supported", &SMTPError{}},
		{"EHLO refused", reply("EHLO", "502 5.5.1 EHLO not implemented\r\n"), ReasonSTARTTLSNotOffered, "starttls-not-supported", &SMTPError{}},
		{"self-signed", func(s *smtptest.Server) { s.TLSConfig = selfSigned.ServerConfig() }, ReasonCertificateUntrusted, "certificate-not-trusted", x509.UnknownAuthorityError{}},
		{"wrong host", func(s *smtptest.Server) {
			s.TLSConfig = issue(testpki.LeafOptions{DNSNames: []string{"other.test.example"}})
		}, ReasonCertificateHostMismatch, "certificate-host-mismatch", x509.HostnameError{}},
		{"expired", func(s *smtptest.Server) {
			s.TLSConfig = issue(testpki.LeafOptions{DNSNames: []string{testHost}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		}, ReasonCertificateExpired, "certificate-expired", x509.CertificateInvalidError{}},
		{"TLS 1.1 only", func(s *smtptest.Server) {
			cfg := issue(testpki.LeafOptions{DNSNames: []string{testHost}})
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			s.TLSConfig = cfg
		}, ReasonHandshakeFailed, "validation-failure", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.configure)
			d := dialerFor(t, s)
			d.Auth = PlainAuth("", "alice", "secret")
			err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg))
			var dg *DowngradeError
			if !errors.As(err, &dg) {
				t.Fatalf("err = %v (%T), want *DowngradeError", err, err)
			}
			if !errors.Is(err, ErrDowngrade) {
				t.Error("errors.Is(err, ErrDowngrade) = false")
			}
			if dg.Reason != tc.reason || dg.ReportResultType() != tc.result {
				t.Errorf("reason %v / %s, want %v / %s (%v)", dg.Reason, dg.ReportResultType(), tc.reason, tc.result, err)
			}
			if !strings.Contains(err.Error(), testHost) {
				t.Errorf("error does not name the host: %v", err)
			}
			switch want := tc.cause.(type) {
			case *SMTPError:
				if !errors.As(err, &want) {
					t.Errorf("cause not an *SMTPError: %v", err)
				}
			case x509.UnknownAuthorityError:
				if !errors.As(err, &want) {
					t.Errorf("cause not reachable: %v", err)
				}
			case x509.HostnameError:
				if !errors.As(err, &want) {
					t.Errorf("cause not reachable: %v", err)
				}
			case x509.CertificateInvalidError:
				if !errors.As(err, &want) {
					t.Errorf("cause not reachable: %v", err)
				}
			}
			if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
			s.Close()
			for _, sess := range s.Sessions() {
				assertNothingInPlaintext(t, sess.Plaintext())
				for _, c := range sess.Commands() {
					if c.Verb == "HELO" {
						t.Error("client fell back to HELO")
					}
				}
			}
		})
	}
}

// STD-7: bytes injected after the 220 to STARTTLS end the session.
func TestSTARTTLSInjection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject string
	}{
		{"reply after 220", "220 2.0.0 go ahead\r\n250-mx.test.example\r\n250 AUTH PLAIN\r\n"},
		{"garbage after 220", "220 go ahead\r\nXXXX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "STARTTLS" {
						c.Write(tc.inject)
						c.StartTLS()
						return "", true
					}
					return "", false
				}
			})
			d := dialerFor(t, s)
			d.Auth = PlainAuth("", "alice", "secret")
			err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg))
			var dg *DowngradeError
			if !errors.As(err, &dg) || dg.Reason != ReasonSTARTTLSInjection || !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want injection DowngradeError", err)
			}
			s.Close()
			for _, sess := range s.Sessions() {
				assertNothingInPlaintext(t, sess.Plaintext())
				if len(sess.Encrypted()) != 0 {
					t.Errorf("client sent %q after the injection", sess.Encrypted())
				}
			}
		})
	}
}

// STD-14, STD-34: SNI is the A-label form of the host; an IP host sends no
// SNI and is verified against the IP address.
func TestSNIAndALabels(t *testing.T) {
	ca, _ := pki(t)
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"xn--bcher-kva.test.example"}})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = leaf.ServerConfig() })
	d := dialerFor(t, s)
	d.Host = "Bücher.test.example"
	d.LocalName = "client.bücher.example"
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	s.WaitSessions(ctxT(t), 1)
	sess := s.Sessions()[0]
	st, _ := sess.TLSState()
	if st.ServerName != "xn--bcher-kva.test.example" {
		t.Errorf("SNI = %q", st.ServerName)
	}
	if cmds := sess.Commands(); cmds[0].Arg != "client.xn--bcher-kva.example" {
		t.Errorf("EHLO argument %q", cmds[0].Arg)
	}

	s2 := newServer(t, nil)
	d2 := dialerFor(t, s2)
	d2.Host = "127.0.0.1"
	c2, err := d2.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c2.Quit(ctxT(t))
	s2.WaitSessions(ctxT(t), 1)
	if st, _ := s2.Sessions()[0].TLSState(); st.ServerName != "" {
		t.Errorf("SNI %q sent for an IP address", st.ServerName)
	}
}

func TestCallerTLSConfigNotMutated(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	pool := mustCertPool(t)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10}
	d.TLSConfig = cfg
	d.VerifyConnection = func(tls.ConnectionState) error { return nil }
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	if cfg.RootCAs != pool || cfg.MinVersion != tls.VersionTLS10 || cfg.ServerName != "" || cfg.InsecureSkipVerify || cfg.VerifyConnection != nil {
		t.Fatal("caller's tls.Config changed")
	}
	if _, err := (&Dialer{Host: "x", TLSConfig: &tls.Config{MaxVersion: tls.VersionTLS11}}).Dial(ctxT(t)); err == nil || !strings.Contains(err.Error(), "TLS 1.2") {
		t.Errorf("MaxVersion below TLS 1.2 accepted: %v", err)
	}
}

// STD-4, STD-5, STD-15, STD-23: what the server offered before TLS is
// forgotten.
func TestCapabilitiesOnlyAfterTLS(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Extensions = []string{"PIPELINING", "AUTH PLAIN LOGIN", "SIZE 100", "CHUNKING"}
		s.TLSExtensions = []string{"8BITMIME", "SIZE 5000000"}
	})
	d := dialerFor(t, s)
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ext := range []string{"PIPELINING", "AUTH", "CHUNKING"} {
		if ok, _ := c.Extension(ext); ok {
			t.Errorf("%s from before TLS kept", ext)
		}
	}
	if _, p := c.Extension("SIZE"); p != "5000000" {
		t.Errorf("SIZE = %q", p)
	}
	err = c.Auth(ctxT(t), PlainAuth("", "alice", "secret"))
	if !errors.Is(err, ErrAuthUnavailable) {
		t.Errorf("AUTH without post-TLS AUTH: %v", err)
	}
	// A 200-octet message fits the post-TLS SIZE, not the pre-TLS one.
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(strings.Repeat("x", 200)+"\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	s.WaitSessions(ctxT(t), 1)
	for _, cmd := range s.Sessions()[0].Commands() {
		if cmd.Verb == "BDAT" || cmd.Verb == "AUTH" {
			t.Errorf("used %s offered only before TLS", cmd.Verb)
		}
	}
}

func TestInsecureOptions(t *testing.T) {
	t.Run("opportunistic without STARTTLS", func(t *testing.T) {
		s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
		d := dialerFor(t, s)
		d.InsecureOpportunisticTLS = true
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
		if m := s.Messages(); len(m) != 1 || m[0].TLS {
			t.Fatalf("messages %+v", m)
		}
		d.Auth = PlainAuth("", "alice", "secret")
		err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg))
		if !errors.Is(err, ErrInsecureAuth) {
			t.Fatalf("AUTH in plaintext: %v", err)
		}
		d.InsecureAuth = true
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("opportunistic uses TLS when offered", func(t *testing.T) {
		s := newServer(t, nil)
		d := dialerFor(t, s)
		d.InsecureOpportunisticTLS = true
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
		if m := s.Messages(); len(m) != 1 || !m[0].TLS {
			t.Fatalf("messages %+v", m)
		}
	})
	t.Run("plaintext never starts TLS", func(t *testing.T) {
		s := newServer(t, nil)
		d := dialerFor(t, s)
		d.Security, d.InsecurePlaintext = SecurityAuto, true
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
		if m := s.Messages(); len(m) != 1 || m[0].TLS {
			t.Fatalf("messages %+v", m)
		}
	})
	t.Run("skip verify", func(t *testing.T) {
		self, _ := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"whatever.example"}})
		s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = self.ServerConfig() })
		d := dialerFor(t, s)
		d.InsecureSkipVerify = true
		c, err := d.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.TLSConnectionState(); !ok || c.Verified() || c.ServerAuth() != ServerAuthNone {
			t.Fatalf("want TLS, unverified; server auth %v", c.ServerAuth())
		}
		if err := c.Auth(ctxT(t), PlainAuth("", "alice", "secret")); !errors.Is(err, ErrInsecureAuth) {
			t.Fatalf("AUTH over unverified TLS: %v", err)
		}
		c.Quit(ctxT(t))
	})
}

func TestNewClientOverCallerConn(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.NewClient(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Verified() {
		t.Fatal("not verified")
	}
	if err := c.Quit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}
