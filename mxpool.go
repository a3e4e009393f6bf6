package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/policy"
)

// MXPool defaults.
const (
	// DefaultMXPoolMaxIdlePerHost: Deliver works on up to four recipient
	// domains at once, and the domains of one provider share its MX hosts,
	// so four idle sessions keep a steady stream to a big provider going;
	// more would hold processes of another organisation's server for
	// nothing.
	DefaultMXPoolMaxIdlePerHost = 4
	// DefaultMXPoolIdleTimeout is Postfix's smtp_connection_cache_time_limit:
	// an MTA keeps a session to another organisation's server across a
	// burst of messages, not while it has nothing to send.
	DefaultMXPoolIdleTimeout = 2 * time.Second
)

// An MXPool keeps the MX sessions of a Deliverer (set it as the
// Deliverer's Pool) open after a delivery, so that the next message to the
// same MX host skips the connection, STARTTLS and the TLS handshake: one
// round trip per message instead of six, and none of the handshake's CPU.
// No other SMTP client pools MX sessions by security; they pool by host, or
// bypass the pool for REQUIRETLS.
//
// # The rule
//
// The MX hosts of a big provider serve many domains: some publish DANE,
// some an MTA-STS policy in mode enforce, many nothing. A session made for
// a domain that publishes nothing was not authenticated (RFC 7672 §1.3),
// and must never carry mail for a domain whose policy requires more. So a
// session is reused only for a message whose requirement (the host's
// policy.Requirement in the message's plan) it met when it was made: at the
// same MX host and address, and
//
//	| the message's host requires            | the session must have                                                  |
//	|----------------------------------------|------------------------------------------------------------------------|
//	| TLS insecure-plaintext or              | nothing: any session, in plaintext or TLS                              |
//	|   insecure-opportunistic               |                                                                        |
//	| TLS required                           | TLS                                                                    |
//	| Auth none                              | nothing more                                                           |
//	| Auth webpki                            | its certificate verified under the Web PKI, against the Deliverer's    |
//	|                                        | RootCAs, for one of WebPKINames                                        |
//	| Auth dane                              | DANE authentication against exactly the requirement's TLSA records and |
//	|                                        | DANENames: after a TLSA rollover, a new session                        |
//	| Auth dane+webpki                       | both                                                                   |
//	| a REQUIRETLS message (RFC 8689)        | also REQUIRETLS offered after STARTTLS, DANE or Web PKI authentication |
//	|                                        | as above, and a plan that allows REQUIRETLS for the host               |
//
// A session that met a stronger requirement carries mail for a weaker one
// (a DANE-authenticated session carries a message for which TLS without
// authentication suffices), never the other way round. Web PKI and DANE
// authentication are incomparable: neither stands in for the other.
//
// Sessions are kept per MX host and requirement, each requirement with a
// TLS session cache of its own, so that a handshake resumes only a session
// made under the same requirement; a resumed session is verified as a new
// one is. Deliveries whose sessions check the certificate after the
// handshake rather than during it (MailTLSReport, and a "TLS-Required: No"
// that InsecureHonorTLSRequiredNo honours) neither take nor leave sessions.
//
// # Reuse
//
// Before a session is reused, the pool checks without waiting (Client.Err,
// no NOOP) that the server has not closed it while it was idle, and
// replaces it if it has. A message is sent again on a new session only when
// nothing of it reached the server: when the reused session turned out to
// be closed before the first byte was written (ErrIdleClosed). A session
// is closed with QUIT once it has been idle for IdleTimeout, or after
// MaxMessages messages. Deliver never waits for a session: it takes a
// matching idle one or makes a new one, and keeps at most MaxIdlePerHost
// idle sessions per host.
//
// A reused session is not a new session attempt: it yields no TLS-RPT
// result (reports count sessions, RFC 8460 §4.4), and its Attempt in
// RecipientResult.Attempts says Reused.
//
// Its zero value uses the defaults. An MXPool serves one Deliverer; its
// fields must be set before the first delivery and not changed after it.
// Close it on the way out.
type MXPool struct {
	// MaxIdlePerHost is the most idle sessions kept per MX host (default
	// DefaultMXPoolMaxIdlePerHost).
	MaxIdlePerHost int
	// MaxMessages is the most messages sent over one session before it is
	// closed (default DefaultPoolMaxMessages).
	MaxMessages int
	// IdleTimeout closes a session that has been idle this long (default
	// DefaultMXPoolIdleTimeout).
	IdleTimeout time.Duration

	initOnce sync.Once
	bg       context.Context    // ends when Close gives up: cuts QUITs short
	bgCancel context.CancelFunc // ends bg

	mu      sync.Mutex
	owner   *Deliverer
	hosts   map[string]*mxHost     // by MX host name (A-labels)
	inUse   map[*Client]*mxSession // sessions out with a delivery
	closed  bool
	drained chan struct{} // closed once closed and nothing is in use
	timer   *time.Timer
	wg      sync.WaitGroup // QUITs of retired sessions
	st      PoolStats
}

// mxHost is what an MXPool keeps for one MX host.
type mxHost struct {
	// caches are the TLS session caches of the host, one per requirement
	// (requirementKey): the destinations of the pool.
	caches map[string]tls.ClientSessionCache
	idle   []*mxSession // most recently used last
}

// mxSession is one session of an MXPool.
type mxSession struct {
	c         *Client
	sec       mxSecurity
	sent      int       // messages tried over it
	reusing   bool      // out with a delivery that did not make it
	idleSince time.Time // when it was last released
}

// mxLease is a session out with one attempt of a delivery.
type mxLease struct {
	c *Client
	// pooled: an MXPool takes the session back after the message. When it
	// is not set, the session was made for this message alone and ends
	// after it (Client.send's once).
	pooled bool
}

func (p *MXPool) init() {
	p.initOnce.Do(func() {
		p.bg, p.bgCancel = context.WithCancel(context.Background())
		p.hosts = map[string]*mxHost{}
		p.inUse = map[*Client]*mxSession{}
		p.drained = make(chan struct{})
	})
}

// bind makes p the pool of d, once: a pool serves one Deliverer, whose
// sessions (their EHLO name, dial hook and roots) it keeps.
func (p *MXPool) bind(d *Deliverer) error {
	switch {
	case p.MaxIdlePerHost < 0:
		return optionsErr("negative MXPool.MaxIdlePerHost %d", p.MaxIdlePerHost)
	case p.MaxMessages < 0:
		return optionsErr("negative MXPool.MaxMessages %d", p.MaxMessages)
	case p.IdleTimeout < 0:
		return optionsErr("negative MXPool.IdleTimeout %v", p.IdleTimeout)
	}
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owner != nil && p.owner != d {
		return optionsErr("Deliverer.Pool: the MXPool already serves another Deliverer; give each Deliverer its own")
	}
	p.owner = d
	return nil
}

// acquire returns a session with h at addr for a message that meets h's
// requirement: an idle one of the pool that met it, unless fresh, or a new
// one made with the requirement's TLS session cache, and the attempt it
// counts as. A new session's attempt is recorded and logged by dialHost; a
// reused one's is logged here.
func (p *MXPool) acquire(ctx context.Context, d *Deliverer, h *policy.Host, addr netip.Addr, requireTLS, fresh bool) (mxLease, *Attempt, error) {
	p.init()
	w := &mxWant{host: h.Name, addr: addr, rq: &h.Requirement, hostReqTLS: h.RequireTLS, requireTLS: requireTLS, roots: d.RootCAs}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c, att, err := d.dialHost(ctx, h, addr, modeStrict, nil)
			return mxLease{c: c}, att, err
		}
		s := p.takeIdleLocked(w, fresh)
		if s == nil {
			break
		}
		p.inUse[s.c] = s
		p.mu.Unlock()
		if err := s.c.Err(); err != nil {
			// Closed by the server while idle (421, EOF, reset): replaced.
			p.count(func(st *PoolStats) { st.Replaced++ })
			p.drop(s)
			continue
		}
		s.reusing = true
		c := s.c
		att := &Attempt{Host: h.Name, Addr: addr, Source: h.Source, Requirement: h.Requirement.String(),
			TLS: c.tlsState != nil, ServerAuth: c.ServerAuth(), DANEMatch: c.DANEMatch(), Reused: true}
		d.logAttempt(ctx, att)
		return mxLease{c: c, pooled: true}, att, nil
	}
	hs := p.hostLocked(h.Name)
	key := requirementKey(&h.Requirement)
	cache := hs.caches[key]
	if cache == nil {
		cache = tls.NewLRUClientSessionCache(0)
		hs.caches[key] = cache
	}
	p.mu.Unlock()
	c, att, err := d.dialHost(ctx, h, addr, modeStrict, cache)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Dials++
	if err != nil {
		return mxLease{}, att, err
	}
	if p.closed {
		return mxLease{c: c}, att, nil
	}
	p.inUse[c] = &mxSession{c: c, sec: securityOf(c, h.Name, addr, &h.Requirement, d.RootCAs)}
	return mxLease{c: c, pooled: true}, att, nil
}

// takeIdleLocked takes out of the idle list the most recently used session
// that meets w and has not been idle too long (those that have are
// retired), or returns nil. p.mu is held.
func (p *MXPool) takeIdleLocked(w *mxWant, fresh bool) *mxSession {
	hs := p.hosts[canonName(w.host)]
	if hs == nil || fresh {
		return nil
	}
	idleTO := orDefault(p.IdleTimeout, DefaultMXPoolIdleTimeout)
	for i := len(hs.idle) - 1; i >= 0; i-- {
		s := hs.idle[i]
		if !s.sec.meets(w) {
			continue
		}
		hs.idle = slices.Delete(hs.idle, i, i+1)
		if time.Since(s.idleSince) >= idleTO {
			// Past its time: the reaper has not run yet.
			p.retireLocked(s)
			continue
		}
		return s
	}
	return nil
}

// hostLocked returns the entry of an MX host, made on first use. p.mu is
// held.
func (p *MXPool) hostLocked(name string) *mxHost {
	name = canonName(name)
	hs := p.hosts[name]
	if hs == nil {
		hs = &mxHost{caches: map[string]tls.ClientSessionCache{}}
		p.hosts[name] = hs
	}
	return hs
}

// release takes a session back after its message, whose error was err.
// It reports whether the message must be sent again on another session:
// a reused session turned out to be closed before anything was written.
func (p *MXPool) release(ctx context.Context, c *Client, err error) (retry bool) {
	p.mu.Lock()
	s := p.inUse[c]
	delete(p.inUse, c)
	if s == nil {
		p.mu.Unlock()
		c.quitQuietly(ctx)
		c.releaseBuffers()
		return false
	}
	retry = s.reusing && errors.Is(err, ErrIdleClosed)
	switch {
	case retry:
		p.st.Retried++
	case s.reusing:
		p.st.Reused++
	}
	s.sent++
	s.reusing = false
	hs := p.hostLocked(s.sec.host)
	healthy := c.err == nil && c.tx == nil && c.data == nil
	var quit bool
	switch {
	case !healthy:
		c.Close()
		c.releaseBuffers()
	case p.closed, s.sent >= orDefaultInt(p.MaxMessages, DefaultPoolMaxMessages),
		len(hs.idle) >= orDefaultInt(p.MaxIdlePerHost, DefaultMXPoolMaxIdlePerHost):
		quit = true
		p.wg.Add(1) // before drained is signalled: Close waits for this QUIT
	default:
		s.idleSince = time.Now()
		hs.idle = append(hs.idle, s)
		if p.timer == nil {
			p.timer = time.AfterFunc(orDefault(p.IdleTimeout, DefaultMXPoolIdleTimeout), p.reap)
		}
	}
	p.signalDrainedLocked()
	p.mu.Unlock()
	if quit {
		// In the delivery's own goroutine, as without a pool.
		c.quitQuietly(ctx)
		c.releaseBuffers()
		p.wg.Done()
	}
	return retry
}

// drop forgets a session that the server closed and closes its connection.
func (p *MXPool) drop(s *mxSession) {
	s.c.Close()
	s.c.releaseBuffers()
	p.mu.Lock()
	delete(p.inUse, s.c)
	p.signalDrainedLocked()
	p.mu.Unlock()
}

// signalDrainedLocked tells Close that no session is out any more. p.mu
// is held.
func (p *MXPool) signalDrainedLocked() {
	if p.closed && len(p.inUse) == 0 {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
}

func (p *MXPool) count(f func(*PoolStats)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

// retireLocked says QUIT to an idle session in the background; Close
// waits for it. p.mu is held, which orders the WaitGroup's Add before
// Close's Wait.
func (p *MXPool) retireLocked(s *mxSession) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.c.quitQuietly(p.bg)
		s.c.releaseBuffers()
	}()
}

// reap closes the sessions idle for IdleTimeout, and arms the timer for
// the next one.
func (p *MXPool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed {
		return
	}
	idleTO := orDefault(p.IdleTimeout, DefaultMXPoolIdleTimeout)
	now := time.Now()
	var next time.Duration
	for _, hs := range p.hosts {
		keep := hs.idle[:0]
		for _, s := range hs.idle {
			if age := now.Sub(s.idleSince); age >= idleTO {
				p.retireLocked(s)
				continue
			} else if left := idleTO - age; next == 0 || left < next {
				next = left
			}
			keep = append(keep, s)
		}
		clear(hs.idle[len(keep):])
		hs.idle = keep
	}
	if next > 0 {
		p.timer = time.AfterFunc(next, p.reap)
	}
}

// Stats returns the pool's counters. Open counts the sessions idle or out
// with a delivery; Waiting is always 0: a delivery never waits for a
// session, it makes one.
func (p *MXPool) Stats() PoolStats {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.Open = len(p.inUse)
	for _, hs := range p.hosts {
		st.Idle += len(hs.idle)
	}
	st.Open += st.Idle
	return st
}

// Close stops the pool: idle sessions are closed with QUIT, sessions out
// with a delivery when it ends, and from then on deliveries make a new
// session for every attempt and close it after, as without a pool. Close
// waits for the deliveries under way to hand their sessions back; when it
// returns nil, no session and no goroutine of the pool is left.
//
// If ctx ends first, Close stops waiting, cuts the QUITs short and returns
// an error wrapping the context's error; sessions still out are closed
// when their deliveries end. Close may be called more than once.
func (p *MXPool) Close(ctx context.Context) error {
	p.init()
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.timer != nil {
			p.timer.Stop()
			p.timer = nil
		}
		for _, hs := range p.hosts {
			for _, s := range hs.idle {
				p.retireLocked(s)
			}
			hs.idle = nil
		}
		p.signalDrainedLocked()
	}
	p.mu.Unlock()
	select {
	case <-p.drained:
	case <-ctx.Done():
		p.bgCancel()
		return fmt.Errorf("smtpsecure: closing the MX pool: %w; sessions still in use are closed when their deliveries end", ctx.Err())
	}
	if awaitQuits(ctx, &p.wg, p.bgCancel) {
		return nil
	}
	return fmt.Errorf("smtpsecure: closing the MX pool: %w; sessions were closed without waiting for QUIT", ctx.Err())
}
