package smtpsecure

import (
	"context"
	"sync"
	"time"
)

// rateLimiter lets at most limit messages begin in any span of per: it
// remembers when the last limit messages began, and a message may begin
// once the oldest of them is per old. Unlike a token bucket, it never lets
// a burst exceed the limit within one span, which is what providers count.
type rateLimiter struct {
	per time.Duration

	mu     sync.Mutex
	starts []time.Time // when the last len(starts) messages began, a ring
	next   int         // the oldest entry, overwritten next

	onBegin func(time.Time) // called with each start, under mu; for tests
}

func newRateLimiter(limit int, per time.Duration) *rateLimiter {
	return &rateLimiter{per: per, starts: make([]time.Time, limit)}
}

// wait returns once a message may begin, and counts it; or the context's
// error, counting nothing.
func (r *rateLimiter) wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		now := time.Now()
		oldest := r.starts[r.next]
		if oldest.IsZero() || now.Sub(oldest) >= r.per {
			r.starts[r.next] = now
			if r.onBegin != nil {
				r.onBegin(now)
			}
			r.next = (r.next + 1) % len(r.starts)
			r.mu.Unlock()
			return nil
		}
		delay := r.per - now.Sub(oldest)
		r.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
