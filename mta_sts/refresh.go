package mtasts

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"
)

// DefaultRefreshInterval is how often the refresher renews a cached policy
// whose max_age is at least twice as long (RFC 8461 §3.3 suggests about
// daily).
const DefaultRefreshInterval = 24 * time.Hour

func (c *Client) refreshInterval() time.Duration {
	if c.RefreshInterval > 0 {
		return c.RefreshInterval
	}
	return DefaultRefreshInterval
}

// refreshDue returns when e should be renewed: after RefreshInterval or half
// its max_age, whichever is shorter, brought forward by up to 20% so that
// policies fetched together are not all renewed at the same moment. The
// jitter is derived from the entry, so it does not change between passes.
func (c *Client) refreshDue(e *Entry) time.Time {
	base := c.refreshInterval()
	if half := e.Policy.MaxAge / 2; half < base {
		base = half
	}
	h := fnv.New64a()
	h.Write([]byte(e.Domain + "\x00" + e.ID + "\x00" + strconv.FormatInt(e.FetchedAt.UnixNano(), 10)))
	frac := float64(h.Sum64()%1000) / 1000 // [0, 1)
	jitter := time.Duration(float64(base) * 0.2 * frac)
	return e.FetchedAt.Add(base - jitter)
}

// Refresh renews cached policies before they expire, until ctx ends; run it
// in its own goroutine next to a long-lived Client. Each pass (see
// RefreshOnce) looks at every entry in the Store; passes run every
// RefreshInterval/24 (at most hourly). Failures are logged at Warn level
// (Info for mode none policies), as RFC 8461 §3.3 asks operators to be
// alerted. It returns ctx.Err() when ctx ends.
func (c *Client) Refresh(ctx context.Context) error {
	every := c.refreshInterval() / 24
	if every > time.Hour {
		every = time.Hour
	}
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.RefreshOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RefreshOnce makes one refresher pass: every cached policy that is due is
// fetched again (after a TXT lookup, which also picks up a new id). A
// successful fetch replaces the entry and restarts its max_age. When
// renewal fails the entry is kept while it is still valid and deleted once
// it has expired. It returns how many policies were renewed and the
// failures joined into one error.
func (c *Client) RefreshOnce(ctx context.Context) (renewed int, err error) {
	st := c.store()
	domains, err := st.Domains(ctx)
	if err != nil {
		c.logger().Warn("mtasts: refresher cannot list cached policies", slog.Any("error", err))
		return 0, err
	}
	var errs []error
	for _, d := range domains {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		e, lerr := st.Load(ctx, d)
		if lerr != nil {
			if !errors.Is(lerr, ErrNotCached) {
				c.logger().Warn("mtasts: refresher ignoring unreadable cached policy", slog.String("domain", d), slog.Any("error", lerr))
				errs = append(errs, lerr)
			}
			continue
		}
		if c.now().Before(c.refreshDue(e)) {
			continue
		}
		if rerr := c.refreshEntry(ctx, e); rerr != nil {
			errs = append(errs, rerr)
			level := slog.LevelWarn
			if e.Policy.Mode == ModeNone {
				level = slog.LevelInfo
			}
			expired := !e.Valid(c.now())
			c.logger().Log(ctx, level, "mtasts: could not renew cached policy",
				slog.String("domain", d), slog.String("mode", string(e.Policy.Mode)),
				slog.Time("expires", e.Expires()), slog.Bool("deleted", expired), slog.Any("error", rerr))
			if expired {
				if derr := st.Delete(ctx, d); derr != nil {
					errs = append(errs, derr)
				}
			}
			continue
		}
		renewed++
	}
	return renewed, errors.Join(errs...)
}

func (c *Client) refreshEntry(ctx context.Context, e *Entry) error {
	rec, err := LookupRecord(ctx, c.resolver(), e.Domain)
	if err != nil {
		return err
	}
	p, err := c.FetchPolicy(ctx, e.Domain)
	if err != nil {
		return err
	}
	c.clearFailure(e.Domain)
	ne := &Entry{Domain: e.Domain, ID: rec.ID, Policy: p, FetchedAt: c.now()}
	if err := c.store().Save(ctx, ne); err != nil {
		return &Error{Op: "store", Domain: e.Domain, Err: err}
	}
	return nil
}
