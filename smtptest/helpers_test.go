package smtptest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// testMessage is a small message with a header and a dot-led line.
const testMessage = "From: me@example.com\r\nTo: you@example.net\r\nSubject: hello\r\n\r\nfirst line\r\n.dot line\r\n"

// testCtx bounds a test's network calls generously: on a loaded machine a
// test must not fail because it is slow, only because it is wrong.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startServer configures an unstarted server with configure, starts it
// (implicit TLS when implicit is set) and closes it at the end of the test.
func startServer(t *testing.T, implicit bool, configure func(*smtptest.Server)) *smtptest.Server {
	t.Helper()
	srv := smtptest.NewUnstartedServer()
	srv.Logf = t.Logf
	if configure != nil {
		configure(srv)
	}
	if implicit {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// send sends testMessage with d from me@example.com to the recipients.
func send(t *testing.T, d *smtpsecure.Dialer, to ...string) (*smtpsecure.SendResult, error) {
	t.Helper()
	env := &smtpsecure.Envelope{From: "me@example.com", To: to}
	return d.Send(testCtx(t), env, strings.NewReader(testMessage))
}

// waitSessions waits for n sessions to end and returns them.
func waitSessions(t *testing.T, srv *smtptest.Server, n int) []*smtptest.Session {
	t.Helper()
	ss, err := srv.WaitSessions(testCtx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// assertNothingLeaked fails unless the plaintext part of a session holds
// only EHLO, STARTTLS and QUIT commands (or nothing, for implicit TLS).
func assertNothingLeaked(t *testing.T, sess *smtptest.Session) {
	t.Helper()
	for _, line := range bytes.Split(sess.Plaintext(), []byte("\r\n")) {
		verb, _, _ := strings.Cut(string(line), " ")
		switch strings.ToUpper(verb) {
		case "", "EHLO", "STARTTLS", "QUIT":
		default:
			t.Errorf("sent in plaintext: %q", line)
		}
	}
	for _, c := range sess.Commands() {
		if !c.TLS && c.Verb != "EHLO" && c.Verb != "STARTTLS" && c.Verb != "QUIT" {
			t.Errorf("command %s outside TLS", c.Verb)
		}
	}
}
