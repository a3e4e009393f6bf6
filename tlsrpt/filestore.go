package tlsrpt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// FileStore is a Store in a directory, one JSON file per policy domain and
// day ("2024-09-03_example.com.json"), so that counts and send states
// survive restarts.
//
// Files are replaced atomically (written to a temporary file, synced,
// renamed), so a crash leaves either the old or the new content. All
// FileStores of one process that use the same directory share a lock, so
// concurrent writers in one process are safe; several processes must not
// share a directory. Reading is bounded (MaxFileSize) and checks everything
// it reads: a file that cannot be read back is reported as a *CorruptError.
// When Add meets one, it renames it to "<name>.corrupt", out of the way,
// and reports it; the next Add starts afresh.
type FileStore struct {
	dir string
	mu  *sync.Mutex
}

// MaxFileSize bounds a FileStore file. The limits MaxPolicies and
// MaxFailureDetails keep real files far smaller.
const MaxFileSize = 16 << 20

// dirLocks holds one lock per directory (absolute path) for all the
// FileStores of the process.
var dirLocks sync.Map

// NewFileStore returns a FileStore in dir, creating it (mode 0700) if it
// does not exist.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("tlsrpt: NewFileStore: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsrpt: creating the store directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: NewFileStore: %w", err)
	}
	mu, _ := dirLocks.LoadOrStore(abs, new(sync.Mutex))
	return &FileStore{dir: abs, mu: mu.(*sync.Mutex)}, nil
}

// Dir returns the directory of the store.
func (s *FileStore) Dir() string { return s.dir }

// fileFormat is the version of the file format.
const fileFormat = 1

type storeFile struct {
	Format   int            `json:"format"`
	Domain   string         `json:"domain"`
	Day      Day            `json:"day"`
	Policies []PolicyResult `json:"policies"`
	Send     SendState      `json:"send"`
}

// path returns the file of k.
func (s *FileStore) path(k Key) (string, error) {
	if err := checkKey(k); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, k.Day.String()+"_"+k.Domain+".json"), nil
}

// keyOf returns the key a file name stands for.
func keyOf(name string) (Key, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return Key{}, false
	}
	day, domain, ok := strings.Cut(base, "_")
	if !ok {
		return Key{}, false
	}
	d, err := ParseDay(day)
	if err != nil || d.String() != day {
		return Key{}, false
	}
	k := Key{Domain: domain, Day: d}
	if checkKey(k) != nil {
		return Key{}, false
	}
	return k, true
}

// read returns the content of k's file, nil if there is none.
func (s *FileStore) read(k Key) (*storeFile, error) {
	p, err := s.path(k)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the store: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the store: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("larger than %d octets", MaxFileSize)}
	}
	sf, err := decodeStoreFile(data, k)
	if err != nil {
		return nil, &CorruptError{Path: p, Err: err}
	}
	return sf, nil
}

// decodeStoreFile parses a store file and checks everything in it.
func decodeStoreFile(data []byte, k Key) (*storeFile, error) {
	var sf storeFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	if sf.Format != fileFormat {
		return nil, fmt.Errorf("unknown format %d", sf.Format)
	}
	if sf.Domain != k.Domain || sf.Day != k.Day {
		return nil, fmt.Errorf("file holds %s %s, its name says %s", clip(sf.Domain), sf.Day, k)
	}
	if len(sf.Policies) > MaxPolicies {
		return nil, fmt.Errorf("%d policies, more than %d", len(sf.Policies), MaxPolicies)
	}
	details := 0
	for i := range sf.Policies {
		if err := checkStoredPolicy(&sf.Policies[i], k.Domain); err != nil {
			return nil, fmt.Errorf("policy %d: %w", i+1, err)
		}
		details += len(sf.Policies[i].FailureDetails)
	}
	if details > MaxFailureDetails {
		return nil, fmt.Errorf("%d failure details, more than %d", details, MaxFailureDetails)
	}
	if len(sf.Send.Deliveries) > maxRUAs || (sf.Send.ReportID != "" && !validReportID(sf.Send.ReportID)) {
		return nil, errors.New("invalid send state")
	}
	return &sf, nil
}

// checkStoredPolicy checks what the Recorder would have produced.
func checkStoredPolicy(p *PolicyResult, domain string) error {
	if p.Policy.Domain != domain {
		return fmt.Errorf("policy domain %q", clip(p.Policy.Domain))
	}
	if !knownPolicyType(p.Policy.Type) {
		return fmt.Errorf("policy type %q", clip(p.Policy.Type))
	}
	if err := checkPolicyStrings(p.Policy.Strings, p.Policy.MXHosts); err != nil {
		return err
	}
	if p.Summary.TotalSuccessfulSessionCount < 0 || p.Summary.TotalFailureSessionCount < 0 {
		return errors.New("negative count")
	}
	for _, d := range p.FailureDetails {
		if !rfc8460.Known(d.ResultType) {
			return fmt.Errorf("result type %q", clip(d.ResultType))
		}
		if d.FailedSessionCount < 0 {
			return errors.New("negative count")
		}
		for _, f := range []string{d.SendingMTAIP, d.ReceivingMXHostname, d.ReceivingMXHelo, d.ReceivingIP, d.FailureReasonCode} {
			if len(f) > maxFieldLen {
				return errors.New("field too long")
			}
		}
		if len(d.AdditionalInformation) > maxInfoLen {
			return errors.New("field too long")
		}
	}
	return nil
}

// write replaces k's file with sf, atomically.
func (s *FileStore) write(k Key, sf *storeFile) error {
	p, err := s.path(k)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(sf, "", "\t")
	if err != nil {
		return fmt.Errorf("tlsrpt: encoding the store entry for %s: %w", k, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("tlsrpt: saving the store entry for %s: %w", k, err)
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
		return fmt.Errorf("tlsrpt: saving the store entry for %s: %w", k, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("tlsrpt: saving the store entry for %s: %w", k, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tlsrpt: saving the store entry for %s: %w", k, err)
	}
	if err := os.Rename(tmpName, p); err != nil {
		return fmt.Errorf("tlsrpt: saving the store entry for %s: %w", k, err)
	}
	ok = true
	// Make the rename itself durable where the platform allows it.
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Add implements Store.
func (s *FileStore) Add(ctx context.Context, k Key, counts []PolicyResult) error {
	if err := checkKey(k); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sf, err := s.read(k)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			if rerr := os.Rename(ce.Path, ce.Path+".corrupt"); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	}
	if sf == nil {
		sf = &storeFile{Format: fileFormat, Domain: k.Domain, Day: k.Day}
	}
	acc := newAccumulator(sf.Policies)
	acc.add(counts)
	sf.Policies = acc.results()
	return s.write(k, sf)
}

// Load implements Store.
func (s *FileStore) Load(ctx context.Context, k Key) (*Aggregate, error) {
	if err := checkKey(k); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sf, err := s.read(k)
	if err != nil {
		return nil, err
	}
	if sf == nil {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, k)
	}
	return &Aggregate{Key: k, Policies: sf.Policies, Send: sf.Send}, nil
}

// Keys implements Store. Files not named like a store entry (temporary
// files, renamed corrupt files) are skipped.
func (s *FileStore) Keys(ctx context.Context) ([]Key, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: listing the store: %w", err)
	}
	var out []Key
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		if k, ok := keyOf(de.Name()); ok {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out, nil
}

// SetSendState implements Store.
func (s *FileStore) SetSendState(ctx context.Context, k Key, st SendState) error {
	if err := checkKey(k); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sf, err := s.read(k)
	if err != nil {
		return err
	}
	if sf == nil {
		return fmt.Errorf("%w for %s", ErrNotFound, k)
	}
	sf.Send = st.clone()
	return s.write(k, sf)
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, k Key) error {
	p, err := s.path(k)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tlsrpt: deleting the store entry for %s: %w", k, err)
	}
	return nil
}
