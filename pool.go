package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Pool defaults, close to what nodemailer's and lettre's pools chose.
const (
	// DefaultPoolMaxSessions is nodemailer's maxConnections (lettre has 10):
	// submission providers limit the simultaneous sessions of one account
	// to a handful and answer more with 421, and five sessions already
	// hide most of the round-trip time of a distant server.
	DefaultPoolMaxSessions = 5
	// DefaultPoolMaxMessages is nodemailer's maxMessages: providers cap the
	// messages of one session (often at 100), and a session that lives
	// for ever keeps a server process and its memory busy.
	DefaultPoolMaxMessages = 100
	// DefaultPoolIdleTimeout is lettre's idle_timeout: a session idle for
	// a minute is closed with QUIT, before servers drop it themselves
	// (Postfix after 300 s, busy providers sooner) and the pool has to
	// find out.
	DefaultPoolIdleTimeout = 60 * time.Second
	// DefaultPoolRateInterval is nodemailer's rateDelta: with a RateLimit,
	// the limit is per second unless RateInterval says otherwise.
	DefaultPoolRateInterval = time.Second
)

// ErrPoolClosed is matched by the error of a Send on a Pool that is
// closed, or that Close gave up waiting for. Nothing of the message was
// sent.
var ErrPoolClosed = errors.New("pool is closed")

// A Pool sends messages from many goroutines over a few reused sessions
// to the server of its Dialer. It is safe for concurrent use, and is
// meant to live as long as the program: make one, share it, Close it on
// the way out. Its zero value, with Dialer set, uses the defaults.
//
// Each Send takes a free session, or dials a new one while fewer than
// MaxSessions exist, or waits for one (as long as its context allows; a
// Send that gives up leaves no trace). A session is reused for up to
// MaxMessages messages, and closed with QUIT once it has been idle for
// IdleTimeout. Before a session is reused, the pool checks without waiting
// (Client.Err, no NOOP) that the server has not closed it meanwhile (a
// 421, a hang-up, a reset), and replaces it if it has.
//
// A message is sent again, on another session, only when nothing of it
// reached the server: when the session turned out to be closed before
// the first byte was written (ErrIdleClosed). Never after any of it was
// written, and never after an *UncertainDeliveryError. When dialling
// a new session fails for a reason that may pass (a network error, a
// 4xx greeting such as "too many connections") while the pool has other
// sessions to the server, the message waits for one of them instead, and
// the pool dials no more sessions for a few seconds.
//
// The sessions share a TLS session cache (the Dialer's TLSConfig is
// cloned, and given one when it has none), so that after the first
// handshake the others resume it and skip the certificate exchange. A
// resumed session is verified as a new one is: crypto/tls checks the
// cached chain for the host name and expiry, and the VerifyConnection hooks
// and Dialer.DANE run again.
//
// The fields must be set before the first Send and not changed after it;
// the Dialer is copied then.
type Pool struct {
	// Dialer makes the pool's sessions. It is copied at the first Send,
	// with its TLSConfig cloned; later changes to it are not seen.
	Dialer *Dialer

	// MaxSessions is the most sessions open at once, busy or idle
	// (default DefaultPoolMaxSessions).
	MaxSessions int
	// MaxMessages is the most messages sent over one session before it is
	// closed and replaced (default DefaultPoolMaxMessages).
	MaxMessages int
	// IdleTimeout closes a session that has been idle this long (default
	// DefaultPoolIdleTimeout).
	IdleTimeout time.Duration

	// RateLimit, when positive, is the most messages begun in any span of
	// RateInterval, as providers impose ("100 messages a minute"). A Send
	// over the limit waits, holding its session, until it may go, or until
	// its context ends (then nothing is sent). Zero means no limit.
	RateLimit int
	// RateInterval is the span of RateLimit (default
	// DefaultPoolRateInterval).
	RateInterval time.Duration

	initOnce sync.Once
	initErr  error
	dest     *destination
	bg       context.Context    // ends when Close gives up: cuts QUITs short
	bgCancel context.CancelFunc // ends bg

	mu      sync.Mutex
	closed  bool
	active  int           // Sends inside the pool
	drained chan struct{} // closed once closed and active is 0
	wg      sync.WaitGroup
}

// PoolStats describes a Pool or an MXPool at one moment, for monitoring
// and tests.
type PoolStats struct {
	// Open counts the sessions open (idle or in use) or being dialled.
	Open int
	// Idle counts the sessions waiting for a message.
	Idle int
	// Waiting counts the Sends waiting for a session.
	Waiting int
	// Dials counts the sessions dialled, successfully or not.
	Dials uint64
	// Reused counts the messages sent over a session that had sent one
	// before.
	Reused uint64
	// Replaced counts the idle sessions found closed by the server (421,
	// hang-up, reset) and replaced before they were used.
	Replaced uint64
	// Retried counts the messages sent again on another session because
	// nothing of them had reached the server.
	Retried uint64
}

// init checks the configuration and copies the Dialer, once.
func (p *Pool) init() error {
	p.initOnce.Do(func() { p.initErr = p.setup() })
	return p.initErr
}

// setup is init's work.
func (p *Pool) setup() error {
	p.bg, p.bgCancel = context.WithCancel(context.Background())
	p.drained = make(chan struct{})
	if p.Dialer == nil {
		return optionsErr("Pool.Dialer is nil")
	}
	switch {
	case p.MaxSessions < 0:
		return optionsErr("negative Pool.MaxSessions %d", p.MaxSessions)
	case p.MaxMessages < 0:
		return optionsErr("negative Pool.MaxMessages %d", p.MaxMessages)
	case p.IdleTimeout < 0:
		return optionsErr("negative Pool.IdleTimeout %v", p.IdleTimeout)
	case p.RateLimit < 0:
		return optionsErr("negative Pool.RateLimit %d", p.RateLimit)
	case p.RateInterval < 0:
		return optionsErr("negative Pool.RateInterval %v", p.RateInterval)
	}
	d := *p.Dialer
	pl, err := d.prepare()
	if err != nil {
		return err
	}
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	d.TLSConfig = cfg
	var rate *rateLimiter
	if p.RateLimit > 0 {
		rate = newRateLimiter(p.RateLimit, orDefault(p.RateInterval, DefaultPoolRateInterval))
	}
	p.dest = &destination{
		p:       p,
		host:    pl.addr,
		dial:    d.Dial,
		max:     orDefaultInt(p.MaxSessions, DefaultPoolMaxSessions),
		maxMsgs: orDefaultInt(p.MaxMessages, DefaultPoolMaxMessages),
		idleTO:  orDefault(p.IdleTimeout, DefaultPoolIdleTimeout),
		rate:    rate,
	}
	return nil
}

func orDefaultInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// enter counts a Send in, unless the pool is closed.
func (p *Pool) enter() error {
	if err := p.init(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.closedErr()
	}
	p.active++
	return nil
}

// leave counts a Send out.
func (p *Pool) leave() {
	p.mu.Lock()
	p.active--
	if p.closed && p.active == 0 {
		close(p.drained)
	}
	p.mu.Unlock()
}

func (p *Pool) closedErr() error {
	host := ""
	if p.dest != nil {
		host = p.dest.host + ": "
	}
	return fmt.Errorf("smtpsecure: %s%w; nothing was sent", host, ErrPoolClosed)
}

// Send sends one message over a session of the pool, with the meaning of
// Client.Send: a nil error means the server accepted it for at least one
// recipient (the result lists the refused ones), a non-nil error that it
// was delivered to nobody, except an *UncertainDeliveryError. Envelope
// options and the message reader are as for Client.Send; the reader is
// read at most once, so a message that must be sent again on another
// session (see Pool) is one of which nothing was read.
//
// Send waits for a free session as long as ctx allows; the error then
// wraps the context's error, and nothing was sent. After Close it returns
// an error matching ErrPoolClosed.
func (p *Pool) Send(ctx context.Context, env *Envelope, msg io.Reader) (*SendResult, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.dest.send(ctx, env, msg)
}

// SendMail sends msg from from to every address of to, or to nobody: it
// is the shape a framework's mail adapter calls, and its method value
// fits a field of type
//
//	func(ctx context.Context, from string, to []string, msg io.Reader) error
//
// A nil error means that every recipient was accepted and the server took
// the message. An error means that nobody got it (a *RecipientsError names
// the refused recipients), so the caller may send it again, or, for an
// *UncertainDeliveryError, that the connection failed after the whole
// message was sent: it may have been delivered. Unlike Send, a recipient
// refused among accepted ones is an error, not a result that an adapter
// returning only an error would drop: the message goes to all (the
// envelope's replies are awaited before the data, Envelope.AllOrNothing)
// or none. Callers that want partial delivery use Send.
func (p *Pool) SendMail(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := p.Send(ctx, &Envelope{From: from, To: to, AllOrNothing: true}, msg)
	return err
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	if p.init() != nil {
		return PoolStats{}
	}
	return p.dest.stats()
}

// Close stops the pool: Sends that start after it fail with ErrPoolClosed,
// Sends already under way (sending, or waiting for a session) finish, and
// then every session is closed with QUIT. When it returns nil, no session
// and no goroutine of the pool is left.
//
// If ctx ends first, Close stops waiting: Sends still waiting for a session
// fail with ErrPoolClosed (nothing of their messages was sent), QUITs are
// cut short, and it returns an error wrapping the context's error. A Send
// still sending then finishes on its own (it has its own context and the
// Dialer's timeouts) and closes its session. Close may be called more than
// once.
func (p *Pool) Close(ctx context.Context) error {
	if p.init() != nil {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		return nil
	}
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.active == 0 {
			close(p.drained)
		}
	}
	p.mu.Unlock()
	d := p.dest
	d.beginClose()
	select {
	case <-p.drained:
	case <-ctx.Done():
		d.failWaiters()
		p.bgCancel()
		return fmt.Errorf("smtpsecure: %s: closing the pool: %w; sends still under way close their sessions when they finish", d.host, ctx.Err())
	}
	d.finishClose()
	if awaitQuits(ctx, &p.wg, p.bgCancel) {
		return nil
	}
	return fmt.Errorf("smtpsecure: %s: closing the pool: %w; sessions were closed without waiting for QUIT", d.host, ctx.Err())
}

// awaitQuits waits for the QUITs under way (wg) to finish, then ends the
// pool's background context (cancel). If ctx ends first, it cancels them at
// once, still waits for them to return, and reports false.
func awaitQuits(ctx context.Context, wg *sync.WaitGroup, cancel context.CancelFunc) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		cancel()
		return true
	case <-ctx.Done():
		cancel() // interrupts the QUITs under way
		<-done
		return false
	}
}
