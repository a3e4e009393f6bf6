package tlsrpt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Store keeps the counts of sessions per policy domain and UTC day, and the
// state of sending each day's report. It never holds a record per session:
// it grows with the number of domains, days, policies and distinct
// failures, not with the number of messages.
//
// Implementations must be safe for concurrent use, must copy what they are
// given and return copies, and must apply the limits MaxPolicies and
// MaxFailureDetails when adding.
type Store interface {
	// Add adds counts to those held for k, creating the entry if there is
	// none.
	Add(ctx context.Context, k Key, counts []PolicyResult) error
	// Load returns what is held for k, an error matching ErrNotFound if
	// nothing is, or one matching ErrCorrupt if it cannot be read back.
	Load(ctx context.Context, k Key) (*Aggregate, error)
	// Keys lists the entries, ordered by day, then domain. An entry that
	// cannot be read back is still listed, so that Load reports it.
	Keys(ctx context.Context) ([]Key, error)
	// SetSendState replaces the send state of k, which must exist (else
	// an error matching ErrNotFound).
	SetSendState(ctx context.Context, k Key, s SendState) error
	// Delete removes k; deleting a missing entry is not an error.
	Delete(ctx context.Context, k Key) error
}

// compareKeys orders keys by day, then domain.
func compareKeys(a, b Key) int {
	if a.Day != b.Day {
		if a.Day.Before(b.Day) {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Domain, b.Domain)
}

// checkKey checks that k names a canonical policy domain and a day.
func checkKey(k Key) error {
	d, err := canonicalDomain(k.Domain)
	if err != nil || d != k.Domain {
		return fmt.Errorf("tlsrpt: store key: %q is not a policy domain in lower-case A-labels: %w", clip(k.Domain), ErrInvalidDomain)
	}
	if k.Day.IsZero() || DayOf(k.Day.Start()) != k.Day {
		return errors.New("tlsrpt: store key: no valid day")
	}
	return nil
}

// MemoryStore is a Store in memory. Its zero value is ready to use; its
// content is lost when the process ends.
type MemoryStore struct {
	mu sync.Mutex
	m  map[Key]*memEntry
}

type memEntry struct {
	acc  *accumulator
	send SendState
}

// Add implements Store.
func (s *MemoryStore) Add(ctx context.Context, k Key, counts []PolicyResult) error {
	if err := checkKey(k); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[Key]*memEntry)
	}
	e := s.m[k]
	if e == nil {
		e = &memEntry{acc: &accumulator{}}
		s.m[k] = e
	}
	e.acc.add(counts)
	return nil
}

// Load implements Store.
func (s *MemoryStore) Load(ctx context.Context, k Key) (*Aggregate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, k)
	}
	return &Aggregate{Key: k, Policies: e.acc.results(), Send: e.send.clone()}, nil
}

// Keys implements Store.
func (s *MemoryStore) Keys(ctx context.Context) ([]Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out, nil
}

// SetSendState implements Store.
func (s *MemoryStore) SetSendState(ctx context.Context, k Key, st SendState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return fmt.Errorf("%w for %s", ErrNotFound, k)
	}
	e.send = st.clone()
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, k Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}
