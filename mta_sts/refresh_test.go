package mtasts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// STD-61: cached policies are renewed before they expire, with jitter;
// failures are reported (alerting unless mode none).
func TestRefreshOnce(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1) // max_age one day
	l.r.setTXT("_mta-sts.short.example", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.short.example", "version: STSv1\nmode: testing\nmx: mx.short.example\nmax_age: 3600\n")
	start := l.clock.Now()
	l.get("example.com")
	l.get("short.example")

	// Nothing is due yet.
	if n, err := l.c.RefreshOnce(ctx); n != 0 || err != nil {
		t.Fatalf("RefreshOnce right after the fetch: %d, %v", n, err)
	}
	// A policy with max_age one hour is renewed within its first half hour
	// (minus jitter), the one-day policy within 12 hours.
	l.clock.Advance(30 * time.Minute)
	if n, err := l.c.RefreshOnce(ctx); n != 1 || err != nil {
		t.Fatalf("after 30 min: %d, %v", n, err)
	}
	if n := l.ps.count("mta-sts.short.example"); n != 2 {
		t.Errorf("short.example fetched %d times", n)
	}
	e, _ := l.c.store().Load(ctx, "short.example")
	if !e.FetchedAt.Equal(l.clock.Now()) {
		t.Errorf("renewal did not restart max_age: fetched at %v", e.FetchedAt)
	}

	// The id changed meanwhile: the refresher picks up the new policy.
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=2")
	l.ps.servePolicy("mta-sts.example.com", enforceMX2)
	l.clock.Set(start.Add(12 * time.Hour))
	if n, err := l.c.RefreshOnce(ctx); n != 2 || err != nil {
		t.Fatalf("after 12 h: %d, %v (want both renewed)", n, err)
	}
	e, _ = l.c.store().Load(ctx, "example.com")
	if e.ID != "2" || !e.Policy.Match("mx2.example.com") {
		t.Errorf("refresher kept the old policy: %+v", e)
	}
	res := l.get("example.com")
	if res.Source != SourceCached || res.ID != "2" {
		t.Errorf("Get after refresh: %+v", res)
	}
}

func TestRefreshFailures(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	l.r.setTXT("_mta-sts.none.example", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.none.example", "version: STSv1\nmode: none\nmax_age: 86400\n")
	l.get("example.com")
	l.get("none.example")

	// The policy host fails: the entries stay while valid, failures are
	// logged (Warn for enforce, Info for none).
	l.ps.handle("mta-sts.example.com", nil, textHandler(500, "text/plain", ""))
	l.ps.handle("mta-sts.none.example", nil, textHandler(500, "text/plain", ""))
	l.clock.Advance(13 * time.Hour)
	n, err := l.c.RefreshOnce(ctx)
	if n != 0 || !errors.Is(err, ErrFetch) {
		t.Fatalf("RefreshOnce with failing hosts: %d, %v", n, err)
	}
	logs := l.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "domain=example.com") ||
		!strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "domain=none.example") {
		t.Errorf("failures not logged as expected:\n%s", logs)
	}
	if ds, _ := l.c.store().Domains(ctx); len(ds) != 2 {
		t.Errorf("entries dropped before expiry: %v", ds)
	}
	if res := l.get("example.com"); res.Source != SourceCached {
		t.Errorf("Get after a failed refresh: %+v", res)
	}

	// The TXT record is gone and the policy expires: the entry is deleted.
	l.r.setTXT("_mta-sts.example.com")
	l.clock.Advance(12 * time.Hour)
	if _, err := l.c.RefreshOnce(ctx); !errors.Is(err, ErrNoRecord) {
		t.Errorf("RefreshOnce: %v", err)
	}
	if _, err := l.c.store().Load(ctx, "example.com"); !errors.Is(err, ErrNotCached) {
		t.Errorf("expired entry kept: %v", err)
	}
}

// The refresh time is at most RefreshInterval or half of max_age after the
// fetch, brought forward by less than 20%, and differs between entries.
func TestRefreshJitter(t *testing.T) {
	c := &Client{RefreshInterval: 10 * time.Hour}
	now := time.Now()
	seen := map[time.Duration]bool{}
	for i, d := range []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example"} {
		for _, maxAge := range []time.Duration{time.Hour, 7 * 24 * time.Hour} {
			e := &Entry{Domain: d, ID: "1", FetchedAt: now.Add(time.Duration(i) * time.Second), Policy: &Policy{Mode: ModeEnforce, MaxAge: maxAge}}
			base := c.RefreshInterval
			if maxAge/2 < base {
				base = maxAge / 2
			}
			due := c.refreshDue(e).Sub(e.FetchedAt)
			if due > base || due <= base*8/10 {
				t.Errorf("%s max_age %v: due after %v, want in (%v, %v]", d, maxAge, due, base*8/10, base)
			}
			// The jitter depends on the domain only: asking again gives
			// the same time.
			if again := c.refreshDue(e); !again.Equal(e.FetchedAt.Add(due)) {
				t.Error("jitter not stable")
			}
			seen[due] = true
		}
	}
	if len(seen) < 4 {
		t.Errorf("jitter too uniform: %v", seen)
	}
}

// Refresh runs passes until its context ends.
func TestRefreshLoop(t *testing.T) {
	r := newFakeResolver()
	ps := newPolicyServer(t)
	r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	ps.servePolicy("mta-sts.example.com", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 0\n")
	c := ps.client(r)
	c.RefreshInterval = 10 * time.Millisecond
	// A max_age of 0 is due at once, but is never valid: seed the store
	// directly, as Get would not keep it.
	p, _ := ParsePolicy([]byte("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 60\n"))
	c.store().Save(context.Background(), &Entry{Domain: "example.com", ID: "1", Policy: p, FetchedAt: time.Now().Add(-time.Hour)})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Refresh(ctx) }()
	deadline := time.After(10 * time.Second)
	for ps.count("mta-sts.example.com") < 2 {
		select {
		case <-deadline:
			t.Fatal("refresher did not fetch twice")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Refresh returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Refresh did not return after cancel")
	}
}

// A corrupt entry in a FileStore is reported by the refresher and skipped.
func TestRefreshCorruptEntry(t *testing.T) {
	l := newLifecycle(t)
	dir := t.TempDir()
	fs, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.c.Store = fs
	if err := os.WriteFile(filepath.Join(dir, "broken.example.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := l.c.RefreshOnce(context.Background())
	if n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Errorf("RefreshOnce = %d, %v", n, err)
	}
	if !strings.Contains(l.logs.String(), "broken.example") {
		t.Errorf("corrupt entry not logged: %s", l.logs)
	}
}
