package dane

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The cache keeps validated keys, delegations and answers: a repeated
// lookup sends nothing upstream, another name in a known zone sends one
// query; entries expire with the earliest TTL or signature expiration of
// what validated them.
func TestValidatorCache(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	clock := &fakeClock{t: time.Now()}
	r := validatingResolver(srv.Addr, z.anchors())
	r.Validator.now = clock.now
	ctx := context.Background()

	lookup := func(name string, qt uint16) {
		t.Helper()
		a, err := r.Lookup(ctx, name, qt)
		if err != nil || a.Status != Secure {
			t.Fatalf("%s %s: %+v, %v", name, dns.TypeToString[qt], a, err)
		}
	}
	lookup("example.com", dns.TypeMX)
	cold := srv.Count("", 0)
	lookup("example.com", dns.TypeMX)
	if n := srv.Count("", 0) - cold; n != 0 {
		t.Errorf("a repeated lookup sent %d queries, want 0", n)
	}
	lookup("mx.example.com", dns.TypeA)
	if n := srv.Count("", 0) - cold; n != 1 {
		t.Errorf("a lookup in a validated zone sent %d queries, want 1 (%+v)", n, srv.Queries()[cold:])
	}

	// Insecure answers and denials are cached too.
	for _, q := range []struct {
		name string
		t    uint16
	}{{"mx.insecure.example.com", dns.TypeA}, {"nowhere.example.com", dns.TypeA}, {"mx.example.com", dns.TypeTXT}} {
		if _, err := r.Lookup(ctx, q.name, q.t); err != nil {
			t.Fatal(err)
		}
		before := srv.Count("", 0)
		if _, err := r.Lookup(ctx, q.name, q.t); err != nil {
			t.Fatal(err)
		}
		if n := srv.Count("", 0) - before; n != 0 {
			t.Errorf("%s %s again: %d queries, want 0", q.name, dns.TypeToString[q.t], n)
		}
	}

	// Within the shortest TTL (300 s, the DS and denial records): cached.
	clock.advance(time.Minute)
	before := srv.Count("", 0)
	lookup("example.com", dns.TypeMX)
	if n := srv.Count("", 0) - before; n != 0 {
		t.Errorf("after a minute: %d queries, want 0", n)
	}
	// Beyond it: validated again, from the keys down.
	clock.advance(10 * time.Minute)
	before = srv.Count("", 0)
	lookup("example.com", dns.TypeMX)
	if srv.Count("", 0) == before || srv.Count("com.", dns.TypeDS) < 2 {
		t.Errorf("after the TTLs: %d new queries; want the chain validated again", srv.Count("", 0)-before)
	}
}

// A signature that expires before the TTL ends the cache entry.
func TestValidatorCacheSignatureExpiry(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	resign(t, z.ex, "mx.example.com.", dns.TypeA, window(-time.Hour, 2*time.Minute))
	clock := &fakeClock{t: time.Now()}
	r := validatingResolver(srv.Addr, z.anchors())
	r.Validator.now = clock.now
	ctx := context.Background()
	for _, step := range []struct {
		advance time.Duration
		queries int
	}{{0, 1}, {time.Minute, 1}, {2 * time.Minute, 2}} {
		clock.advance(step.advance)
		a, err := r.Lookup(ctx, "mx.example.com", dns.TypeA)
		if err != nil || a.Status != Secure {
			t.Fatalf("%+v, %v", a, err)
		}
		if n := srv.Count("mx.example.com", dns.TypeA); n != step.queries {
			t.Errorf("after %v more: %d A queries, want %d", step.advance, n, step.queries)
		}
	}
}

// The cache holds at most CacheSize entries; a negative size disables it.
func TestValidatorCacheSize(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	ctx := context.Background()
	names := []string{"example.com", "mx.example.com", "alias.example.com", "mx.other.com", "mx.sub.example.com", "nowhere.example.com"}

	r := validatingResolver(srv.Addr, z.anchors())
	r.Validator.CacheSize = 3
	for _, n := range names {
		if _, err := r.Lookup(ctx, n, dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Validator.cache.len(); n > 3 {
		t.Errorf("%d cache entries, want at most 3", n)
	}

	r = validatingResolver(srv.Addr, z.anchors())
	r.Validator.CacheSize = -1
	srv.ResetLog()
	for range 2 {
		if _, err := r.Lookup(ctx, "mx.example.com", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count(".", dns.TypeDNSKEY); n != 2 {
		t.Errorf("without a cache the root keys were fetched %d times for 2 lookups, want 2", n)
	}
}

// Concurrent cold lookups validate each zone's keys once, and what a
// caller does to the records it got does not reach the cache.
func TestValidatorConcurrent(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	r := validatingResolver(srv.Addr, z.anchors())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := []string{"mx.example.com", "alias.example.com", "mx.other.com", "toother.example.com"}[i%4]
			a, err := r.LookupIP(ctx, host)
			if err != nil {
				errs <- err
				return
			}
			if a.Status != Secure || len(a.Addrs) == 0 {
				errs <- &LookupError{Name: host, Err: ErrLookup}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, zone := range []string{".", "com.", "example.com.", "other.com."} {
		if n := srv.Count(zone, dns.TypeDNSKEY); n != 1 {
			t.Errorf("DNSKEY %s fetched %d times, want once", zone, n)
		}
	}

	a, err := r.Lookup(ctx, "example.com", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	a.Records[0].(*dns.MX).Mx = "evil.example."
	b, err := r.Lookup(ctx, "example.com", dns.TypeMX)
	if err != nil || b.Records[0].(*dns.MX).Mx != "mx.example.com." {
		t.Errorf("the cached answer changed with the caller's copy: %v, %v", b, err)
	}
}

// A bogus answer is remembered for a few seconds (RFC 9520), so that a
// burst of lookups does not validate it again and again; then it is asked
// again.
func TestValidatorCachesBogusBriefly(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	resign(t, z.ex, "mx.example.com.", dns.TypeA, func(s *dns.RRSIG) { s.KeyTag++ })
	clock := &fakeClock{t: time.Now()}
	r := validatingResolver(srv.Addr, z.anchors())
	r.Validator.now = clock.now
	ctx := context.Background()
	for i, step := range []time.Duration{0, time.Second, bogusTTL} {
		clock.advance(step)
		_, err := r.Lookup(ctx, "mx.example.com", dns.TypeA)
		var ve *ValidationError
		if !errors.Is(err, ErrBogus) || !errors.As(err, &ve) {
			t.Fatalf("lookup %d: %v, want bogus", i, err)
		}
		want := 1
		if i == 2 {
			want = 2
		}
		if n := srv.Count("mx.example.com", dns.TypeA); n != want {
			t.Errorf("lookup %d: %d queries for the answer, want %d", i, n, want)
		}
	}
}
