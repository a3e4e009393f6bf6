package mtasts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// Entry is a cached policy: what was fetched for a policy domain, under
// which TXT id, and when.
type Entry struct {
	// Domain is the policy domain in A-labels.
	Domain string
	// ID is the TXT record id the policy was fetched under.
	ID string
	// Policy is the policy; its Lines are kept so that the cached policy
	// can be reported and stored as served.
	Policy *Policy
	// FetchedAt is when the policy was last fetched successfully.
	FetchedAt time.Time
}

// Expires returns when the cached policy stops being valid: FetchedAt plus
// the policy's max_age (RFC 8461 §3.2, §5.1).
func (e *Entry) Expires() time.Time {
	if e == nil || e.Policy == nil {
		return time.Time{}
	}
	return e.FetchedAt.Add(e.Policy.MaxAge)
}

// Valid reports whether the entry may still be applied at now.
func (e *Entry) Valid(now time.Time) bool {
	return e != nil && e.Policy != nil && now.Before(e.Expires())
}

func (e *Entry) clone() *Entry {
	if e == nil {
		return nil
	}
	c := *e
	c.Policy = e.Policy.clone()
	return &c
}

// Store keeps cached policies. Implementations must be safe for concurrent
// use; the Client copies what it loads and saves, so a Store may keep the
// pointers it is given.
type Store interface {
	// Load returns the entry for domain (A-labels), an error matching
	// ErrNotCached if there is none, or an error matching ErrCorrupt if it
	// cannot be read back (the Client then ignores it).
	Load(ctx context.Context, domain string) (*Entry, error)
	// Save stores e under e.Domain, replacing any earlier entry.
	Save(ctx context.Context, e *Entry) error
	// Delete removes the entry for domain; deleting a missing entry is
	// not an error.
	Delete(ctx context.Context, domain string) error
	// Domains lists the domains with an entry, for the refresher.
	Domains(ctx context.Context) ([]string, error)
}

// MemoryStore is a Store in memory. Its zero value is ready to use; its
// content is lost when the process ends.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]*Entry
}

// Load implements Store.
func (s *MemoryStore) Load(ctx context.Context, domain string) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[domain]
	if !ok {
		return nil, fmt.Errorf("%w for %s", ErrNotCached, domain)
	}
	return e.clone(), nil
}

// Save implements Store.
func (s *MemoryStore) Save(ctx context.Context, e *Entry) error {
	if e == nil || e.Policy == nil || e.Domain == "" {
		return errors.New("mtasts: MemoryStore.Save: entry needs a domain and a policy")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*Entry)
	}
	s.m[e.Domain] = e.clone()
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, domain)
	return nil
}

// Domains implements Store.
func (s *MemoryStore) Domains(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for d := range s.m {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// FileStore is a Store in a directory, one JSON file per policy domain
// (<domain>.json), so that cached policies survive restarts. Files are
// replaced atomically (written to a temporary file, synced, renamed), so a
// crash leaves either the old or the new entry. A file that cannot be read
// back is reported as a *CorruptError and otherwise ignored; the policy
// text in it is parsed again on load, so a damaged or edited file can never
// yield a policy that ParsePolicy would not accept.
type FileStore struct {
	dir string
}

// NewFileStore returns a FileStore in dir, creating it (mode 0700) if it
// does not exist.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("mtasts: NewFileStore: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mtasts: creating the policy cache directory: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

// Dir returns the directory of the store.
func (s *FileStore) Dir() string { return s.dir }

// maxEntryFile bounds a cache file: a 64 KiB policy, JSON-escaped.
const maxEntryFile = 8 * MaxPolicySize

// entryFormat is the version of the file format.
const entryFormat = 1

type entryFile struct {
	Format    int       `json:"format"`
	Domain    string    `json:"domain"`
	ID        string    `json:"id"`
	FetchedAt time.Time `json:"fetched_at"`
	Policy    string    `json:"policy"`
}

// path returns the file name for domain, refusing anything that is not a
// canonical A-label name (and so could name another file).
func (s *FileStore) path(domain string) (string, error) {
	a, err := idn.ToASCII(domain)
	if err != nil || a != domain {
		return "", fmt.Errorf("mtasts: FileStore: %q is not a domain in canonical A-label form", domain)
	}
	return filepath.Join(s.dir, domain+".json"), nil
}

// Load implements Store.
func (s *FileStore) Load(ctx context.Context, domain string) (*Entry, error) {
	p, err := s.path(domain)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w for %s", ErrNotCached, domain)
	}
	if err != nil {
		return nil, fmt.Errorf("mtasts: reading cached policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEntryFile+1))
	if err != nil {
		return nil, fmt.Errorf("mtasts: reading cached policy: %w", err)
	}
	if len(data) > maxEntryFile {
		return nil, &CorruptError{Path: p, Err: errors.New("file too large")}
	}
	e, err := decodeEntry(data)
	if err != nil {
		return nil, &CorruptError{Path: p, Err: err}
	}
	if e.Domain != domain {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("file holds domain %q", e.Domain)}
	}
	return e, nil
}

// decodeEntry parses a cache file and checks everything in it.
func decodeEntry(data []byte) (*Entry, error) {
	var ef entryFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ef); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	if ef.Format != entryFormat {
		return nil, fmt.Errorf("unknown format %d", ef.Format)
	}
	if a, err := idn.ToASCII(ef.Domain); err != nil || a != ef.Domain {
		return nil, fmt.Errorf("invalid domain %q", ef.Domain)
	}
	if !validID(ef.ID) {
		return nil, fmt.Errorf("invalid id %q", ef.ID)
	}
	if ef.FetchedAt.IsZero() {
		return nil, errors.New("no fetch time")
	}
	p, err := ParsePolicy([]byte(ef.Policy))
	if err != nil {
		return nil, err
	}
	return &Entry{Domain: ef.Domain, ID: ef.ID, Policy: p, FetchedAt: ef.FetchedAt}, nil
}

func encodeEntry(e *Entry) ([]byte, error) {
	return json.MarshalIndent(entryFile{
		Format:    entryFormat,
		Domain:    e.Domain,
		ID:        e.ID,
		FetchedAt: e.FetchedAt.UTC(),
		Policy:    e.Policy.String(),
	}, "", "\t")
}

// Save implements Store.
func (s *FileStore) Save(ctx context.Context, e *Entry) error {
	if e == nil || e.Policy == nil {
		return errors.New("mtasts: FileStore.Save: entry needs a policy")
	}
	p, err := s.path(e.Domain)
	if err != nil {
		return err
	}
	data, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("mtasts: encoding cached policy for %s: %w", e.Domain, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-"+e.Domain+"-*")
	if err != nil {
		return fmt.Errorf("mtasts: saving cached policy for %s: %w", e.Domain, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("mtasts: saving cached policy for %s: %w", e.Domain, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("mtasts: saving cached policy for %s: %w", e.Domain, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mtasts: saving cached policy for %s: %w", e.Domain, err)
	}
	if err := os.Rename(tmpName, p); err != nil {
		return fmt.Errorf("mtasts: saving cached policy for %s: %w", e.Domain, err)
	}
	ok = true
	// Make the rename itself durable where the platform allows it.
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, domain string) error {
	p, err := s.path(domain)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mtasts: deleting cached policy for %s: %w", domain, err)
	}
	return nil
}

// Domains implements Store. Files that are not named <A-label domain>.json
// (such as leftover temporary files) are skipped.
func (s *FileStore) Domains(ctx context.Context) ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("mtasts: listing cached policies: %w", err)
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		d := strings.TrimSuffix(name, ".json")
		if a, err := idn.ToASCII(d); err != nil || a != d {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}
