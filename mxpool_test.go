package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/policy"
)

// pooledDeliverer returns a Deliverer of the world with a new MXPool whose
// sessions never time out during a test, and the pool, closed (and checked
// to close cleanly) when the test ends.
func pooledDeliverer(t *testing.T, w *mxworld.World, rec TLSReportRecorder, configure func(*MXPool)) (*Deliverer, *MXPool) {
	t.Helper()
	p := &MXPool{IdleTimeout: time.Hour}
	if configure != nil {
		configure(p)
	}
	d := worldDeliverer(w, rec)
	d.Pool = p
	t.Cleanup(func() {
		if err := p.Close(ctxT(t)); err != nil {
			t.Errorf("MXPool.Close: %v", err)
		}
	})
	return d, p
}

// worldHost returns the first usable host of a domain's plan in the world.
func worldHost(t *testing.T, d *Deliverer, domain string) *policy.Host {
	t.Helper()
	pl, err := d.Planner().Plan(ctxT(t), domain)
	if err != nil || pl.Err != nil {
		t.Fatalf("plan of %s: %v %v", domain, err, pl.Err)
	}
	return pl.Usable()[0]
}

// Real sessions with one MX host, made under every kind of requirement a
// plan can give it, and a second message under every kind: the second
// message reuses the first session exactly when the rule says so. The
// host (mx.dane-ee.example) publishes a DANE-EE record and has a valid Web
// PKI certificate, so that every kind of session can be made with it.
func TestMXPoolSessionKinds(t *testing.T) {
	w := mxworld.New(t)
	d0 := worldDeliverer(w, nil)
	h0 := worldHost(t, d0, "dane-ee.example")
	if h0.Requirement.Auth != policy.AuthDANE {
		t.Fatalf("requirement %s, want DANE", &h0.Requirement)
	}
	name, addr := h0.Name, h0.Addrs[0]
	variant := func(f func(rq *policy.Requirement)) *policy.Host {
		h := *h0
		f(&h.Requirement)
		return &h
	}
	webPKI := func(names ...string) func(*policy.Requirement) {
		return func(rq *policy.Requirement) {
			rq.Auth, rq.WebPKINames, rq.DANE, rq.TLSA, rq.DANENames = policy.AuthWebPKI, names, nil, nil, nil
		}
	}
	extra, err := dane.ParseTLSA("3 1 1 " + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	rollover, err := dane.NewVerifier(append(h0.Requirement.DANE.Records(), extra), h0.Requirement.ServerName, h0.Requirement.DANENames...)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name string
		h    *policy.Host
	}{
		{"insecure-plaintext", variant(func(rq *policy.Requirement) {
			*rq = policy.Requirement{TLS: policy.TLSInsecurePlaintext}
		})},
		{"insecure-opportunistic", variant(func(rq *policy.Requirement) {
			*rq = policy.Requirement{TLS: policy.TLSInsecureOpportunistic, ServerName: name}
		})},
		{"TLS", variant(func(rq *policy.Requirement) {
			*rq = policy.Requirement{TLS: policy.TLSRequired, ServerName: name}
		})},
		{"Web PKI", variant(webPKI(name))},
		{"Web PKI, two names", variant(webPKI("other.example", name))},
		{"DANE", h0},
		{"DANE, rollover", variant(func(rq *policy.Requirement) {
			rq.DANE, rq.TLSA = rollover, nil
		})},
		{"DANE and Web PKI", variant(func(rq *policy.Requirement) {
			rq.Auth, rq.WebPKINames = policy.AuthDANEAndWebPKI, []string{name}
		})},
	}
	// Rows: the session's kind; columns: the second message's, in the
	// order above. x: reused, .: a new session.
	grid := []string{
		"xx......", // insecure-plaintext
		"xxx.....", // insecure-opportunistic (the host offers STARTTLS)
		"xxx.....", // TLS
		"xxxxx...", // Web PKI
		"xxxxx...", // Web PKI, two names
		"xxx..x..", // DANE
		"xxx...x.", // DANE, rollover
		"xxxxxx.x", // DANE and Web PKI
	}
	ctx := ctxT(t)
	for i, first := range kinds {
		for j, second := range kinds {
			t.Run(first.name+"/"+second.name, func(t *testing.T) {
				d, p := pooledDeliverer(t, w, nil, nil)
				l, _, err := d.acquire(ctx, first.h, addr, modeStrict, false, false)
				if err != nil {
					t.Fatalf("session for %s: %v", first.name, err)
				}
				d.release(ctx, l, nil)
				l2, att, err := d.acquire(ctx, second.h, addr, modeStrict, false, false)
				if err != nil {
					t.Fatalf("session for %s: %v", second.name, err)
				}
				defer d.release(ctx, l2, nil)
				want := grid[i][j] == 'x'
				if att.Reused != want || (l2.c == l.c) != want {
					t.Errorf("reused: %v, want %v", att.Reused, want)
				}
				if st := p.Stats(); st.Dials != map[bool]uint64{true: 1, false: 2}[want] {
					t.Errorf("stats %+v", st)
				}
				rq := &second.h.Requirement
				if rq.TLS == policy.TLSRequired && att.TLS == false ||
					rq.Auth == policy.AuthWebPKI && att.ServerAuth == ServerAuthNone ||
					(rq.Auth == policy.AuthDANE || rq.Auth == policy.AuthDANEAndWebPKI) && !att.ServerAuth.DANE() {
					t.Errorf("session for %s: TLS %v, %s", second.name, att.TLS, att.ServerAuth)
				}
			})
		}
	}
}

// A REQUIRETLS message reuses only a session that offered REQUIRETLS after
// STARTTLS and was authenticated: with mx.requiretls.example (DANE-EE,
// REQUIRETLS offered) a DANE session is reused and one without
// authentication is not; with mx.dane-ee.example (REQUIRETLS not offered)
// none is.
func TestMXPoolRequireTLSSessions(t *testing.T) {
	w := mxworld.New(t)
	d0 := worldDeliverer(w, nil)
	ctx := ctxT(t)
	for _, tc := range []struct {
		domain string
		auth   policy.Auth // of the first session
		reused bool
	}{
		{"requiretls.example", policy.AuthDANE, true},
		{"requiretls.example", policy.AuthNone, false},
		{"dane-ee.example", policy.AuthDANE, false},
	} {
		t.Run(tc.domain+"/"+tc.auth.String(), func(t *testing.T) {
			h := worldHost(t, d0, tc.domain)
			if !h.RequireTLS {
				t.Fatalf("%s: the plan does not allow REQUIRETLS", h.Name)
			}
			first := h
			if tc.auth == policy.AuthNone {
				hh := *h
				hh.Requirement = policy.Requirement{TLS: policy.TLSRequired, ServerName: h.Name}
				first = &hh
			}
			d, _ := pooledDeliverer(t, w, nil, nil)
			l, _, err := d.acquire(ctx, first, h.Addrs[0], modeStrict, false, false)
			if err != nil {
				t.Fatal(err)
			}
			d.release(ctx, l, nil)
			l2, att, err := d.acquire(ctx, h, h.Addrs[0], modeStrict, true, false)
			if err != nil {
				t.Fatal(err)
			}
			d.release(ctx, l2, nil)
			if att.Reused != tc.reused {
				t.Errorf("REQUIRETLS message on the %s session: reused %v, want %v", tc.auth, att.Reused, tc.reused)
			}
		})
	}
}

// A reused session that the server closed after the pool's check and
// before the message: the message is not written (ErrIdleClosed), release
// asks for a new session, and the message goes once, on that session.
func TestMXPoolRetriesOnlyWhatWasNotSent(t *testing.T) {
	w := mxworld.New(t)
	d, p := pooledDeliverer(t, w, nil, nil)
	ctx := ctxT(t)
	h := worldHost(t, d, "nopolicy.example")
	srv := w.MX(h.Name)
	l, _, err := d.acquire(ctx, h, h.Addrs[0], modeStrict, false, false)
	if err != nil {
		t.Fatal(err)
	}
	d.release(ctx, l, nil)
	l, att, err := d.acquire(ctx, h, h.Addrs[0], modeStrict, false, false)
	if err != nil || !att.Reused {
		t.Fatalf("second session: reused %v, %v", att != nil && att.Reused, err)
	}
	// Dropped now, between the pool's check and the message.
	srv.CloseConnections()
	poolWaitFor(t, "the server to end the session", func() bool { return openSessions(srv) == 0 })
	id, msg := testMessage(t, "u@nopolicy.example")
	env := &Envelope{From: "s@sender.example", To: []string{"u@nopolicy.example"}}
	_, err = l.c.send(ctx, env, msg, !l.pooled)
	if !errors.Is(err, ErrIdleClosed) {
		t.Fatalf("send on the dropped session: %v, want ErrIdleClosed", err)
	}
	if !d.release(ctx, l, err) {
		t.Fatal("release did not ask for a new session")
	}
	for _, s := range srv.Sessions() {
		if slices.Contains(s.Verbs(), "MAIL") {
			t.Fatalf("the dropped session got %q", s.Verbs())
		}
	}
	l, att, err = d.acquire(ctx, h, h.Addrs[0], modeStrict, false, true)
	if err != nil || att.Reused {
		t.Fatalf("fresh session: reused %v, %v", att != nil && att.Reused, err)
	}
	msg.Seek(0, 0)
	_, err = l.c.send(ctx, env, msg, !l.pooled)
	if d.release(ctx, l, err) || err != nil {
		t.Fatalf("on a new session: %v", err)
	}
	if got := receivedBy(w, id); got[h.Name] != 1 {
		t.Errorf("received %v, want once", got)
	}
	if st := p.Stats(); st.Retried != 1 || st.Dials != 2 {
		t.Errorf("stats %+v, want 1 retried and 2 dials", st)
	}
}

// A pool serves one Deliverer, and refuses negative settings.
func TestMXPoolConfiguration(t *testing.T) {
	w := mxworld.New(t)
	p := &MXPool{}
	d1, d2 := worldDeliverer(w, nil), worldDeliverer(w, nil)
	d1.Pool, d2.Pool = p, p
	msg := bytes.NewReader([]byte("Subject: x\r\n\r\nx\r\n"))
	env := &Envelope{From: "s@sender.example", To: []string{"u@nopolicy.example"}}
	if _, err := d1.Deliver(ctxT(t), env, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Deliver(ctxT(t), env, msg); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("a second Deliverer on the pool: %v, want ErrInvalidOptions", err)
	}
	if err := p.Close(ctxT(t)); err != nil {
		t.Error(err)
	}
	for name, bad := range map[string]*MXPool{
		"MaxIdlePerHost": {MaxIdlePerHost: -1},
		"MaxMessages":    {MaxMessages: -1},
		"IdleTimeout":    {IdleTimeout: -time.Second},
	} {
		d := worldDeliverer(w, nil)
		d.Pool = bad
		if _, err := d.Deliver(ctxT(t), env, msg); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("negative %s: %v, want ErrInvalidOptions", name, err)
		}
	}
}

// Close while a delivery holds a session waits for it, and cut short by
// its context reports it; later deliveries work without the pool.
func TestMXPoolCloseWaitsForDeliveries(t *testing.T) {
	w := mxworld.New(t)
	d, p := pooledDeliverer(t, w, nil, nil)
	ctx := ctxT(t)
	h := worldHost(t, d, "nopolicy.example")
	l, _, err := d.acquire(ctx, h, h.Addrs[0], modeStrict, false, false)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Close(short); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a session out and an ended context: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	d.release(ctx, l, nil)
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	srv := w.MX(h.Name)
	poolWaitFor(t, "the session to end", func() bool { return openSessions(srv) == 0 })
	before := len(srv.Sessions())
	id, msg := testMessage(t, "u@nopolicy.example")
	res := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@nopolicy.example"}}, msg)
	if res[0].Outcome != OutcomeDelivered || receivedBy(w, id)[h.Name] != 1 {
		t.Fatalf("after Close: %s, %v", res[0].Outcome, res[0].Err)
	}
	poolWaitFor(t, "the session to end", func() bool { return openSessions(srv) == 0 })
	if n := len(srv.Sessions()) - before; n != 1 {
		t.Errorf("%d sessions for one message after Close", n)
	}
	if st := p.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Errorf("after Close: %+v", st)
	}
}
