package smtpsecure

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// TestPoolCancelledWaiterLeavesNoTrace: a Send that gives up waiting for a
// session takes nothing with it: the session goes to the next Send.
func TestPoolCancelledWaiterLeavesNoTrace(t *testing.T) {
	release := make(chan struct{})
	var eods atomic.Int32
	srv := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" && eods.Add(1) == 1 {
				<-release
			}
			return "", false
		}
	})
	p := newPool(t, dialerFor(t, srv), func(p *Pool) { p.MaxSessions = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1)))
		done <- err
	}()
	poolWaitFor(t, "the first message to reach the server", func() bool { return eods.Load() == 1 })
	ctx, cancel := context.WithCancel(ctxT(t))
	waited := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, poolEnv(), strings.NewReader(poolMsg(2)))
		waited <- err
	}()
	poolWaitFor(t, "the second Send to wait", func() bool { return p.Stats().Waiting == 1 })
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v, want context.Canceled", err)
	}
	if st := p.Stats(); st.Waiting != 0 {
		t.Errorf("stats %+v: the cancelled waiter is still counted", st)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(3))); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Dials != 1 || st.Open != 1 || st.Idle != 1 {
		t.Errorf("stats %+v, want the one session reused and idle", st)
	}
	if got := subjects(srv); got["m1"] != 1 || got["m2"] != 0 || got["m3"] != 1 {
		t.Errorf("delivered %v", got)
	}
}

// TestPoolCloseFinishesInFlight: Close lets the Sends under way finish,
// those waiting for a session included, then says QUIT to every session.
func TestPoolCloseFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	var eods atomic.Int32
	srv := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" && eods.Add(1) == 1 {
				<-release
			}
			return "", false
		}
	})
	p := &Pool{Dialer: dialerFor(t, srv), MaxSessions: 1}
	errs := make(chan error, 2)
	go func() {
		_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1)))
		errs <- err
	}()
	poolWaitFor(t, "the first message to reach the server", func() bool { return eods.Load() == 1 })
	go func() {
		_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(2)))
		errs <- err
	}()
	poolWaitFor(t, "the second Send to wait", func() bool { return p.Stats().Waiting == 1 })
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctxT(t)) }()
	poolWaitFor(t, "Close to begin", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closed
	})
	if _, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(3))); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Send during Close: %v, want ErrPoolClosed", err)
	}
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Errorf("in-flight Send: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := subjects(srv); got["m1"] != 1 || got["m2"] != 1 || got["m3"] != 0 {
		t.Errorf("delivered %v", got)
	}
	if err := srv.WaitSessions(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if se := srv.Sessions()[0]; se.Err() != nil || se.Commands()[len(se.Commands())-1].Verb != "QUIT" {
		t.Errorf("session ended with %v, want QUIT", se.Err())
	}
}

// TestPoolCloseGivesUp: when Close's context ends, the Sends still waiting
// for a session fail with ErrPoolClosed, having sent nothing.
func TestPoolCloseGivesUp(t *testing.T) {
	release := make(chan struct{})
	var eods atomic.Int32
	srv := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" && eods.Add(1) == 1 {
				<-release
			}
			return "", false
		}
	})
	p := &Pool{Dialer: dialerFor(t, srv), MaxSessions: 1}
	first := make(chan error, 1)
	go func() {
		_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(1)))
		first <- err
	}()
	poolWaitFor(t, "the first message to reach the server", func() bool { return eods.Load() == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(2)))
		second <- err
	}()
	poolWaitFor(t, "the second Send to wait", func() bool { return p.Stats().Waiting == 1 })
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v, want context.Canceled", err)
	}
	if err := <-second; !errors.Is(err, ErrPoolClosed) {
		t.Errorf("waiting Send: %v, want ErrPoolClosed", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the Send under way: %v", err)
	}
	if err := p.Close(ctxT(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	poolWaitFor(t, "the session to end", func() bool { return openSessions(srv) == 0 })
	if got := subjects(srv); got["m1"] != 1 || got["m2"] != 0 {
		t.Errorf("delivered %v", got)
	}
}
