package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// dialHold is how long a pool dials no new session to a destination after
// a dial failed for a reason that may pass, while it has other sessions
// there: a server that answers "421 too many connections" would refuse
// the next one as well.
const dialHold = 5 * time.Second

// destination is the sessions of a pool to one server, and the Sends
// waiting for them.
type destination struct {
	p       *Pool
	host    string // host:port, for errors
	dial    func(context.Context) (*Client, error)
	max     int
	maxMsgs int
	idleTO  time.Duration
	rate    *rateLimiter // nil without a rate limit

	mu        sync.Mutex
	idle      []*pooled // most recently used last
	open      int       // sessions open, in use or idle, or being dialled
	waiters   []*waiter // first come, first served
	holdUntil time.Time // no new dial before, while other sessions are open
	timer     *time.Timer
	closing   bool // Close was called: sessions are not kept idle
	closed    bool // Close is done with Sends: nothing is kept, no timer armed
	st        PoolStats
}

// pooled is one session of a pool.
type pooled struct {
	c         *Client
	sent      int       // messages tried over it
	idleSince time.Time // when it was last released
}

// grant is what a waiting Send is handed: a session, leave to dial one (a
// slot already counted in open), or an error.
type grant struct {
	ps   *pooled
	dial bool
	err  error
}

type waiter struct{ ch chan grant } // buffered: a grant never blocks

// send sends one message, on another session when nothing of it reached
// the server (see Pool).
func (d *destination) send(ctx context.Context, env *Envelope, msg io.Reader) (*SendResult, error) {
	for tries := 0; ; tries++ {
		ps, err := d.acquire(ctx)
		if err != nil {
			return nil, err
		}
		if d.rate != nil {
			if err := d.rate.wait(ctx); err != nil {
				d.release(ps)
				return nil, fmt.Errorf("smtpsecure: %s: waiting for the pool's rate limit: %w; nothing was sent", d.host, err)
			}
		}
		reused := ps.sent > 0
		res, err := ps.c.Send(ctx, env, msg)
		ps.sent++
		d.release(ps)
		if err != nil && errors.Is(err, ErrIdleClosed) && tries < d.max {
			// The session was found closed before anything was written:
			// the reader is untouched, and another session may take it.
			d.count(func(s *PoolStats) { s.Retried++ })
			continue
		}
		if reused {
			d.count(func(s *PoolStats) { s.Reused++ })
		}
		return res, err
	}
}

func (d *destination) count(f func(*PoolStats)) {
	d.mu.Lock()
	f(&d.st)
	d.mu.Unlock()
}

func (d *destination) stats() PoolStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Open, s.Idle, s.Waiting = d.open, len(d.idle), len(d.waiters)
	return s
}

// mayDial reports whether a new session may be dialled now. d.mu is held.
func (d *destination) mayDial() bool {
	if d.open >= d.max {
		return false
	}
	return d.open == 0 || !time.Now().Before(d.holdUntil)
}

// acquire returns a session: an idle one the server has not closed, a new
// one, or, once MaxSessions are open, the next one released.
func (d *destination) acquire(ctx context.Context) (*pooled, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, d.ctxErr(err)
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, d.p.closedErr()
		}
		if n := len(d.idle); n > 0 {
			ps := d.idle[n-1]
			d.idle[n-1] = nil
			d.idle = d.idle[:n-1]
			if time.Since(ps.idleSince) >= d.idleTO {
				// Past its time, and so is every other idle one: the reaper
				// has not run yet.
				d.retireLocked(ps)
				d.mu.Unlock()
				continue
			}
			d.mu.Unlock()
			if err := ps.c.Err(); err != nil {
				// Closed by the server while idle (421, EOF, reset):
				// nothing to say to it.
				d.count(func(s *PoolStats) { s.Replaced++ })
				d.drop(ps)
				continue
			}
			return ps, nil
		}
		if d.mayDial() {
			d.open++
			d.mu.Unlock()
			ps, err := d.dialNew(ctx)
			if errors.Is(err, errDialHeld) {
				continue
			}
			return ps, err
		}
		w := &waiter{ch: make(chan grant, 1)}
		d.waiters = append(d.waiters, w)
		d.mu.Unlock()
		select {
		case g := <-w.ch:
			switch {
			case g.err != nil:
				return nil, g.err
			case g.dial:
				ps, err := d.dialNew(ctx)
				if errors.Is(err, errDialHeld) {
					continue
				}
				return ps, err
			}
			return g.ps, nil
		case <-ctx.Done():
			d.mu.Lock()
			gone := d.removeWaiter(w)
			d.mu.Unlock()
			if !gone {
				// Granted while giving up: hand it on, as if never taken.
				d.giveBack(<-w.ch)
			}
			return nil, d.ctxErr(ctx.Err())
		}
	}
}

func (d *destination) ctxErr(err error) error {
	return fmt.Errorf("smtpsecure: %s: waiting for a pool session: %w; nothing was sent", d.host, err)
}

// errDialHeld says that a dial failed while other sessions are open, and
// that the Send should wait for one of them.
var errDialHeld = errors.New("dial held")

// dialNew dials a session for a slot already counted in open.
func (d *destination) dialNew(ctx context.Context) (*pooled, error) {
	c, err := d.dial(ctx)
	d.mu.Lock()
	d.st.Dials++
	if err == nil {
		d.mu.Unlock()
		return &pooled{c: c}, nil
	}
	d.open--
	held := d.open > 0 && mayPass(err) && ctx.Err() == nil && !d.closing
	if held {
		d.holdUntil = time.Now().Add(dialHold)
	}
	d.handOnLocked()
	d.mu.Unlock()
	if held {
		return nil, errDialHeld
	}
	return nil, err
}

// mayPass reports whether a failed dial may succeed later without any
// change of configuration: a network failure, or a transient refusal (a
// 421 greeting). A downgrade, an authentication failure or a protocol
// error is final.
func mayPass(err error) bool {
	var ce *ConnError
	var se *SMTPError
	switch {
	case errors.Is(err, ErrDowngrade), errors.Is(err, ErrAuthFailed), errors.Is(err, ErrProtocol):
		return false
	case errors.As(err, &se):
		return se.Temporary()
	case errors.As(err, &ce):
		return true
	}
	return false
}

// release takes back a session after a message: it goes to the first
// waiting Send, or idle, or is closed when it failed, has sent MaxMessages
// or the pool is closing.
func (d *destination) release(ps *pooled) {
	d.mu.Lock()
	switch {
	case ps.c.err != nil:
		d.open--
		d.handOnLocked()
		d.mu.Unlock()
		ps.c.Close()
		ps.c.releaseBuffers()
		return
	case ps.sent >= d.maxMsgs:
		d.retireLocked(ps)
		d.handOnLocked()
		d.mu.Unlock()
		return
	case len(d.waiters) > 0:
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w.ch <- grant{ps: ps}
	case d.closing:
		d.retireLocked(ps)
	default:
		ps.idleSince = time.Now()
		d.idle = append(d.idle, ps)
		if d.timer == nil {
			d.timer = time.AfterFunc(d.idleTO, d.reap)
		}
	}
	d.mu.Unlock()
}

// giveBack returns what a Send that gave up waiting was granted.
func (d *destination) giveBack(g grant) {
	switch {
	case g.ps != nil:
		d.release(g.ps)
	case g.dial:
		d.mu.Lock()
		d.open--
		d.handOnLocked()
		d.mu.Unlock()
	}
}

// drop forgets a session that has ended and closes its connection.
func (d *destination) drop(ps *pooled) {
	ps.c.Close()
	ps.c.releaseBuffers()
	d.mu.Lock()
	d.open--
	d.handOnLocked()
	d.mu.Unlock()
}

// handOnLocked lets the first waiting Send dial, when a slot is free.
// d.mu is held.
func (d *destination) handOnLocked() {
	if len(d.waiters) == 0 || !d.mayDial() {
		return
	}
	w := d.waiters[0]
	d.waiters = d.waiters[1:]
	d.open++
	w.ch <- grant{dial: true}
}

// removeWaiter takes w out of the queue; false if it was granted already.
// d.mu is held.
func (d *destination) removeWaiter(w *waiter) bool {
	for i, x := range d.waiters {
		if x == w {
			d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// retireLocked counts a healthy session out and says QUIT to it in the
// background, so that no Send waits for it; Close waits for it. d.mu is
// held, which orders the WaitGroup's Add before Close's Wait.
func (d *destination) retireLocked(ps *pooled) {
	d.open--
	d.p.wg.Add(1)
	go func() {
		defer d.p.wg.Done()
		ps.c.quitQuietly(d.p.bg)
		ps.c.releaseBuffers()
	}()
}

// reap closes the sessions idle for IdleTimeout, and arms the timer for
// the next one.
func (d *destination) reap() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timer = nil
	if d.closed {
		return
	}
	now := time.Now()
	keep := d.idle[:0]
	for _, ps := range d.idle {
		if now.Sub(ps.idleSince) >= d.idleTO {
			d.retireLocked(ps)
			continue
		}
		keep = append(keep, ps)
	}
	clear(d.idle[len(keep):])
	d.idle = keep
	if len(keep) > 0 {
		// The oldest is first: the list is in order of release.
		d.timer = time.AfterFunc(d.idleTO-now.Sub(keep[0].idleSince), d.reap)
	}
	d.handOnLocked()
}

// beginClose retires the idle sessions; sessions released from now on are
// handed to waiting Sends or retired.
func (d *destination) beginClose() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closing = true
	for _, ps := range d.idle {
		d.retireLocked(ps)
	}
	clear(d.idle)
	d.idle = d.idle[:0]
}

// failWaiters ends the Sends still waiting for a session, when Close gives
// up waiting.
func (d *destination) failWaiters() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for _, w := range d.waiters {
		w.ch <- grant{err: d.p.closedErr()}
	}
	d.waiters = nil
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// finishClose is called once no Send is left: nothing is kept.
func (d *destination) finishClose() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	for _, ps := range d.idle {
		d.retireLocked(ps)
	}
	d.idle = nil
}
