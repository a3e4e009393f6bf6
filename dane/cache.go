package dane

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// cacheKind tells what a cache entry holds.
type cacheKind uint8

const (
	kindKeys   cacheKind = iota + 1 // *zoneKeys of a zone apex
	kindDeleg                       // *delegation: what the parent proves about a name
	kindAnswer                      // *cachedAnswer: a validated reply to a query
)

type cacheKey struct {
	name  string // lower-case FQDN
	qtype uint16
	kind  cacheKind
}

type cacheEntry struct {
	key     cacheKey
	val     any
	expires time.Time
}

// cache is a bounded least-recently-used cache of validated results, with
// expiry, safe for concurrent use. Values are never changed once stored.
// It also makes concurrent lookups that need the same result (the A and
// AAAA lookups of one host, two deliveries to one domain) wait for one
// validation instead of each doing it.
type cache struct {
	mu      sync.Mutex
	max     int // <= 0: nothing is kept
	ll      *list.List
	m       map[cacheKey]*list.Element
	flights map[cacheKey]*flight
}

// flight is a computation other callers may wait for.
type flight struct {
	done chan struct{}
	val  any
	err  error
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), m: make(map[cacheKey]*list.Element), flights: make(map[cacheKey]*flight)}
}

// get returns the value stored under k if it has not expired at now.
func (c *cache) get(k cacheKey, now time.Time) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k, now)
}

func (c *cache) getLocked(k cacheKey, now time.Time) (any, bool) {
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*cacheEntry)
	if !now.Before(ent.expires) {
		c.ll.Remove(e)
		delete(c.m, k)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return ent.val, true
}

// put stores v under k until expires, evicting the least recently used
// entries beyond the size bound. Values already expired at now are not
// stored.
func (c *cache) put(k cacheKey, v any, expires, now time.Time) {
	if c.max <= 0 || !expires.After(now) {
		return
	}
	if limit := now.Add(maxCacheTTL); expires.After(limit) {
		expires = limit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		ent := e.Value.(*cacheEntry)
		ent.val, ent.expires = v, expires
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&cacheEntry{key: k, val: v, expires: expires})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// do returns the cached value of k, or computes it with fn and caches it
// until the expiry fn returns. Concurrent callers for the same key wait
// for the first one's computation. When that computation fails, a waiting
// caller computes the value itself: the failure may be the first caller's
// (its context ended, its work budget ran out).
func (c *cache) do(ctx context.Context, k cacheKey, now func() time.Time, fn func() (any, time.Time, error)) (any, error) {
	c.mu.Lock()
	if v, ok := c.getLocked(k, now()); ok {
		c.mu.Unlock()
		return v, nil
	}
	if f, ok := c.flights[k]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				return f.val, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		v, exp, err := fn()
		if err == nil {
			c.put(k, v, exp, now())
		}
		return v, err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[k] = f
	c.mu.Unlock()

	v, exp, err := fn()
	if err == nil {
		c.put(k, v, exp, now())
	}
	c.mu.Lock()
	delete(c.flights, k)
	c.mu.Unlock()
	f.val, f.err = v, err
	close(f.done)
	return v, err
}
