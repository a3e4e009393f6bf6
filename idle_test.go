package smtpsecure

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// writeCounter counts what the client writes on the TCP connection. It
// passes SyscallConn through, so that the client can still look at the
// socket without reading from it.
type writeCounter struct {
	net.Conn
	n atomic.Int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *writeCounter) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// hangUp is how a server ends an idle session.
type hangUp struct {
	name  string
	after string // written after the reply to NOOP
	end   func(c *smtptest.Conn)
	code  int // an unasked reply with this code is the cause
}

var hangUps = []hangUp{
	{name: "close", end: func(c *smtptest.Conn) { c.Close() }},
	{name: "reset", end: func(c *smtptest.Conn) { c.Reset() }},
	{name: "421 then close", after: "421 4.4.2 mx.test.example idle timeout, closing\r\n", end: func(c *smtptest.Conn) { c.Close() }, code: 421},
}

// idleSession dials a session whose server answers the first NOOP and then
// hangs up as h says; it returns the client and its write counter once the
// hang-up has reached the client's socket.
func idleSession(t *testing.T, exts []string, h hangUp, plaintext bool) (*Client, *writeCounter) {
	t.Helper()
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = exts
		if plaintext {
			s.TLSConfig = nil
			s.Extensions = exts
		}
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb != "NOOP" {
				return "", false
			}
			c.Write("250 2.0.0 ok\r\n" + h.after)
			h.end(c)
			return "", true
		}
	})
	d := dialerFor(t, s)
	if plaintext {
		d.Security, d.InsecurePlaintext = SecurityAuto, true
	}
	var wc *writeCounter
	d.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var nd net.Dialer
		conn, err := nd.DialContext(ctx, network, s.Addr())
		if err != nil {
			return nil, err
		}
		wc = &writeCounter{Conn: conn}
		return wc, nil
	}
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Wait, without a time limit that a loaded machine could miss, until
	// the hang-up is visible on the client's socket.
	deadline := time.Now().Add(10 * time.Second)
	for c.peeker.peek().state == peekNothing {
		if time.Now().After(deadline) {
			t.Fatal("the server's hang-up never reached the client")
		}
		time.Sleep(time.Millisecond)
	}
	return c, wc
}

// checkIdleClosed checks the error of the first call on a session the
// server closed while it was idle: a *ConnError that matches ErrIdleClosed
// (and the server's 421 when it sent one), never an uncertain delivery.
func checkIdleClosed(t *testing.T, err error, h hangUp) {
	t.Helper()
	var ce *ConnError
	var ue *UncertainDeliveryError
	if !errors.As(err, &ce) || !errors.Is(err, ErrIdleClosed) || errors.As(err, &ue) || errors.Is(err, ErrDeliveryUncertain) {
		t.Fatalf("err = %v (%T), want a ConnError matching ErrIdleClosed", err, err)
	}
	if h.code != 0 {
		var se *SMTPError
		if !errors.As(err, &se) || se.Code != h.code {
			t.Fatalf("err = %v, want the server's %d reachable", err, h.code)
		}
	}
	if !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("the message does not say that nothing was sent: %v", err)
	}
}

// Issue 9 §5: a session the server closed while it was idle is detected
// before anything is written. Send reports a *ConnError matching
// ErrIdleClosed, never an *UncertainDeliveryError, also with pipelined BDAT
// (where the whole message used to go out in one write before the first
// reply was read), over TLS and in plaintext.
func TestIdleClosedBeforeSend(t *testing.T) {
	transfers := map[string][]string{
		"BDAT pipelined": {"PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES"},
		"DATA pipelined": {"PIPELINING", "ENHANCEDSTATUSCODES"},
		"DATA":           {"ENHANCEDSTATUSCODES"},
	}
	for name, exts := range transfers {
		for _, h := range hangUps {
			for _, plaintext := range []bool{false, true} {
				mode := "TLS"
				if plaintext {
					mode = "plaintext"
				}
				t.Run(name+"/"+h.name+"/"+mode, func(t *testing.T) {
					c, wc := idleSession(t, exts, h, plaintext)
					before := wc.n.Load()
					_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
					checkIdleClosed(t, err, h)
					if n := wc.n.Load() - before; n != 0 {
						t.Errorf("%d octets written to a closed session", n)
					}
					// Later calls: closed earlier, for the same reason.
					err = c.Noop(ctxT(t))
					if !errors.Is(err, ErrClientClosed) || !errors.Is(err, ErrIdleClosed) || !strings.Contains(err.Error(), "session closed earlier") {
						t.Errorf("next call: %v", err)
					}
				})
			}
		}
	}
}

// Every call that writes checks first; Err reports the hang-up without a
// call.
func TestIdleClosedEveryCall(t *testing.T) {
	calls := map[string]func(c *Client) error{
		"Mail":  func(c *Client) error { return c.Mail(ctxT(t), "a@test.example", nil) },
		"Noop":  func(c *Client) error { return c.Noop(ctxT(t)) },
		"Reset": func(c *Client) error { return c.Reset(ctxT(t)) },
		"Err":   func(c *Client) error { return c.Err() },
	}
	for name, call := range calls {
		for _, h := range hangUps {
			t.Run(name+"/"+h.name, func(t *testing.T) {
				c, wc := idleSession(t, nil, h, false)
				before := wc.n.Load()
				checkIdleClosed(t, call(c), h)
				if n := wc.n.Load() - before; n != 0 {
					t.Errorf("%d octets written to a closed session", n)
				}
				if err := c.Err(); !errors.Is(err, ErrIdleClosed) {
					t.Errorf("Err() = %v", err)
				}
			})
		}
	}
}

// Quit on a session the server already closed has nothing left to do.
func TestQuitAfterIdleClose(t *testing.T) {
	c, wc := idleSession(t, nil, hangUps[0], false)
	before := wc.n.Load()
	if err := c.Quit(ctxT(t)); err != nil {
		t.Fatalf("Quit = %v", err)
	}
	if n := wc.n.Load() - before; n != 0 {
		t.Errorf("%d octets written to a closed session", n)
	}
	if err := c.Noop(ctxT(t)); !errors.Is(err, ErrClientClosed) {
		t.Errorf("after Quit: %v", err)
	}
}

// Err is nil while the session is usable, and checking costs the session
// nothing: it goes on sending afterwards.
func TestErrOnHealthySession(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		s := newServer(t, func(s *smtptest.Server) {
			if plaintext {
				s.TLSConfig = nil
			}
		})
		d := dialerFor(t, s)
		if plaintext {
			d.Security, d.InsecurePlaintext = SecurityAuto, true
		}
		c, err := d.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := c.Err(); err != nil {
				t.Fatalf("Err() = %v on a healthy session", err)
			}
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Quit(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Err(); !errors.Is(err, ErrClientClosed) {
			t.Fatalf("Err() after Quit = %v", err)
		}
		if n := len(s.Messages()); n != 3 {
			t.Fatalf("%d messages", n)
		}
	}
}

// Issue 9 §5: a dead Client does not repeat its first error under the
// names of later commands: every later call matches ErrClientClosed and
// the error that ended the session, and says so. After Close, calls match
// ErrClientClosed.
func TestDeadClientErrors(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "NOOP" {
				return "421 4.3.2 going down\r\n", true
			}
			return "", false
		}
	})
	c := dial(t, s)
	first := c.Noop(ctxT(t))
	var se *SMTPError
	if !errors.As(first, &se) || se.Code != 421 {
		t.Fatalf("NOOP = %v", first)
	}
	_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	if !errors.Is(err, ErrClientClosed) || !errors.As(err, &se) || se.Code != 421 {
		t.Fatalf("Send after the session ended = %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "smtpsecure: session closed earlier: ") || strings.Count(msg, "smtpsecure:") != 1 {
		t.Errorf("message %q", msg)
	}
	if c.Err() != first {
		t.Errorf("Err() = %v, want the error that ended the session", c.Err())
	}

	c2 := dial(t, s)
	c2.Close()
	for name, err := range map[string]error{
		"Noop": c2.Noop(ctxT(t)),
		"Mail": c2.Mail(ctxT(t), "a@test.example", nil),
		"Err":  c2.Err(),
		"Quit": c2.Quit(ctxT(t)),
	} {
		if !errors.Is(err, ErrClientClosed) || !strings.HasPrefix(err.Error(), "smtpsecure: ") {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// An uncertain delivery ends the session, but later calls must not look
// like uncertain deliveries of their own messages: they match
// ErrClientClosed and the network cause.
func TestDeadClientAfterUncertainDelivery(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" {
				c.Close()
				return "", true
			}
			return "", false
		}
	})
	c := dial(t, s)
	_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	if !errors.Is(err, ErrDeliveryUncertain) {
		t.Fatalf("err = %v", err)
	}
	_, err = c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	if !errors.Is(err, ErrClientClosed) || errors.Is(err, ErrDeliveryUncertain) {
		t.Fatalf("next Send = %v", err)
	}
	if !errors.Is(c.Err(), ErrDeliveryUncertain) {
		t.Errorf("Err() = %v, want the uncertain delivery", c.Err())
	}
}
