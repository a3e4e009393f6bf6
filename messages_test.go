package smtpsecure

import (
	"context"
	"errors"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// Issue 9 §10: a message says what failed, where, and what the caller can
// do, once: one "smtpsecure:" prefix, the host named once, no cause
// repeated in other words ("reading the reply to EHLO: reading smtp
// reply").
func TestErrorMessagesSayItOnce(t *testing.T) {
	replyTo := func(verb, reply string) func(*smtptest.Server) {
		return func(s *smtptest.Server) {
			s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if cmd.Verb == verb {
					return reply, true
				}
				return "", false
			}
		}
	}
	stall := func(verb string) func(*smtptest.Server) {
		return func(s *smtptest.Server) {
			s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if cmd.Verb == verb && cmd.TLS {
					c.Stall(context.Background())
					return "", true
				}
				return "", false
			}
		}
	}
	cases := []struct {
		name      string
		configure func(*smtptest.Server)
		auth      Auth
		timeout   time.Duration
		want      []string // substrings the message must have
	}{
		{"EHLO stalls", stall("EHLO"), nil, stallTimeout, []string{"reading the reply to EHLO: ", "i/o timeout"}},
		{"AUTH refused", func(s *smtptest.Server) {}, PlainAuth("", "alice", "wrong"), 0, []string{"refused authentication with PLAIN: 535 5.7.8"}},
		{"XOAUTH2 refused", func(s *smtptest.Server) { s.TLSExtensions = []string{"AUTH XOAUTH2"} }, XOAuth2Auth("alice", StaticToken("expired")), 0,
			[]string{"refused authentication with XOAUTH2: 535", "the provider said"}},
		{"STARTTLS refused", replyTo("STARTTLS", "454 4.7.0 TLS not available\r\n"), nil, 0, []string{"server refused STARTTLS: 454 4.7.0 TLS not available"}},
		{"MAIL refused", replyTo("MAIL", "550 5.7.1 relaying denied\r\n"), nil, 0, []string{"refused MAIL FROM:<a@test.example>", "550 5.7.1 relaying denied"}},
		{"injection", replyTo("CONNECT", "220 mx.test.example ESMTP\r\n250 injected\r\n"), nil, 0, []string{"response injection", "unsolicited"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.configure)
			d := dialerFor(t, s)
			d.Auth = tc.auth
			if tc.timeout > 0 {
				d.CommandTimeout = tc.timeout
			}
			err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg))
			if err == nil {
				t.Fatal("no error")
			}
			checkMessage(t, err.Error(), d, s)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

// checkMessage checks the shape every message of the package has.
func checkMessage(t *testing.T, msg string, d *Dialer, s interface{ Addr() string }) {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr())
	host := net.JoinHostPort(d.Host, port)
	if !strings.HasPrefix(msg, "smtpsecure: ") || strings.Count(msg, "smtpsecure:") != 1 {
		t.Errorf("message %q: want one smtpsecure: prefix", msg)
	}
	if n := strings.Count(msg, host); n != 1 {
		t.Errorf("message %q names %s %d times", msg, host, n)
	}
	if strings.Contains(msg, "reading smtp reply") {
		t.Errorf("message %q says it twice", msg)
	}
}

// The drop-in's users have no Dialer: its advice for an untrusted
// certificate speaks of the system's roots.
func TestSendMailUntrustedAdvice(t *testing.T) {
	self, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{testHost}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = self.ServerConfig() })
	err = SendMail(s.Addr(), smtp.PlainAuth("", "alice", "secret", "127.0.0.1"), "a@test.example", []string{"b@test.example"}, []byte(testMsg))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonCertificateUntrusted {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "system's") || strings.Contains(msg, "Dialer.TLSConfig") && !strings.Contains(msg, "or use a Dialer") {
		t.Errorf("drop-in advice %q", msg)
	}
	// A Dialer's user gets the Dialer's advice.
	d := dialerFor(t, s)
	err = sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg))
	if !strings.Contains(err.Error(), "Dialer.TLSConfig.RootCAs") || strings.Contains(err.Error(), "SendMail") {
		t.Errorf("Dialer advice %q", err)
	}
}

// Issue 9 §10: a greeting that never comes is bounded by GreetingTimeout,
// shorter than CommandTimeout, and on a port other than 465 the message
// says that the port probably expects implicit TLS.
func TestGreetingTimeout(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "CONNECT" {
				c.Stall(context.Background())
				return "", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.CommandTimeout = time.Hour // only GreetingTimeout can end the wait
	d.GreetingTimeout = 100 * time.Millisecond
	_, err := within(t, time.Minute, func() error { _, err := d.Dial(ctxT(t)); return err })
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	checkMessage(t, err.Error(), d, s)
	if !strings.Contains(err.Error(), "implicit TLS") || !strings.Contains(err.Error(), "465") {
		t.Errorf("message %q does not point at implicit TLS", err)
	}
	if DefaultGreetingTimeout >= DefaultCommandTimeout || DefaultGreetingTimeout != 30*time.Second {
		t.Errorf("DefaultGreetingTimeout = %v", DefaultGreetingTimeout)
	}
}

// A handshake against a plaintext server (implicit TLS on a STARTTLS port)
// says that the port probably expects STARTTLS.
func TestImplicitTLSOnPlaintextPortAdvice(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	d.Security = SecurityImplicitTLS
	_, err := d.Dial(ctxT(t))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonHandshakeFailed {
		t.Fatalf("err = %v", err)
	}
	checkMessage(t, err.Error(), d, s)
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("message %q does not point at STARTTLS", err)
	}
}
