package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

func TestLowLevelTransaction(t *testing.T) {
	s := newServer(t, nil)
	c := dial(t, s)
	ctx := ctxT(t)
	if _, err := c.Data(ctx); err == nil {
		t.Fatal("DATA without a transaction")
	}
	if err := c.Mail(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(ctx, "a@test.example", nil); err == nil {
		t.Fatal("second MAIL accepted")
	}
	if err := c.Rcpt(ctx, "b@test.example", &RcptOptions{Notify: NotifyNever}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "c@test.example", nil); err != nil { // nil options are the zero value
		t.Fatal(err)
	}
	w, err := c.Data(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: low level\n\n")
	io.WriteString(w, ".leading dot\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(ctx, "a@test.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if len(m) != 1 || m[0].From != "" || string(m[0].Data) != "Subject: low level\r\n\r\n.leading dot\r\n" || m[0].RcptParams[0]["NOTIFY"] != "NEVER" || len(m[0].To) != 2 {
		t.Fatalf("messages %+v", m)
	}
	if err := c.Noop(ctx); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("after Quit: %v", err)
	}
}

// tapConn calls onRead with what each Read returns, before returning it.
type tapConn struct {
	net.Conn
	onRead func([]byte)
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.onRead(p[:n])
	}
	return n, err
}

// A context that ends just as the server's acceptance arrives does not turn
// a delivered message into an error (which would make the caller send it
// again); the session is closed all the same.
func TestCancelAfterAcceptanceKeepsTheOutcome(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
	d := dialerFor(t, s)
	d.Security, d.InsecurePlaintext = SecurityAuto, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := d.DialContext
	d.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := inner(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tapConn{Conn: conn, onRead: func(b []byte) {
			if bytes.Contains(b, []byte("Message accepted")) {
				cancel()
			}
		}}, nil
	}
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx, &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	if err != nil || len(res.Accepted) != 1 || res.Reply == "" {
		t.Fatalf("Send = %+v, %v; the server accepted the message", res, err)
	}
	if len(s.Messages()) != 1 {
		t.Fatal("message not delivered")
	}
	if err := c.Noop(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("session still open after the cancellation: %v", err)
	}
}

// Mistakes in the caller's options or call order are typed and send
// nothing.
func TestMisuseIsTyped(t *testing.T) {
	s := newServer(t, nil)
	c := dial(t, s)
	ctx := ctxT(t)
	env := func(e Envelope) *Envelope { e.From = "a@test.example"; e.To = []string{"b@test.example"}; return &e }
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"RCPT before MAIL", func() error { return c.Rcpt(ctx, "b@test.example", nil) }, ErrSequence},
		{"DATA before MAIL", func() error { _, err := c.Data(ctx); return err }, ErrSequence},
		{"no recipients", func() error {
			_, err := c.Send(ctx, &Envelope{From: "a@test.example"}, strings.NewReader(testMsg))
			return err
		}, ErrInvalidOptions},
		{"nil envelope", func() error { _, err := c.Send(ctx, nil, strings.NewReader(testMsg)); return err }, ErrInvalidOptions},
		{"unknown body", func() error {
			_, err := c.Send(ctx, env(Envelope{MailOptions: MailOptions{Body: "9BIT"}}), strings.NewReader(testMsg))
			return err
		}, ErrInvalidOptions},
		{"negative size", func() error {
			_, err := c.Send(ctx, env(Envelope{MailOptions: MailOptions{Size: -1}}), strings.NewReader(testMsg))
			return err
		}, ErrInvalidOptions},
		{"NEVER with others", func() error {
			_, err := c.Send(ctx, env(Envelope{Notify: NotifyNever | NotifyFailure}), strings.NewReader(testMsg))
			return err
		}, ErrInvalidOptions},
		{"empty host", func() error { _, err := (&Dialer{}).Dial(ctx); return err }, ErrInvalidOptions},
		{"bad port", func() error { _, err := (&Dialer{Host: "x", Port: -1}).Dial(ctx); return err }, ErrInvalidOptions},
		{"SendMail address", func() error { return SendMail("no-port", nil, "a@test.example", []string{"b@test.example"}, nil) }, ErrInvalidOptions},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := c.Mail(ctx, "a@test.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(ctx, "a@test.example", nil); !errors.Is(err, ErrSequence) {
		t.Errorf("second MAIL: %v", err)
	}
	c.Quit(ctx)
	for _, cmd := range s.Sessions()[0].Commands() {
		if cmd.Verb == "RCPT" || cmd.Verb == "DATA" || cmd.Verb == "BDAT" {
			t.Errorf("sent %q for a refused call", cmd.Line)
		}
	}
}

// flipCtx reports an ended context once ended is set, without a Done
// channel: it lets a test end the context exactly between two calls.
type flipCtx struct {
	context.Context
	ended *atomic.Bool
}

func (c flipCtx) Err() error {
	if c.ended.Load() {
		return context.Canceled
	}
	return nil
}

// A context that ends after a failed transaction and before its RSET
// closes the session with a typed error instead of leaving the
// transaction open.
func TestFailedTransactionNotLeftOpen(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSConfig = nil
		s.Extensions = []string{"PIPELINING"}
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "RCPT" {
				return "550 5.1.1 no such user\r\n", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.Security, d.InsecurePlaintext = SecurityAuto, true
	ended := new(atomic.Bool)
	inner := d.DialContext
	d.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := inner(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The context ends as the last reply of the pipelined group (to
		// DATA) arrives: after the transaction failed, before its RSET.
		return &tapConn{Conn: conn, onRead: func(b []byte) {
			if bytes.Contains(b, []byte("No valid recipients")) {
				ended.Store(true)
			}
		}}, nil
	}
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := flipCtx{Context: context.Background(), ended: ended}
	_, err = c.Send(ctx, &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	var re *RecipientsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	_, err = c.Send(context.Background(), &Envelope{From: "a@test.example", To: []string{"c@test.example"}}, strings.NewReader(testMsg))
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
		t.Fatalf("next Send = %v (%T), want the ConnError that closed the session", err, err)
	}
}
