//go:build interop

package interop

import (
	"errors"
	"net/smtp"
	"testing"

	"github.com/smtpsecure/smtpsecure"
)

// testCyrus authenticates against Postfix with Cyrus SASL (sasldb), which
// offers PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 after STARTTLS: our
// PLAIN and LOGIN, net/smtp's CRAM-MD5 through NetSMTPAuth, and our
// SCRAM-SHA-256, which PasswordAuth must prefer, for the ASCII and the
// UTF-8 password. SCRAM proves both sides: the library refuses a 235 unless
// the server's signature checked out.
//
// STD-15, STD-17, STD-21
func testCyrus(t *testing.T, l *lab) {
	host := l.mxHost
	type method struct {
		name string
		auth func(u user) smtpsecure.Auth
		mech string
	}
	methods := []method{
		{"PLAIN", func(u user) smtpsecure.Auth { return smtpsecure.PlainAuth("", u.name, u.pass) }, "PLAIN"},
		{"LOGIN", func(u user) smtpsecure.Auth { return smtpsecure.LoginAuth(u.name, u.pass) }, "LOGIN"},
		{"CRAM-MD5", func(u user) smtpsecure.Auth { return smtpsecure.NetSMTPAuth(smtp.CRAMMD5Auth(u.name, u.pass)) }, "CRAM-MD5"},
		{"NetSMTPPlain", func(u user) smtpsecure.Auth {
			return smtpsecure.NetSMTPAuth(smtp.PlainAuth("", u.name, u.pass, host))
		}, "PLAIN"},
		{"SCRAM-SHA-256", func(u user) smtpsecure.Auth { return smtpsecure.ScramAuth(u.name, u.pass) }, "SCRAM-SHA-256"},
		{"PasswordAuth", func(u user) smtpsecure.Auth { return smtpsecure.PasswordAuth(u.name, u.pass) }, "SCRAM-SHA-256"},
	}
	for _, m := range methods {
		for _, u := range []struct {
			name string
			user *user
		}{{"ASCII", &l.alice}, {"UTF-8", &l.bob}} {
			t.Run(m.name+"/"+u.name, func(t *testing.T) {
				t.Parallel()
				l.submit(t, submission{
					tg: l.cyrus, host: host, user: u.user, auth: m.auth, mech: m.mech,
					to: []string{"cyrus@" + l.relayDomain}, body: []byte("Authenticated by Cyrus SASL.\r\n"),
				})
			})
		}
		t.Run(m.name+"/WrongPassword", func(t *testing.T) {
			t.Parallel()
			ctx := caseContext(t)
			d, ts := l.dialer(t, l.cyrus, host)
			d.Auth = m.auth(user{l.bob.name, "pass w0rd"}) // the UTF-8 password without its umlaut
			offset := l.logSize(t)
			_, err := d.Dial(ctx)
			checkAuthFailed(t, err, m.mech)
			s := l.waitSession(t, l.cyrus.listener, ts.only(t), offset)
			expectCounts(t, s, map[string]string{"auth": "0/1", "mail": ""})
		})
	}

	// CRAM-MD5 is Cyrus's alone: against Dovecot it is unavailable, which
	// is an error before any AUTH command.
	t.Run("CRAM-MD5/NotOffered", func(t *testing.T) {
		t.Parallel()
		ctx := caseContext(t)
		d, ts := l.dialer(t, l.starttls, host)
		d.Auth = smtpsecure.NetSMTPAuth(smtp.CRAMMD5Auth(l.alice.name, l.alice.pass))
		offset := l.logSize(t)
		_, err := d.Dial(ctx)
		var ae *smtpsecure.AuthError
		if !errors.As(err, &ae) || !errors.Is(err, smtpsecure.ErrAuthUnavailable) || errors.Is(err, smtpsecure.ErrAuthFailed) {
			t.Fatalf("Dial: %v, want an *AuthError matching ErrAuthUnavailable", err)
		}
		s := l.waitSession(t, l.starttls.listener, ts.only(t), offset)
		expectCounts(t, s, map[string]string{"auth": "", "mail": ""})
	})
}
