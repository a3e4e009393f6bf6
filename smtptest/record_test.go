package smtptest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// WaitMessages returns once enough messages arrived from other goroutines,
// and with the context's error, wrapped, when they do not.
func TestWaitMessages(t *testing.T) {
	srv := startServer(t, false, nil)
	const n = 4
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			env := &smtpsecure.Envelope{From: "me@example.com", To: []string{fmt.Sprintf("r%d@example.net", i)}}
			if _, err := srv.Dialer().Send(context.Background(), env, strings.NewReader(testMessage)); err != nil {
				t.Error(err)
			}
		})
	}
	msgs, err := srv.WaitMessages(testCtx(t), n)
	if err != nil || len(msgs) < n {
		t.Fatalf("WaitMessages: %d messages, %v", len(msgs), err)
	}
	wg.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msgs, err = srv.WaitMessages(ctx, n+1)
	if !errors.Is(err, context.Canceled) || len(msgs) != n {
		t.Errorf("WaitMessages(cancelled): %d messages, %v", len(msgs), err)
	}
	if _, err := srv.WaitSessions(ctx, n+1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitSessions(cancelled): %v", err)
	}
}

// The recording can be read while sessions run (go test -race).
func TestConcurrentReaders(t *testing.T) {
	srv := startServer(t, false, func(s *smtptest.Server) { s.Logf = nil })
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, s := range srv.Sessions() {
				_ = s.Commands()
				_ = s.Plaintext()
				_ = s.Encrypted()
				_ = s.TLS()
				_ = s.HelloName()
				_ = s.Err()
			}
			for _, m := range srv.Messages() {
				_ = m.Header.Get("Subject")
			}
		}
	})
	var senders sync.WaitGroup
	for range 4 {
		senders.Go(func() {
			c, err := srv.Dialer().Dial(testCtx(t))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Quit(testCtx(t))
			for range 3 {
				env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
				if _, err := c.Send(testCtx(t), env, strings.NewReader(testMessage)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	senders.Wait()
	close(done)
	readers.Wait()
	if n := len(srv.Messages()); n != 12 {
		t.Errorf("%d messages, want 12", n)
	}
}

// CloseClientConnections hangs up on open sessions; the server goes on.
func TestCloseClientConnections(t *testing.T) {
	srv := startServer(t, false, nil)
	ctx := testCtx(t)
	c, err := srv.Dialer().Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.CloseClientConnections()
	sess := waitSessions(t, srv, 1)[0]
	if !errors.Is(sess.Err(), smtptest.ErrHungUp) {
		t.Errorf("session Err %v, want ErrHungUp", sess.Err())
	}
	if err := c.Noop(ctx); err == nil {
		t.Error("NOOP succeeded on a connection the server closed")
	}
	if _, err := send(t, srv.Dialer(), "you@example.net"); err != nil {
		t.Fatalf("after CloseClientConnections: %v", err)
	}
}

// Data that is not a message is recorded as is, without a header.
func TestMessageWithoutHeader(t *testing.T) {
	srv := startServer(t, false, nil)
	env := &smtpsecure.Envelope{From: "", To: []string{"you@example.net"}}
	if _, err := srv.Dialer().Send(testCtx(t), env, strings.NewReader("not a header line\r\n")); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.From != "" || string(m.Data) != "not a header line\r\n" || m.Header != nil || m.Body != nil {
		t.Errorf("From %q, Data %q, Header %v, Body %q", m.From, m.Data, m.Header, m.Body)
	}
}

// Server.SendMail behaves as the drop-in does, trusting the server's CA.
func TestSendMail(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicit=%v", implicit), func(t *testing.T) {
			srv := startServer(t, implicit, func(s *smtptest.Server) {
				s.Users = map[string]string{"alice": "secret"}
				s.Respond = at("RCPT", "nobody@example.net", smtptest.Response{Code: 550, Enhanced: "5.1.1", Text: "No such user"})
			})
			port := strconv.Itoa(srv.Port())
			addr := net.JoinHostPort("localhost", port)
			auth := smtp.PlainAuth("", "alice", "secret", "localhost")
			msg := []byte(testMessage)

			if err := srv.SendMail(addr, auth, "me@example.com", []string{"you@example.net"}, msg); err != nil {
				t.Fatal(err)
			}
			m := srv.Messages()[0]
			if m.AuthUser != "alice" || m.TLS == nil || string(m.Data) != testMessage {
				t.Errorf("message %+v", m)
			}

			// All or nothing, as net/smtp.
			err := srv.SendMail(addr, auth, "me@example.com", []string{"you@example.net", "nobody@example.net"}, msg)
			var re *smtpsecure.RecipientsError
			if !errors.As(err, &re) {
				t.Errorf("err = %v, want a RecipientsError and nothing delivered", err)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("%d messages, want 1", n)
			}

			// By IP address, as Addr gives it.
			if err := srv.SendMail(srv.Addr(), nil, "", []string{"you@example.net"}, msg); err == nil {
				t.Error("sent without AUTH to a server that requires it")
			}
			if err := srv.SendMail(srv.Addr(), smtp.PlainAuth("", "alice", "secret", "127.0.0.1"), "", []string{"you@example.net"}, msg); err != nil {
				t.Errorf("by address: %v", err)
			}

			if err := srv.SendMail("localhost:1", auth, "me@example.com", []string{"you@example.net"}, msg); err == nil || !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("wrong port: %v, want an error naming the server's address", err)
			}
		})
	}
}
