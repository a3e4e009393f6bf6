package smtptest_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net/smtp"
	"reflect"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// Every way to start a server gives one that a Dialer reaches over
// verified TLS, with the recording a test reads afterwards.
func TestStartAndRecord(t *testing.T) {
	cases := []struct {
		name     string
		start    func() *smtptest.Server
		implicit bool
	}{
		{"NewServer", smtptest.NewServer, false},
		{"NewTLSServer", smtptest.NewTLSServer, true},
		{"unstarted+Start", func() *smtptest.Server { s := smtptest.NewUnstartedServer(); s.Start(); return s }, false},
		{"unstarted+StartTLS", func() *smtptest.Server { s := smtptest.NewUnstartedServer(); s.StartTLS(); return s }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.start()
			t.Cleanup(srv.Close)
			d := srv.Dialer()
			wantSec := smtpsecure.SecuritySTARTTLS
			if tc.implicit {
				wantSec = smtpsecure.SecurityImplicitTLS
			}
			if d.Security != wantSec || d.Host != "localhost" || d.Port != srv.Port() {
				t.Errorf("Dialer: Host %q Port %d Security %v; want localhost, %d, %v", d.Host, d.Port, d.Security, srv.Port(), wantSec)
			}
			res, err := send(t, d, "you@example.net")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Accepted, []string{"you@example.net"}) {
				t.Errorf("accepted %v", res.Accepted)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages recorded, want 1", len(msgs))
			}
			m := msgs[0]
			if m.From != "me@example.com" || !reflect.DeepEqual(m.To, []string{"you@example.net"}) {
				t.Errorf("envelope %q -> %q", m.From, m.To)
			}
			if string(m.Data) != testMessage {
				t.Errorf("Data = %q, want %q", m.Data, testMessage)
			}
			if m.Header.Get("Subject") != "hello" || string(m.Body) != "first line\r\n.dot line\r\n" {
				t.Errorf("Header %v, Body %q", m.Header, m.Body)
			}
			if m.TLS == nil || m.TLS.Version < tls.VersionTLS12 || m.TLS.ServerName != "localhost" {
				t.Errorf("TLS state %+v: want TLS 1.2 or later with SNI localhost", m.TLS)
			}
			if m.HelloName != "localhost" || m.AuthUser != "" || m.Session == nil {
				t.Errorf("HelloName %q, AuthUser %q, Session %v", m.HelloName, m.AuthUser, m.Session)
			}
			sess := waitSessions(t, srv, 1)[0]
			if sess != m.Session || sess.Err() != nil || sess.TLS() == nil {
				t.Errorf("session %p (message's %p), Err %v, TLS %v", sess, m.Session, sess.Err(), sess.TLS())
			}
			if tc.implicit && sess.Plaintext() != nil {
				t.Errorf("implicit TLS session has plaintext %q", sess.Plaintext())
			}
			if !tc.implicit && string(sess.Plaintext()) != "EHLO localhost\r\nSTARTTLS\r\n" {
				t.Errorf("plaintext %q", sess.Plaintext())
			}
			if !strings.Contains(string(sess.Encrypted()), "MAIL FROM:<me@example.com>") {
				t.Errorf("encrypted part lacks MAIL: %q", sess.Encrypted())
			}
			assertNothingLeaked(t, sess)
		})
	}
}

// STD-15, STD-16: each mechanism the server can offer, after TLS only, and
// the identity it records.
func TestAuthMechanisms(t *testing.T) {
	cases := []struct {
		mechs    []string
		auth     smtpsecure.Auth
		wantMech string
	}{
		{[]string{"PLAIN", "LOGIN"}, smtpsecure.PasswordAuth("alice", "secret"), "PLAIN"},
		{[]string{"LOGIN"}, smtpsecure.LoginAuth("alice", "secret"), "LOGIN"},
		{[]string{"CRAM-MD5"}, smtpsecure.NetSMTPAuth(smtp.CRAMMD5Auth("alice", "secret")), "CRAM-MD5"},
		{[]string{"SCRAM-SHA-256"}, smtpsecure.ScramAuth("alice", "secret"), "SCRAM-SHA-256"},
		{[]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}, smtpsecure.PasswordAuth("alice", "secret"), "SCRAM-SHA-256-PLUS"},
		{[]string{"XOAUTH2"}, smtpsecure.XOAuth2Auth("alice", smtpsecure.StaticToken("secret")), "XOAUTH2"},
		{[]string{"oauthbearer"}, smtpsecure.OAuthBearerAuth("alice", smtpsecure.StaticToken("secret")), "OAUTHBEARER"},
	}
	for _, tc := range cases {
		t.Run(tc.wantMech, func(t *testing.T) {
			srv := startServer(t, false, func(s *smtptest.Server) {
				s.Users = map[string]string{"alice": "secret"}
				s.AuthMechanisms = tc.mechs
			})
			d := srv.Dialer()
			d.Auth = tc.auth
			if _, err := send(t, d, "you@example.net"); err != nil {
				t.Fatal(err)
			}
			m := srv.Messages()[0]
			if m.AuthUser != "alice" || m.AuthMechanism != tc.wantMech {
				t.Errorf("message: user %q mechanism %q, want alice %s", m.AuthUser, m.AuthMechanism, tc.wantMech)
			}
			sess := waitSessions(t, srv, 1)[0]
			if sess.AuthUser() != "alice" || sess.AuthMechanism() != tc.wantMech {
				t.Errorf("session: user %q mechanism %q", sess.AuthUser(), sess.AuthMechanism())
			}
			assertNothingLeaked(t, sess)
			for _, c := range sess.Commands() {
				if c.Verb == "AUTH" && c.Arg != tc.wantMech {
					t.Errorf("recorded AUTH argument %q: want the mechanism only", c.Arg)
				}
			}
		})
	}
}

// With Users set the server requires AUTH; wrong credentials and a missing
// Auth give the library's typed errors.
func TestAuthRequired(t *testing.T) {
	srv := startServer(t, false, func(s *smtptest.Server) { s.Users = map[string]string{"alice": "secret"} })
	cases := []struct {
		name string
		auth smtpsecure.Auth
		want error
	}{
		{"wrong password", smtpsecure.PlainAuth("", "alice", "wrong"), smtpsecure.ErrAuthFailed},
		{"unknown user", smtpsecure.PlainAuth("", "bob", "secret"), smtpsecure.ErrAuthFailed},
		{"no auth", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := srv.Dialer()
			d.Auth = tc.auth
			_, err := send(t, d, "you@example.net")
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var se *smtpsecure.SMTPError
			if tc.want == nil && (!errors.As(err, &se) || se.Code != 530) {
				t.Fatalf("err = %v, want a 530 refusal of MAIL", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted without authentication", n)
	}
}

// STD-2, STD-16: without STARTTLS the client refuses to go on; the server
// offered AUTH in plaintext as bait, and nothing but EHLO and QUIT arrived.
func TestDisableSTARTTLS(t *testing.T) {
	srv := startServer(t, false, func(s *smtptest.Server) {
		s.Users = map[string]string{"alice": "secret"}
		s.DisableSTARTTLS = true
	})
	d := srv.Dialer()
	d.Auth = smtpsecure.PlainAuth("", "alice", "secret")
	_, err := send(t, d, "you@example.net")
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) || dg.Reason != smtpsecure.ReasonSTARTTLSNotOffered {
		t.Fatalf("err = %v, want a DowngradeError for STARTTLS not offered", err)
	}
	sess := waitSessions(t, srv, 1)[0]
	assertNothingLeaked(t, sess)
	if sess.TLS() != nil {
		t.Error("session reports TLS")
	}

	// The bait works: a client told to send credentials in plaintext can,
	// and the recording shows them.
	d = srv.Dialer()
	d.InsecurePlaintext, d.InsecureAuth = true, true
	d.Security = smtpsecure.SecurityAuto
	d.Auth = smtpsecure.PlainAuth("", "alice", "secret")
	if _, err := send(t, d, "you@example.net"); err != nil {
		t.Fatal(err)
	}
	sess = waitSessions(t, srv, 2)[1]
	if !strings.Contains(string(sess.Plaintext()), "AUTH PLAIN") || sess.AuthUser() != "alice" {
		t.Errorf("plaintext %q: want the leaked AUTH recorded", sess.Plaintext())
	}
	if m := srv.Messages()[0]; m.TLS != nil || m.AuthUser != "alice" {
		t.Errorf("message TLS %v AuthUser %q", m.TLS, m.AuthUser)
	}
}

// Extensions decide what EHLO offers and which MAIL and RCPT parameters are
// accepted; they are recorded as received.
func TestExtensions(t *testing.T) {
	cases := []struct {
		name       string
		ext        []string
		env        smtpsecure.Envelope
		msg        string
		wantErr    error
		wantChunks int
		wantMail   map[string]string
		wantRcpt   map[string]string
	}{
		{
			name: "DATA when no CHUNKING", ext: []string{"PIPELINING", "8BITMIME"},
			msg:      testMessage,
			wantMail: map[string]string{"BODY": "8BITMIME"}, wantRcpt: map[string]string{},
		},
		{
			name: "BDAT with CHUNKING", ext: []string{"CHUNKING"},
			msg: testMessage, wantChunks: 1,
			wantMail: map[string]string{}, wantRcpt: map[string]string{},
		},
		{
			name: "REQUIRETLS and DSN", ext: []string{"REQUIRETLS", "DSN"},
			env: smtpsecure.Envelope{
				MailOptions: smtpsecure.MailOptions{RequireTLS: true, Return: smtpsecure.ReturnHeaders, EnvelopeID: "id1"},
				Notify:      smtpsecure.NotifyFailure | smtpsecure.NotifyDelay,
			},
			msg:      testMessage,
			wantMail: map[string]string{"REQUIRETLS": "", "RET": "HDRS", "ENVID": "id1"},
			wantRcpt: map[string]string{"NOTIFY": "FAILURE,DELAY"},
		},
		{
			name: "SMTPUTF8", ext: []string{"8BITMIME", "SMTPUTF8"},
			env:      smtpsecure.Envelope{MailOptions: smtpsecure.MailOptions{SMTPUTF8: true}},
			msg:      "Subject: grüße\r\n\r\nä\r\n",
			wantMail: map[string]string{"BODY": "8BITMIME", "SMTPUTF8": ""}, wantRcpt: map[string]string{},
		},
		{name: "no REQUIRETLS", ext: []string{"DSN"}, env: smtpsecure.Envelope{MailOptions: smtpsecure.MailOptions{RequireTLS: true}}, msg: testMessage, wantErr: smtpsecure.ErrExtensionMissing},
		{name: "SIZE limit", ext: []string{"SIZE 20"}, msg: testMessage, wantErr: smtpsecure.ErrMessageTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, false, func(s *smtptest.Server) { s.Extensions = tc.ext })
			env := tc.env
			env.From, env.To = "me@example.com", []string{"you@example.net"}
			_, err := srv.Dialer().Send(testCtx(t), &env, strings.NewReader(tc.msg))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("%d messages accepted", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := srv.Messages()[0]
			if string(m.Data) != tc.msg || m.Chunks != tc.wantChunks {
				t.Errorf("Data %q in %d chunks, want %q in %d", m.Data, m.Chunks, tc.msg, tc.wantChunks)
			}
			delete(m.MailParams, "SIZE") // the library declares it from the reader
			if !reflect.DeepEqual(m.MailParams, tc.wantMail) || !reflect.DeepEqual(m.RcptParams, []map[string]string{tc.wantRcpt}) {
				t.Errorf("MAIL params %v, RCPT params %v; want %v, %v", m.MailParams, m.RcptParams, tc.wantMail, tc.wantRcpt)
			}
		})
	}
}

// The server refuses a message over its SIZE limit even when the client
// did not declare the size.
func TestSizeEnforced(t *testing.T) {
	srv := startServer(t, false, func(s *smtptest.Server) { s.Extensions = []string{"SIZE 30", "ENHANCEDSTATUSCODES"} })
	// A reader without Len: the client cannot declare SIZE.
	msg := io.MultiReader(strings.NewReader(testMessage))
	_, err := srv.Dialer().Send(testCtx(t), &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}, msg)
	var se *smtpsecure.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("err = %v, want 552", err)
	}
}

// Hostname names the server in the greeting, the certificate and the
// Dialer; any name the certificate covers can be dialled.
func TestHostname(t *testing.T) {
	srv := startServer(t, false, func(s *smtptest.Server) { s.Hostname = "mx.test.example" })
	for _, host := range []string{"mx.test.example", "localhost", "127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			d := srv.Dialer()
			if d.Host != "mx.test.example" {
				t.Errorf("Dialer Host %q", d.Host)
			}
			d.Host = host
			if _, err := send(t, d, "you@example.net"); err != nil {
				t.Fatal(err)
			}
		})
	}
	cert := srv.Certificate()
	if cert == nil || cert.VerifyHostname("mx.test.example") != nil || cert.VerifyHostname("localhost") != nil {
		t.Errorf("certificate names %v", cert)
	}
	d := srv.Dialer()
	d.Host = "other.test.example"
	_, err := send(t, d, "you@example.net")
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) || dg.Reason != smtpsecure.ReasonCertificateHostMismatch {
		t.Errorf("err = %v, want a host mismatch", err)
	}
}

// Only the server's CA is trusted: a Dialer with the system roots fails.
func TestOnlyTheServerCAIsTrusted(t *testing.T) {
	srv := smtptest.NewServer()
	t.Cleanup(srv.Close)
	d := srv.Dialer()
	d.TLSConfig = nil
	_, err := send(t, d, "you@example.net")
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) || dg.Reason != smtpsecure.ReasonCertificateUntrusted {
		t.Fatalf("err = %v, want an untrusted certificate", err)
	}
	if srv.RootCAs() == nil || srv.RootCAs() == srv.RootCAs() {
		t.Error("RootCAs must return a new pool each time")
	}
}

// Server.TLS is the base of the server's configuration: it limits the
// version, and it is not modified.
func TestTLSConfig(t *testing.T) {
	base := &tls.Config{MaxVersion: tls.VersionTLS12}
	srv := startServer(t, false, func(s *smtptest.Server) { s.TLS = base })
	if _, err := send(t, srv.Dialer(), "you@example.net"); err != nil {
		t.Fatal(err)
	}
	if v := srv.Messages()[0].TLS.Version; v != tls.VersionTLS12 {
		t.Errorf("version %x, want TLS 1.2", v)
	}
	if len(base.Certificates) != 0 {
		t.Error("Server.TLS was modified")
	}
}

// Mistakes in the configuration panic at Start, with a message that says
// what to do; the misuse of a started server too.
func TestStartPanics(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*smtptest.Server)
		want      string
	}{
		{"STARTTLS listed", func(s *smtptest.Server) { s.Extensions = append(s.Extensions, "STARTTLS") }, "DisableSTARTTLS"},
		{"AUTH listed", func(s *smtptest.Server) { s.Extensions = []string{"AUTH PLAIN"} }, "AuthMechanisms"},
		{"AUTH= listed", func(s *smtptest.Server) { s.Extensions = []string{"AUTH=PLAIN"} }, "AuthMechanisms"},
		{"bad SIZE", func(s *smtptest.Server) { s.Extensions = []string{"SIZE ten"} }, "SIZE"},
		{"line break", func(s *smtptest.Server) { s.Extensions = []string{"DSN\r\n250 X"} }, "invalid extension"},
		{"unknown mechanism", func(s *smtptest.Server) { s.AuthMechanisms = []string{"GSSAPI"} }, "GSSAPI"},
		{"started twice", func(s *smtptest.Server) { s.Start(); t.Cleanup(s.Close) }, "already started"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.NewUnstartedServer()
			defer srv.Close()
			tc.configure(srv)
			defer func() {
				r := recover()
				if msg, _ := r.(error); msg == nil || !strings.Contains(msg.Error(), tc.want) {
					t.Errorf("panic %v, want one mentioning %q", r, tc.want)
				}
			}()
			srv.Start()
		})
	}
}

// Before Start the accessors are empty and Close is harmless; Dialer
// panics.
func TestUnstarted(t *testing.T) {
	srv := smtptest.NewUnstartedServer()
	srv.Close()
	if srv.Addr() != "" || srv.Port() != 0 || srv.Certificate() != nil || srv.RootCAs() != nil || srv.Sessions() != nil {
		t.Error("an unstarted server reports an address, a certificate or sessions")
	}
	if _, err := srv.WaitMessages(testCtx(t), 1); err == nil {
		t.Error("WaitMessages before Start did not fail")
	}
	if _, err := srv.WaitSessions(testCtx(t), 1); err == nil {
		t.Error("WaitSessions before Start did not fail")
	}
	defer func() {
		if recover() == nil {
			t.Error("Dialer before Start did not panic")
		}
	}()
	srv.Dialer()
}
