package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"net/smtp"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/smtpsecure/smtpsecure/internal/scram"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// withScram offers SCRAM-SHA-256 and SCRAM-SHA-256-PLUS backed by the
// internal/scram server, with channel binding to the server's TLS state.
func withScram(users map[string]string) func(*smtptest.Server) {
	creds := map[string]scram.Credentials{}
	for u, p := range users {
		creds[u] = scram.NewCredentials(p, []byte("salt-"+u), 4096)
	}
	lookup := func(u string) (scram.Credentials, bool) { c, ok := creds[u]; return c, ok }
	return func(s *smtptest.Server) {
		s.Mechanisms = map[string]func(*smtptest.Conn) smtptest.SASLServer{
			"SCRAM-SHA-256": func(c *smtptest.Conn) smtptest.SASLServer { return scram.NewServer(lookup, nil) },
			"SCRAM-SHA-256-PLUS": func(c *smtptest.Conn) smtptest.SASLServer {
				st, _ := c.TLSState()
				cb, _ := scram.TLSExporter(&st)
				return scram.NewServer(lookup, cb)
			},
		}
	}
}

// STD-15, STD-17, STD-21: each mechanism, chosen by the server's offer after
// TLS, with the strongest picked for password credentials.
func TestAuthMechanisms(t *testing.T) {
	cases := []struct {
		name     string
		offered  string
		auth     Auth
		wantMech string
	}{
		{"PLAIN", "AUTH PLAIN LOGIN", PlainAuth("", "alice", "secret"), "PLAIN"},
		{"LOGIN", "AUTH LOGIN", LoginAuth("alice", "secret"), "LOGIN"},
		{"password picks SCRAM-PLUS", "AUTH PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS", PasswordAuth("alice", "secret"), "SCRAM-SHA-256-PLUS"},
		{"password picks SCRAM", "AUTH LOGIN PLAIN SCRAM-SHA-256", PasswordAuth("alice", "secret"), "SCRAM-SHA-256"},
		{"password picks PLAIN", "AUTH LOGIN PLAIN", PasswordAuth("alice", "secret"), "PLAIN"},
		{"password falls to LOGIN", "AUTH LOGIN", PasswordAuth("alice", "secret"), "LOGIN"},
		{"SCRAM only", "AUTH SCRAM-SHA-256", ScramAuth("alice", "secret"), "SCRAM-SHA-256"},
		{"OAUTHBEARER", "AUTH OAUTHBEARER XOAUTH2", OAuthBearerAuth("alice", StaticToken("token-1")), "OAUTHBEARER"},
		{"XOAUTH2 fallback", "AUTH XOAUTH2 PLAIN", OAuthBearerAuth("alice", StaticToken("token-1")), "XOAUTH2"},
		{"XOAUTH2", "AUTH XOAUTH2", XOAuth2Auth("alice", StaticToken("token-1")), "XOAUTH2"},
		{"go-sasl client", "AUTH PLAIN", SASLAuth(sasl.NewPlainClient("", "alice", "secret")), "PLAIN"},
		{"net/smtp PlainAuth", "AUTH PLAIN", NetSMTPAuth(smtp.PlainAuth("", "alice", "secret", testHost)), "PLAIN"},
		{"net/smtp CRAMMD5Auth", "AUTH CRAM-MD5", NetSMTPAuth(smtp.CRAMMD5Auth("alice", "secret")), "CRAM-MD5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			users := map[string]string{"alice": "secret"}
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = []string{"ENHANCEDSTATUSCODES", tc.offered}
				s.Users = map[string]string{"alice": "secret"}
				if strings.Contains(tc.name, "OAUTH") || strings.Contains(tc.name, "XOAUTH2") {
					s.Users = map[string]string{"alice": "token-1"}
				}
				withScram(users)(s)
			})
			d := dialerFor(t, s)
			d.Auth = tc.auth
			c, err := d.Dial(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthMechanism() != tc.wantMech {
				t.Errorf("mechanism %q, want %q", c.AuthMechanism(), tc.wantMech)
			}
			c.Quit(ctxT(t))
			s.WaitSessions(ctxT(t), 1)
			sess := s.Sessions()[0]
			if sess.AuthUser() != "alice" {
				t.Errorf("server authenticated %q", sess.AuthUser())
			}
			assertNothingInPlaintext(t, sess.Plaintext())
		})
	}
}

// STD-21: a wrong password is an *AuthError with the server's 535 5.7.8.
func TestAuthFailure(t *testing.T) {
	for _, a := range []Auth{PlainAuth("", "alice", "wrong"), LoginAuth("alice", "wrong"), ScramAuth("alice", "wrong")} {
		s := newServer(t, func(s *smtptest.Server) {
			s.TLSExtensions = []string{"ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN SCRAM-SHA-256"}
			withScram(map[string]string{"alice": "secret"})(s)
		})
		d := dialerFor(t, s)
		d.Auth = a
		_, err := d.Dial(ctxT(t))
		var ae *AuthError
		var se *SMTPError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAuthFailed) || !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		if se.Code != 535 || !se.Enhanced.SameCondition(CodeAuthInvalid) {
			t.Errorf("reply %d %v", se.Code, se.Enhanced)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// STD-16: no credentials before TLS, whatever the server offers.
func TestNoCredentialsWithoutTLS(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSConfig = nil
		s.Extensions = []string{"AUTH PLAIN LOGIN"}
	})
	for _, d := range []*Dialer{
		func() *Dialer { d := dialerFor(t, s); d.InsecureOpportunisticTLS = true; return d }(),
		func() *Dialer { d := dialerFor(t, s); d.Security, d.InsecurePlaintext = SecurityAuto, true; return d }(),
	} {
		d.Auth = PlainAuth("", "alice", "secret")
		_, err := d.Dial(ctxT(t))
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrInsecureAuth) || errors.Is(err, ErrAuthFailed) {
			t.Fatalf("err = %v", err)
		}
		d.Auth = NetSMTPAuth(smtp.PlainAuth("", "alice", "secret", testHost))
		if _, err := d.Dial(ctxT(t)); !errors.Is(err, ErrInsecureAuth) {
			t.Fatalf("net/smtp auth: %v", err)
		}
	}
	s.Close()
	for _, sess := range s.Sessions() {
		if strings.Contains(string(sess.Plaintext()), "AUTH") {
			t.Fatal("AUTH sent in plaintext")
		}
	}
}

func TestAuthUnavailable(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = []string{"AUTH CRAM-MD5"} })
	d := dialerFor(t, s)
	d.Auth = PasswordAuth("alice", "secret")
	_, err := d.Dial(ctxT(t))
	if !errors.Is(err, ErrAuthUnavailable) || !strings.Contains(err.Error(), "CRAM-MD5") {
		t.Fatalf("err = %v", err)
	}
}

// STD-19: a mechanism error cancels the exchange with "*".
func TestAuthCancel(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = []string{"AUTH LOGIN"}
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "AUTH" {
				c.Write("334 VW5leHBlY3RlZDo=\r\n") // "Unexpected:"
				return "", true
			}
			if cmd.Line == "*" {
				return "501 5.7.0 cancelled\r\n", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.Auth = LoginAuth("alice", "secret")
	_, err := d.Dial(ctxT(t))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err = %v", err)
	}
	s.Close()
	var sawCancel bool
	for _, cmd := range s.Sessions()[0].Commands() {
		sawCancel = sawCancel || cmd.Line == "*"
	}
	if !sawCancel {
		t.Error("no * sent")
	}
}

// A SCRAM server that claims success without its proof is not believed.
func TestScramServerMustProveItself(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = []string{"AUTH SCRAM-SHA-256"}
		withScram(map[string]string{"alice": "secret"})(s)
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "AUTH" {
				return "235 2.7.0 trust me\r\n", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.Auth = ScramAuth("alice", "secret")
	if _, err := d.Dial(ctxT(t)); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err = %v", err)
	}
}

// STD-18: one AUTH per session, never inside a transaction.
func TestAuthOnceOutsideTransactions(t *testing.T) {
	s := newServer(t, nil)
	d := dialerFor(t, s)
	d.Auth = PlainAuth("", "alice", "secret")
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(ctxT(t), PlainAuth("", "alice", "secret")); err == nil {
		t.Fatal("second AUTH allowed")
	}
	c2, err := dialerFor(t, s).Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Mail(ctxT(t), "a@test.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c2.Auth(ctxT(t), PlainAuth("", "alice", "secret")); err == nil {
		t.Fatal("AUTH inside a transaction allowed")
	}
}

// A long initial response (an OAuth token) goes after the first 334
// instead of on the AUTH line (RFC 4954 §4).
func TestLongInitialResponse(t *testing.T) {
	token := strings.Repeat("t", 2000)
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = []string{"AUTH XOAUTH2"}
		s.Users = map[string]string{"alice": token}
	})
	d := dialerFor(t, s)
	d.Auth = XOAuth2Auth("alice", StaticToken(token))
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	s.WaitSessions(ctxT(t), 1)
	for _, cmd := range s.Sessions()[0].Commands() {
		if cmd.Verb == "AUTH" && cmd.Arg != "XOAUTH2" {
			t.Fatalf("AUTH line %d octets", len(cmd.Line))
		}
	}
}

type ctxKey struct{}

// Issue 9 §8: OAuth tokens expire. The token source is called at each
// authentication, with its context; its error is an *AuthError and nothing
// is sent.
func TestTokenSource(t *testing.T) {
	for _, tc := range []struct {
		offered string
		auth    func(user string, src TokenSource) Auth
	}{
		{"AUTH OAUTHBEARER", OAuthBearerAuth},
		{"AUTH XOAUTH2", OAuthBearerAuth},
		{"AUTH XOAUTH2", XOAuth2Auth},
	} {
		t.Run(tc.offered, func(t *testing.T) {
			// Each user's password is the token it must present, so the
			// second session succeeds only with a new token.
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = []string{tc.offered}
				s.Users = map[string]string{"alice": "token-1", "bob": "token-2"}
			})
			calls := 0
			boom := errors.New("refresh token revoked")
			src := func(ctx context.Context) (string, error) {
				if ctx.Value(ctxKey{}) != "dial" {
					return "", errors.New("token source called without the authentication's context")
				}
				calls++
				if calls > 2 {
					return "", boom
				}
				return fmt.Sprintf("token-%d", calls), nil
			}
			ctx := context.WithValue(ctxT(t), ctxKey{}, "dial")
			d := dialerFor(t, s)
			for _, user := range []string{"alice", "bob"} {
				d.Auth = tc.auth(user, src)
				c, err := d.Dial(ctx)
				if err != nil {
					t.Fatalf("%s: %v", user, err)
				}
				c.Quit(ctx)
			}
			_, err := d.Dial(ctx)
			var ae *AuthError
			if !errors.As(err, &ae) || !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
			s.Close()
			sessions := s.Sessions()
			for _, cmd := range sessions[len(sessions)-1].Commands() {
				if cmd.Verb == "AUTH" {
					t.Fatal("AUTH sent although the token source failed")
				}
			}
			if _, err := (StaticToken("")).fetch(ctx); err == nil {
				t.Error("an empty token accepted")
			}
		})
	}
}
