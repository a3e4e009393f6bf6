package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// poolMsg is a small message whose Subject names it.
func poolMsg(n int) string {
	return fmt.Sprintf("From: a@test.example\r\nTo: b@test.example\r\nSubject: m%d\r\n\r\nHello.\r\n", n)
}

// subjects counts the accepted messages of s by Subject.
func subjects(s *smtptest.Server) map[string]int {
	got := map[string]int{}
	for _, m := range s.Messages() {
		data := string(m.Data)
		i := strings.Index(data, "Subject: ")
		if i < 0 {
			continue
		}
		rest := data[i+len("Subject: "):]
		got[rest[:strings.Index(rest, "\r\n")]]++
	}
	return got
}

func poolEnv() *Envelope {
	return &Envelope{From: "a@test.example", To: []string{"b@test.example"}}
}

// newPool returns a pool on d, closed (and checked to close cleanly) when
// the test ends.
func newPool(t *testing.T, d *Dialer, configure func(*Pool)) *Pool {
	t.Helper()
	p := &Pool{Dialer: d}
	if configure != nil {
		configure(p)
	}
	t.Cleanup(func() {
		if err := p.Close(ctxT(t)); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// poolWaitFor polls cond until it holds, failing the test after a generous
// bound: it waits for an event, it does not time one.
func poolWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openSessions counts the server's sessions that have not ended.
func openSessions(s *smtptest.Server) int {
	n := 0
	for _, se := range s.Sessions() {
		if !se.Ended() {
			n++
		}
	}
	return n
}

func TestPoolConcurrentSends(t *testing.T) {
	srv := newServer(t, nil)
	srv.Logf = nil
	before := runtime.NumGoroutine()
	const senders, each = 32, 8
	// MaxMessages above the total: the most recently used idle session is
	// taken first, so one session may carry most messages, and reaching
	// the default limit would replace it with a fifth dial.
	p := &Pool{Dialer: dialerFor(t, srv), MaxSessions: 4, MaxMessages: senders * each}
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := g*each + i
				if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n))); err != nil {
					errs <- fmt.Errorf("message %d: %w", n, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := p.Stats()
	if st.Open > 4 || st.Dials > 4 {
		t.Errorf("stats %+v: more than MaxSessions sessions", st)
	}
	if st.Reused < senders*each-4 {
		t.Errorf("stats %+v: sessions not reused", st)
	}
	if err := p.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	got := subjects(srv)
	for n := 0; n < senders*each; n++ {
		if c := got[fmt.Sprintf("m%d", n)]; c != 1 {
			t.Errorf("message m%d delivered %d times", n, c)
		}
	}
	// Leak checks: every server session ended with QUIT, the pool holds
	// nothing, and its goroutines are gone.
	if len(srv.Sessions()) > 4 {
		t.Errorf("%d server sessions, want at most 4", len(srv.Sessions()))
	}
	poolWaitFor(t, "the server sessions to end", func() bool { return openSessions(srv) == 0 })
	for i, se := range srv.Sessions() {
		if se.Err() != nil {
			t.Errorf("session %d ended with %v, want QUIT", i, se.Err())
		}
	}
	if st := p.Stats(); st.Open != 0 || st.Idle != 0 || st.Waiting != 0 {
		t.Errorf("after Close: %+v", st)
	}
	poolWaitFor(t, "the pool's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(-1))); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Send after Close: %v, want ErrPoolClosed", err)
	}
}

func TestPoolMaxMessagesAndIdleTimeout(t *testing.T) {
	srv := newServer(t, nil)
	p := newPool(t, dialerFor(t, srv), func(p *Pool) {
		p.MaxSessions = 1
		p.MaxMessages = 3
		p.IdleTimeout = 50 * time.Millisecond
	})
	for n := 0; n < 7; n++ {
		if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n))); err != nil {
			t.Fatal(err)
		}
	}
	// 3 + 3 + 1: the third session is closed by the idle timeout.
	if err := srv.WaitSessions(ctxT(t), 3); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Sessions()); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	for i, se := range srv.Sessions() {
		if se.Err() != nil {
			t.Errorf("session %d ended with %v, want QUIT", i, se.Err())
		}
	}
	poolWaitFor(t, "the pool to forget the idle session", func() bool { return p.Stats().Open == 0 })
}

func TestPoolRejectsBadConfiguration(t *testing.T) {
	srv := newServer(t, nil)
	for name, p := range map[string]*Pool{
		"no Dialer":             {},
		"negative MaxSessions":  {Dialer: dialerFor(t, srv), MaxSessions: -1},
		"negative MaxMessages":  {Dialer: dialerFor(t, srv), MaxMessages: -1},
		"negative IdleTimeout":  {Dialer: dialerFor(t, srv), IdleTimeout: -1},
		"negative RateLimit":    {Dialer: dialerFor(t, srv), RateLimit: -1},
		"negative RateInterval": {Dialer: dialerFor(t, srv), RateInterval: -1},
		"bad Dialer":            {Dialer: &Dialer{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(testMsg))
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("Send: %v, want ErrInvalidOptions", err)
			}
			if err := p.Close(ctxT(t)); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions dialled with a bad configuration", n)
	}
}

// TestPoolReplacesSessionsDroppedWhileIdle: a session the server closed
// while idle is found before it is used, without a NOOP, and replaced.
func TestPoolReplacesSessionsDroppedWhileIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(srv *smtptest.Server, conn *smtptest.Conn)
		eod  string // the reply to the end of the first message
	}{
		{name: "hang-up", drop: func(srv *smtptest.Server, _ *smtptest.Conn) { srv.CloseConnections() }},
		{name: "reset", drop: func(_ *smtptest.Server, c *smtptest.Conn) { c.Reset() }},
		{name: "421", eod: "250 2.0.0 OK\r\n421 4.4.2 mx.test.example idle too long, closing\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conn atomic.Pointer[smtptest.Conn]
			var first atomic.Bool
			srv := newServer(t, func(s *smtptest.Server) {
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "EOD" && first.CompareAndSwap(false, true) {
						conn.Store(c)
						if tc.eod != "" {
							return tc.eod, true
						}
					}
					return "", false
				}
			})
			p := newPool(t, dialerFor(t, srv), nil)
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1))); err != nil {
				t.Fatal(err)
			}
			if tc.drop != nil {
				tc.drop(srv, conn.Load())
				if err := srv.WaitSessions(ctxT(t), 1); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(2))); err != nil {
				t.Fatalf("second message: %v", err)
			}
			st := p.Stats()
			if st.Replaced != 1 || st.Dials != 2 || st.Retried != 0 {
				t.Errorf("stats %+v, want 1 replaced, 2 dials, no retry", st)
			}
			dropped := srv.Sessions()[0]
			for _, c := range dropped.Commands()[len(dropped.Commands())-1:] {
				if c.Verb != "BDAT" {
					t.Errorf("the dropped session got %q after its message (no NOOP, no retry expected)", c.Line)
				}
			}
			if got := subjects(srv); got["m1"] != 1 || got["m2"] != 1 {
				t.Errorf("delivered %v", got)
			}
		})
	}
}

// TestPoolRetriesOnlyWhenNothingWasSent: a session handed straight from one
// Send to a waiting one, and found closed by its own check before anything
// was written, is replaced and the message sent on a new session; a session
// that fails once the message has gone out is never retried.
func TestPoolRetriesOnlyWhenNothingWasSent(t *testing.T) {
	var p *Pool
	release := make(chan struct{})
	var eods atomic.Int32
	srv := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" && eods.Add(1) == 1 {
				<-release // until the second Send waits for this session
				return "250 2.0.0 OK\r\n421 4.4.2 closing\r\n", true
			}
			return "", false
		}
	})
	p = newPool(t, dialerFor(t, srv), func(p *Pool) { p.MaxSessions = 1 })
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, errs[0] = p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1)))
	}()
	poolWaitFor(t, "the first message to reach the server", func() bool { return eods.Load() == 1 })
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, errs[1] = p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(2)))
	}()
	poolWaitFor(t, "the second Send to wait", func() bool { return p.Stats().Waiting == 1 })
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v", i+1, err)
		}
	}
	if st := p.Stats(); st.Retried != 1 || st.Dials != 2 {
		t.Errorf("stats %+v, want 1 retry over 2 dials", st)
	}
	if got := subjects(srv); got["m1"] != 1 || got["m2"] != 1 {
		t.Errorf("delivered %v", got)
	}
}

// TestPoolNeverResendsWhatWasSent: failures after the message went out
// (a reset during the data, 421 to the next command, a hang-up before the
// final reply) are returned as they are, and the pool goes on with a new
// session.
func TestPoolNeverResendsWhatWasSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		// verb is the command the fault answers, once; act is the fault.
		verb      string
		act       func(c *smtptest.Conn) string
		uncertain bool
		dataOnly  bool // no CHUNKING
	}{
		{name: "reset at DATA", dataOnly: true, verb: "DATA", act: func(c *smtptest.Conn) string { c.Reset(); return "" }},
		{name: "reset during BDAT", uncertain: true, verb: "BDAT", act: func(c *smtptest.Conn) string { c.Reset(); return "" }},
		{name: "421 to MAIL", verb: "MAIL", act: func(*smtptest.Conn) string { return "421 4.3.2 shutting down" }},
		{name: "hang-up before the final reply", uncertain: true, verb: "EOD", act: func(c *smtptest.Conn) string { c.Close(); return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			srv := newServer(t, func(s *smtptest.Server) {
				if tc.dataOnly {
					s.Extensions = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}
				}
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					// Disarmed before the fault: the client may see a reset
					// and start the next session before the hook returns.
					if cmd.Verb == tc.verb && armed.CompareAndSwap(true, false) {
						return tc.act(c), true
					}
					return "", false
				}
			})
			p := newPool(t, dialerFor(t, srv), func(p *Pool) { p.MaxSessions = 1 })
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1))); err != nil {
				t.Fatal(err)
			}
			armed.Store(true)
			_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(2)))
			if err == nil {
				t.Fatal("the failed message was reported as sent")
			}
			var ue *UncertainDeliveryError
			if errors.As(err, &ue) != tc.uncertain {
				t.Errorf("error %v: uncertain %v, want %v", err, !tc.uncertain, tc.uncertain)
			}
			if st := p.Stats(); st.Retried != 0 {
				t.Errorf("stats %+v: a message that went out was sent again", st)
			}
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(3))); err != nil {
				t.Fatalf("the next message: %v", err)
			}
			if got := subjects(srv); got["m1"] != 1 || got["m2"] != 0 || got["m3"] != 1 {
				t.Errorf("delivered %v", got)
			}
		})
	}
}

// TestPoolWaitsWhenTheServerRefusesMoreSessions: a server that refuses a
// second session with 421 gets the messages over the first one.
func TestPoolWaitsWhenTheServerRefusesMoreSessions(t *testing.T) {
	var conns atomic.Int32
	srv := newServer(t, func(s *smtptest.Server) {
		s.Logf = nil
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "CONNECT" && conns.Add(1) > 1 {
				c.Write("421 4.7.0 mx.test.example too many connections from your address\r\n")
				c.Close()
				return "", true
			}
			return "", false
		}
	})
	p := newPool(t, dialerFor(t, srv), func(p *Pool) { p.MaxSessions = 4 })
	// The first session, so that the pool has one when the others fail.
	if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(0))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for n := 1; n <= 12; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n))); err != nil {
				t.Errorf("message %d: %v", n, err)
			}
		}()
	}
	wg.Wait()
	got := subjects(srv)
	for n := 0; n <= 12; n++ {
		if got[fmt.Sprintf("m%d", n)] != 1 {
			t.Errorf("delivered %v", got)
			break
		}
	}
}

func TestPoolDialFailureIsReturned(t *testing.T) {
	srv := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
	p := newPool(t, dialerFor(t, srv), nil)
	_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(testMsg))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonSTARTTLSNotOffered {
		t.Fatalf("Send: %v, want a DowngradeError", err)
	}
	if st := p.Stats(); st.Open != 0 || st.Dials != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPoolRateLimit: no more than RateLimit messages begin in any span of
// RateInterval. The check is a lower bound on the gaps, which a slow
// machine only widens.
func TestPoolRateLimit(t *testing.T) {
	srv := newServer(t, func(s *smtptest.Server) { s.Logf = nil })
	p := newPool(t, dialerFor(t, srv), func(p *Pool) {
		p.MaxSessions = 3
		p.RateLimit = 3
		p.RateInterval = 150 * time.Millisecond
	})
	var mu sync.Mutex
	var began []time.Time
	if err := p.init(); err != nil {
		t.Fatal(err)
	}
	p.dest.rate.onBegin = func(at time.Time) {
		mu.Lock()
		began = append(began, at)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for n := 0; n < 10; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(began) != 10 {
		t.Fatalf("%d messages began", len(began))
	}
	for i := 3; i < len(began); i++ {
		if gap := began[i].Sub(began[i-3]); gap < 150*time.Millisecond {
			t.Errorf("messages %d and %d began %v apart: 4 in one interval", i-3, i, gap)
		}
	}
	// A Send waiting for the limit gives up with its context.
	ctx, cancel := context.WithTimeout(ctxT(t), time.Millisecond)
	defer cancel()
	for i := 0; i < 4; i++ {
		_, err := p.Send(ctx, poolEnv(), strings.NewReader(poolMsg(100+i)))
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send: %v", err)
		}
	}
}

// TestPoolTLSResumption: the pool's sessions resume the first one's TLS
// session, the caller's configuration is untouched, and a resumed session
// is verified as a new one is: the hooks run and can refuse it.
func TestPoolTLSResumption(t *testing.T) {
	srv := newServer(t, nil)
	d := dialerFor(t, srv)
	callerCfg := d.TLSConfig
	var mu sync.Mutex
	var resumed []bool
	var refuse atomic.Bool
	d.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		resumed = append(resumed, cs.DidResume)
		mu.Unlock()
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].VerifyHostname(testHost) != nil {
			return errors.New("no verified certificate")
		}
		if refuse.Load() {
			return errors.New("refused by policy")
		}
		return nil
	}
	p := newPool(t, d, func(p *Pool) { p.MaxMessages = 1 })
	for n := 0; n < 3; n++ {
		if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n))); err != nil {
			t.Fatal(err)
		}
	}
	refuse.Store(true)
	_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(3)))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonPolicy {
		t.Errorf("refused resumption: %v, want a DowngradeError (policy)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{false, true, true, true}; fmt.Sprint(resumed) != fmt.Sprint(want) {
		t.Errorf("handshakes resumed %v, want %v", resumed, want)
	}
	if callerCfg.ClientSessionCache != nil || d.TLSConfig != callerCfg {
		t.Error("the caller's TLS configuration was changed")
	}
	for i, se := range srv.Sessions()[1:3] {
		if st, ok := se.TLSState(); !ok || !st.DidResume {
			t.Errorf("server session %d did not resume", i+1)
		}
	}
}
