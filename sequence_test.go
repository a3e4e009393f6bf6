package smtpsecure

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// Issue 9 §4: while a Data writer is open, every other call fails with
// ErrSequence at once and sends nothing (no command is written into the
// message); the writer then finishes the message as if nothing happened,
// and Close still works.
func TestCallsWhileDataWriterOpen(t *testing.T) {
	s := newServer(t, nil)
	c := dial(t, s)
	ctx := ctxT(t)
	if err := c.Mail(ctx, "a@test.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "b@test.example", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: open writer\r\n\r\nfirst line\r\n")
	calls := map[string]func() error{
		"Mail": func() error { return c.Mail(ctx, "x@test.example", nil) },
		"Rcpt": func() error { return c.Rcpt(ctx, "x@test.example", nil) },
		"Data": func() error { _, err := c.Data(ctx); return err },
		"Send": func() error {
			_, err := c.Send(ctx, &Envelope{From: "x@test.example", To: []string{"x@test.example"}}, strings.NewReader("x"))
			return err
		},
		"Noop":  func() error { return c.Noop(ctx) },
		"Reset": func() error { return c.Reset(ctx) },
		"Auth":  func() error { return c.Auth(ctx, PlainAuth("", "alice", "secret")) },
		"Quit":  func() error { return c.Quit(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrSequence) {
			t.Errorf("%s with the data writer open: %v, want ErrSequence", name, err)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() = %v after refused calls", err)
	}
	io.WriteString(w, "last line\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("NOOP after the message: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s.WaitSessions(ctx, 1)
	m := s.Messages()
	if len(m) != 1 || string(m[0].Data) != "Subject: open writer\r\n\r\nfirst line\r\nlast line\r\n" {
		t.Fatalf("%d messages, data %q", len(m), m[0].Data)
	}
	if n := strings.Count(strings.Join(s.Sessions()[0].Verbs(), " "), "MAIL"); n != 1 {
		t.Errorf("%d MAIL commands", n)
	}
}

// Close works while a Data writer is open; the writer then fails, and the
// message is not delivered.
func TestCloseWhileDataWriterOpen(t *testing.T) {
	s := newServer(t, nil)
	c := dial(t, s)
	ctx := ctxT(t)
	c.Mail(ctx, "a@test.example", nil)
	c.Rcpt(ctx, "b@test.example", nil)
	w, err := c.Data(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: abandoned\r\n\r\n")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("writer Close after Client.Close: %v", err)
	}
	s.WaitSessions(ctx, 1)
	if len(s.Messages()) != 0 {
		t.Fatal("an abandoned message was delivered")
	}
}

// Issue 9 §4: without PIPELINING, a reply that ends the session (421, or a
// code RCPT cannot get) stops the envelope at once and is the error, not
// an EOF on the next RCPT.
func TestSessionEndingReplyToRcpt(t *testing.T) {
	for _, tc := range []struct {
		reply    string
		code     int
		protocol bool
	}{
		{"421 4.3.2 shutting down\r\n", 421, false},
		{"221 2.0.0 bye\r\n", 0, true},
		{"354 go ahead\r\n", 0, true},
	} {
		t.Run(tc.reply[:3], func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = []string{"8BITMIME", "ENHANCEDSTATUSCODES"}
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "RCPT" {
						c.Write(tc.reply)
						c.Close()
						return "", true
					}
					return "", false
				}
			})
			c := dial(t, s)
			_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example", "c@test.example", "d@test.example"}}, strings.NewReader(testMsg))
			var se *SMTPError
			var pe *ProtocolError
			var ce *ConnError
			switch {
			case tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code):
				t.Fatalf("err = %v (%T), want the %d reply", err, err, tc.code)
			case tc.protocol && !errors.As(err, &pe):
				t.Fatalf("err = %v (%T), want a ProtocolError", err, err)
			case errors.As(err, &ce):
				t.Fatalf("err = %v, a ConnError hides the server's reply", err)
			}
			s.WaitSessions(ctxT(t), 1)
			if n := strings.Count(strings.Join(s.Sessions()[0].Verbs(), " "), "RCPT"); n != 1 {
				t.Errorf("%d RCPT commands sent, want 1", n)
			}
			if c.Err() == nil {
				t.Error("the session is still open after a session-ending reply")
			}
		})
	}
}
