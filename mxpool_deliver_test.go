package smtpsecure

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// sessionsOf counts the sessions an MX host of the world has accepted.
func sessionsOf(w *mxworld.World, host string) int { return len(w.MX(host).Sessions()) }

// Deliver through a pool, to domains of every policy: the messages after
// the first reuse the first session (one connection per host), each
// arrives once, the reused attempts say so and add no TLS-RPT result, and
// a REQUIRETLS message reuses a session that can carry it.
func TestMXPoolDeliverReuse(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	d, p := pooledDeliverer(t, w, rec, nil)
	tests := []struct {
		domain, host string
		requireTLS   bool // the third message asks for REQUIRETLS
	}{
		{domain: "dane-ee.example", host: "mx.dane-ee.example"},
		{domain: "dane-ta.example", host: "mx.dane-ta.example"},
		{domain: "cname-mx.example", host: "mail.cname-mx.example"},
		{domain: "sts-enforce.example", host: "mx.sts-enforce.example", requireTLS: true},
		{domain: "requiretls.example", host: "mx.requiretls.example", requireTLS: true},
		{domain: "nopolicy.example", host: "mx.nopolicy.example"},
		{domain: "implicit.example", host: "implicit.example"},
		{domain: "bücher.example", host: "mx.xn--bcher-kva.example"},
	}
	var dials uint64
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			rcpt := "u@" + tt.domain
			before := sessionsOf(w, tt.host)
			for n := range 3 {
				env := &Envelope{From: "s@sender.example", To: []string{rcpt}}
				env.RequireTLS = n == 2 && tt.requireTLS
				id, msg := testMessage(t, rcpt)
				r := deliver(t, d, env, msg)[0]
				if r.Outcome != OutcomeDelivered || r.Host != tt.host {
					t.Fatalf("message %d: %s at %s: %v", n, r.Outcome, r.Host, r.Err)
				}
				if got := receivedBy(w, id); got[tt.host] != 1 || len(got) != 1 {
					t.Errorf("message %d received %v, want once by %s", n, got, tt.host)
				}
				at := r.Attempts[len(r.Attempts)-1]
				if len(r.Attempts) != 1 || at.Reused != (n > 0) || at.Reused && at.Report != nil {
					t.Errorf("message %d: %d attempts, reused %v, report %v", n, len(r.Attempts), at.Reused, at.Report)
				}
				if at.ServerAuth != r.ServerAuth || !at.TLS || !r.TLS {
					t.Errorf("message %d: attempt %s, result %s", n, at.ServerAuth, r.ServerAuth)
				}
			}
			if n := sessionsOf(w, tt.host) - before; n != 1 {
				t.Errorf("%d sessions with %s for three messages, want 1", n, tt.host)
			}
			a := r0Domain(t, tt.domain)
			if results := rec.forDomain(a); len(results) != 1 {
				t.Errorf("%d TLS-RPT results for one session", len(results))
			}
			dials++
		})
	}
	if st := p.Stats(); st.Dials != dials || st.Reused != 2*dials || st.Idle != len(tests) {
		t.Errorf("stats %+v, want %d dials, %d reused, %d idle", st, dials, 2*dials, len(tests))
	}
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("plaintext: %q", l)
	}
}

// r0Domain returns a domain in A-labels.
func r0Domain(t *testing.T, domain string) string {
	t.Helper()
	a := canonName(domain)
	if a == "" {
		t.Fatalf("domain %q", domain)
	}
	return a
}

// A session the server dropped while it was idle is found before the next
// message and replaced; the message goes once, on a new session.
func TestMXPoolDeliverReplacesDroppedSessions(t *testing.T) {
	w := mxworld.New(t)
	d, p := pooledDeliverer(t, w, nil, nil)
	const host = "mx.dane-ee.example"
	srv := w.MX(host)
	send := func() {
		t.Helper()
		id, msg := testMessage(t, "u@dane-ee.example")
		r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@dane-ee.example"}}, msg)[0]
		if r.Outcome != OutcomeDelivered || receivedBy(w, id)[host] != 1 {
			t.Fatalf("%s: %v (received %v)", r.Outcome, r.Err, receivedBy(w, id))
		}
	}
	send()
	srv.CloseConnections()
	poolWaitFor(t, "the server to drop the session", func() bool { return openSessions(srv) == 0 })
	send()
	send()
	if st := p.Stats(); st.Replaced != 1 || st.Dials != 2 || st.Reused != 1 {
		t.Errorf("stats %+v, want 1 replaced, 2 dials, 1 reused", st)
	}
}

// MaxMessages, MaxIdlePerHost and IdleTimeout close sessions with QUIT.
func TestMXPoolLimits(t *testing.T) {
	w := mxworld.New(t)
	const host = "mx.nopolicy.example"
	srv := w.MX(host)
	send := func(d *Deliverer, n int) {
		t.Helper()
		for range n {
			_, msg := testMessage(t, "u@nopolicy.example")
			if r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@nopolicy.example"}}, msg)[0]; r.Outcome != OutcomeDelivered {
				t.Fatalf("%s: %v", r.Outcome, r.Err)
			}
		}
	}
	ended := func(want int) {
		t.Helper()
		poolWaitFor(t, "the sessions to end", func() bool { return openSessions(srv) == 0 })
		if n := len(srv.Sessions()); n != want {
			t.Errorf("%d sessions, want %d", n, want)
		}
		for i, s := range srv.Sessions() {
			if s.Err() != nil || s.Verbs()[len(s.Verbs())-1] != "QUIT" {
				t.Errorf("session %d ended with %v after %q, want QUIT", i, s.Err(), s.Verbs())
			}
		}
	}

	d, p := pooledDeliverer(t, w, nil, func(p *MXPool) { p.MaxMessages = 2 })
	send(d, 5) // 2 + 2 + 1
	if err := p.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ended(3)

	d, p = pooledDeliverer(t, w, nil, func(p *MXPool) { p.IdleTimeout = 20 * time.Millisecond })
	send(d, 1)
	poolWaitFor(t, "the idle session to be closed", func() bool { return p.Stats().Open == 0 })
	ended(4)

	// Two deliveries at once need two sessions; with MaxIdlePerHost 1 only
	// one is kept.
	d, p = pooledDeliverer(t, w, nil, func(p *MXPool) { p.MaxIdlePerHost = 1 })
	h := worldHost(t, d, "nopolicy.example")
	ctx := ctxT(t)
	l1, _, err1 := d.acquire(ctx, h, h.Addrs[0], modeStrict, false, false)
	l2, _, err2 := d.acquire(ctx, h, h.Addrs[0], modeStrict, false, false)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	d.release(ctx, l1, nil)
	d.release(ctx, l2, nil)
	if st := p.Stats(); st.Idle != 1 || st.Open != 1 {
		t.Errorf("stats %+v, want one idle session", st)
	}
	poolWaitFor(t, "the second session to end", func() bool { return openSessions(srv) == 1 })
}

// Many goroutines deliver to domains of every policy through one pool,
// under -race: every message arrives exactly once, and after Close no
// session is open (each ended with QUIT), the pool holds nothing, and its
// goroutines are gone.
func TestMXPoolDeliverConcurrent(t *testing.T) {
	w := mxworld.New(t)
	d, p := pooledDeliverer(t, w, nil, func(p *MXPool) { p.MaxIdlePerHost = 2 })
	domains := []string{"dane-ee.example", "requiretls.example", "nopolicy.example", "implicit.example"}
	// Once to each domain first, so that what the first plans start (the
	// resolver's sockets) is there before counting goroutines.
	for _, dom := range domains {
		_, msg := testMessage(t, "u@"+dom)
		deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@" + dom}}, msg)
	}
	before := runtime.NumGoroutine()
	const senders, each = 12, 10
	ids := make([]string, senders*each)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				// Two domains per message, so that a call works on two at once.
				a, b := domains[n%len(domains)], domains[(n+1)%len(domains)]
				to := []string{"u@" + a, "v@" + b}
				id, msg := testMessage(t, to...)
				ids[n] = id
				for _, r := range deliver(t, d, &Envelope{From: "s@sender.example", To: to}, msg) {
					if r.Outcome != OutcomeDelivered {
						t.Errorf("message %d to %s: %s, %v", n, r.Recipient, r.Outcome, r.Err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for n, id := range ids {
		total := 0
		for _, c := range receivedBy(w, id) {
			total += c
		}
		if total != 2 {
			t.Errorf("message %d received %d times, want once per domain", n, total)
		}
	}
	st := p.Stats()
	if st.Reused == 0 || st.Open > 2*len(domains)+senders*2 {
		t.Errorf("stats %+v", st)
	}
	if err := p.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, dom := range domains {
		h := worldHost(t, d, dom)
		srv := w.MX(h.Name)
		poolWaitFor(t, "the sessions of "+h.Name+" to end", func() bool { return openSessions(srv) == 0 })
		for i, s := range srv.Sessions() {
			if s.Err() != nil {
				t.Errorf("%s: session %d ended with %v, want QUIT", h.Name, i, s.Err())
			}
		}
	}
	if st := p.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Errorf("after Close: %+v", st)
	}
	poolWaitFor(t, "the pool's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("plaintext: %q", l)
	}
}

// Deliveries through a pool to MX hosts that fail at random (resets and
// hang-ups before and during the transaction and before the final reply,
// refusals, 421 after the reply, sessions dropped from outside): a message
// reported delivered arrived exactly once, one reported failed never, one
// whose delivery is uncertain at most once; nothing arrives twice.
func TestMXPoolDeliverFaults(t *testing.T) {
	seed := uint64(rand.Uint32())
	t.Logf("seed %d", seed)
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 7))
	roll := func() int {
		rmu.Lock()
		defer rmu.Unlock()
		return rng.IntN(100)
	}
	var faults atomic.Int32
	var dropper sync.WaitGroup
	var world atomic.Pointer[miniWorld] // set once the servers run
	hook := func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
		if w := world.Load(); w != nil && roll() < 1 {
			faults.Add(1)
			dropper.Add(1)
			go func() {
				defer dropper.Done()
				for _, s := range w.servers {
					s.CloseConnections()
				}
			}()
		}
		r := roll()
		switch cmd.Verb {
		case "MAIL":
			switch {
			case r < 3:
				faults.Add(1)
				c.Reset()
				return "", true
			case r < 5:
				faults.Add(1)
				return "451 4.3.0 later", true
			}
		case "BDAT", "DATA":
			if r < 3 {
				faults.Add(1)
				c.Reset()
				return "", true
			}
		case "EOD":
			switch {
			case r < 3:
				faults.Add(1)
				c.Close() // before the final reply: uncertain
				return "", true
			case r < 6:
				faults.Add(1)
				return "451 4.3.0 queue trouble", true
			case r < 9:
				faults.Add(1)
				return "250 2.0.0 OK\r\n421 4.4.2 closing", true
			}
		}
		return "", false
	}
	w := newMiniWorld(t, miniHost{name: "mx1.mini.example", hook: hook}, miniHost{name: "mx2.mini.example", hook: hook})
	world.Store(w)
	d := w.deliverer(nil)
	p := &MXPool{IdleTimeout: time.Hour}
	d.Pool = p
	const senders, each = 8, 25
	type outcome struct {
		id  string
		res RecipientResult
	}
	outcomes := make([]outcome, senders*each)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				id, msg := testMessage(t, "u@mini.example")
				r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@mini.example"}}, msg)[0]
				outcomes[n] = outcome{id, r}
			}
		}()
	}
	wg.Wait()
	dropper.Wait()
	if err := p.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, h := range []string{"mx1.mini.example", "mx2.mini.example"} {
		for _, m := range w.messages(h) {
			for _, o := range outcomes {
				if bytes.Contains(m.Data, []byte("Message-ID: <"+o.id+">")) {
					got[o.id]++
				}
			}
		}
	}
	var delivered, failed, uncertain int
	for n, o := range outcomes {
		c := got[o.id]
		var ue *UncertainDeliveryError
		switch {
		case c > 1:
			t.Errorf("message %d arrived %d times", n, c)
		case o.res.Outcome == OutcomeDelivered:
			delivered++
			if c != 1 {
				t.Errorf("message %d reported delivered, arrived %d times", n, c)
			}
		case errors.As(o.res.Err, &ue):
			uncertain++
		default:
			failed++
			if c != 0 {
				t.Errorf("message %d failed (%v) but arrived", n, o.res.Err)
			}
		}
	}
	t.Logf("%d faults; %d delivered, %d failed, %d uncertain; %+v", faults.Load(), delivered, failed, uncertain, p.Stats())
	if delivered == 0 || faults.Load() == 0 || p.Stats().Reused == 0 {
		t.Errorf("the test proved nothing: %d delivered, %d faults, %+v", delivered, faults.Load(), p.Stats())
	}
}

// Sessions whose certificate is checked after the handshake (a
// "TLS-Required: No" message that the Deliverer honours) neither come from
// the pool nor go to it.
func TestMXPoolBypassesRelaxedSessions(t *testing.T) {
	w := mxworld.New(t)
	d, p := pooledDeliverer(t, w, nil, nil)
	d.InsecureHonorTLSRequiredNo = true
	const host = "mx.sts-untrusted.example"
	for n := range 2 {
		msg := bytes.NewReader([]byte(fmt.Sprintf("TLS-Required: No\r\nSubject: %d\r\n\r\nx\r\n", n)))
		r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@sts-untrusted.example"}}, msg)[0]
		if r.Outcome != OutcomeDelivered || r.Attempts[0].Reused {
			t.Fatalf("message %d: %s, %v, reused %v", n, r.Outcome, r.Err, r.Attempts[0].Reused)
		}
	}
	poolWaitFor(t, "the sessions to end", func() bool { return openSessions(w.MX(host)) == 0 })
	if n := sessionsOf(w, host); n != 2 {
		t.Errorf("%d sessions, want one per message", n)
	}
	if st := p.Stats(); st.Dials != 0 || st.Open != 0 {
		t.Errorf("stats %+v: the pool took part", st)
	}
	if !strings.Contains(fmt.Sprint(w.MX(host).Sessions()[0].Verbs()), "QUIT") {
		t.Errorf("session %q without QUIT", w.MX(host).Sessions()[0].Verbs())
	}
}
