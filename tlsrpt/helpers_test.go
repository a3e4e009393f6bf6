package tlsrpt

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// vectorsDir is where the shared test vectors live. They are read at test
// time (their licences differ from this project's) and the tests that need
// them are skipped when they are absent.
var vectorsDir = filepath.Join("..", "..", "shared", "vectors", "tlsrpt")

func readVector(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir, rel))
	if err != nil {
		t.Skipf("shared vectors not available: %v", err)
	}
	return data
}

// readVectorQuiet returns a vector file, or nil when it is absent.
func readVectorQuiet(rel string) []byte {
	data, err := os.ReadFile(filepath.Join(vectorsDir, rel))
	if err != nil {
		return nil
	}
	return data
}

// fakeResolver answers TXT lookups from a map; a name in fail gets that
// error, a name in neither does not exist.
type fakeResolver struct {
	mu      sync.Mutex
	txt     map[string][]string
	fail    map[string]error
	queries []string
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, name)
	if err := r.fail[name]; err != nil {
		return nil, err
	}
	if txt, ok := r.txt[name]; ok {
		return txt, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) set(name string, txt ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.txt == nil {
		r.txt = make(map[string][]string)
	}
	r.txt[name] = txt
}

func (r *fakeResolver) setFail(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = make(map[string]error)
	}
	if err == nil {
		delete(r.fail, name)
		return
	}
	r.fail[name] = err
}

// fakeClock is a Clock whose time moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []fakeWaiter
	asked   chan time.Duration // receives each After duration, if set
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
	} else {
		c.waiters = append(c.waiters, fakeWaiter{at: c.t.Add(d), ch: ch})
	}
	asked := c.asked
	c.mu.Unlock()
	if asked != nil {
		asked <- d
	}
	return ch
}

// set moves the clock to t and fires the waiters that are due.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

func (c *fakeClock) advance(d time.Duration) { c.set(c.Now().Add(d)) }

// day is a shorthand for a Day in tests.
func day(s string) Day {
	d, err := ParseDay(s)
	if err != nil {
		panic(err)
	}
	return d
}
