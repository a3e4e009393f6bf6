package mtasts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testEntry(t *testing.T, domain, id string) *Entry {
	t.Helper()
	p, err := ParsePolicy([]byte("version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmx: *.b.example\r\nmax_age: 3600\r\nx-ext: some value\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &Entry{Domain: domain, ID: id, Policy: p, FetchedAt: time.Date(2025, 3, 1, 12, 0, 0, 123, time.UTC)}
}

// storeContract runs the Store behaviour every implementation must have.
func storeContract(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Load(ctx, "example.com"); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Load of a missing entry: %v", err)
	}
	e := testEntry(t, "example.com", "1")
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Domain != e.Domain || got.ID != e.ID || !got.FetchedAt.Equal(e.FetchedAt) || !reflect.DeepEqual(got.Policy, e.Policy) {
		t.Errorf("Load = %+v %+v, want %+v %+v", got, got.Policy, e, e.Policy)
	}
	// What Load returns is a copy.
	got.Policy.MX[0] = "changed.example"
	again, _ := s.Load(ctx, "example.com")
	if again.Policy.MX[0] != "mx.example.com" {
		t.Error("Load returned a shared policy")
	}
	// Save replaces.
	e2 := testEntry(t, "example.com", "2")
	if err := s.Save(ctx, e2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "example.com"); got.ID != "2" {
		t.Errorf("after replace: %+v", got)
	}
	if err := s.Save(ctx, testEntry(t, "xn--mller-kva.example", "3")); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Domains(ctx)
	if err != nil || !reflect.DeepEqual(sorted(ds), []string{"example.com", "xn--mller-kva.example"}) {
		t.Errorf("Domains = %v, %v", ds, err)
	}
	if err := s.Delete(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "example.com"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Load(ctx, "example.com"); !errors.Is(err, ErrNotCached) {
		t.Errorf("Load after Delete: %v", err)
	}
	if err := s.Save(ctx, &Entry{Domain: "x.example"}); err == nil {
		t.Error("Save of an entry without a policy succeeded")
	}
	// Concurrent use.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				s.Save(ctx, testEntry(t, "race.example", "1"))
				if e, err := s.Load(ctx, "race.example"); err != nil && !errors.Is(err, ErrNotCached) {
					t.Errorf("concurrent Load: %v", err)
				} else if err == nil && e.ID != "1" {
					t.Errorf("concurrent Load: %+v", e)
				}
			}
		}()
	}
	wg.Wait()
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestMemoryStore(t *testing.T) {
	storeContract(t, &MemoryStore{})
}

func TestFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir() != dir {
		t.Errorf("Dir = %q", s.Dir())
	}
	storeContract(t, s)
	// Atomic writes leave no temporary files behind.
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("leftover file %s", de.Name())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, %v", fi.Mode(), err)
	}
	// Names that could leave the directory are refused.
	ctx := context.Background()
	for _, d := range []string{"../x.example", "a/b.example", "Example.com", "example.com.", "", "müller.example"} {
		if _, err := s.Load(ctx, d); err == nil || errors.Is(err, ErrNotCached) {
			t.Errorf("Load(%q) = %v", d, err)
		}
		if err := s.Save(ctx, testEntry(t, d, "1")); err == nil {
			t.Errorf("Save(%q) succeeded", d)
		}
		if err := s.Delete(ctx, d); err == nil {
			t.Errorf("Delete(%q) succeeded", d)
		}
	}
	if _, err := NewFileStore(""); err == nil {
		t.Error("NewFileStore(\"\") succeeded")
	}
}

// A corrupt file is reported as *CorruptError and ignored, never a crash.
func TestFileStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Save(ctx, testEntry(t, "good.example", "1")); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "good.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	cases := map[string]string{
		"empty":         "",
		"garbage":       "\x00\x01garbage",
		"truncated":     string(good[:len(good)/2]),
		"wrong domain":  replace(`"domain": "good.example"`, `"domain": "other.example"`),
		"bad domain":    replace(`"domain": "good.example"`, `"domain": "../etc"`),
		"bad id":        replace(`"id": "1"`, `"id": "a-b"`),
		"no time":       replace(`"fetched_at": "2025-03-01T12:00:00.000000123Z"`, `"fetched_at": "0001-01-01T00:00:00Z"`),
		"bad policy":    replace(`mode: enforce`, `mode: always`),
		"format":        replace(`"format": 1`, `"format": 2`),
		"unknown field": replace(`"format": 1`, `"format": 1, "extra": true`),
		"trailing data": string(good) + "{}",
		"too large":     string(good) + strings.Repeat(" ", maxEntryFile),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			if content == string(good) {
				t.Fatal("replacement did not apply")
			}
			if err := os.WriteFile(filepath.Join(dir, "good.example.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load(ctx, "good.example")
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %v, want a *CorruptError", err)
			}
			if !strings.Contains(err.Error(), "good.example.json") {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}
}

// The file store survives a restart: a new Client on the same directory
// applies the cached policy without fetching it; a corrupt file is logged
// and ignored.
func TestFileStoreRestart(t *testing.T) {
	dir := t.TempDir()
	r := newFakeResolver()
	ps := newPolicyServer(t)
	r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	ps.servePolicy("mta-sts.example.com", enforceMX1)

	s1, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	c1 := ps.client(r)
	c1.Store = s1
	res, err := c1.Get(context.Background(), "example.com")
	if err != nil || res.Source != SourceFetched {
		t.Fatalf("first Get: %+v, %v", res, err)
	}

	s2, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	c2 := ps.client(r)
	c2.Store = s2
	res, err = c2.Get(context.Background(), "example.com")
	if err != nil || res.Source != SourceCached || !res.Policy.Match("mx1.example.com") {
		t.Fatalf("Get after restart: %+v, %v", res, err)
	}
	if !reflect.DeepEqual(res.PolicyStrings(), []string{"version: STSv1", "mode: enforce", "mx: mx1.example.com", "max_age: 86400"}) {
		t.Errorf("PolicyStrings after restart: %q", res.PolicyStrings())
	}
	if n := ps.count("mta-sts.example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}

	// Corrupt the file: the next Get logs it, fetches and rewrites it.
	if err := os.WriteFile(filepath.Join(dir, "example.com.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	c2.Logger = logs.logger()
	res, err = c2.Get(context.Background(), "example.com")
	if err != nil || res.Source != SourceFetched {
		t.Fatalf("Get with a corrupt cache: %+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), "corrupt") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("corrupt cache not reported: %s", logs)
	}
	if _, err := s2.Load(context.Background(), "example.com"); err != nil {
		t.Errorf("cache not rewritten: %v", err)
	}
}

// Domains skips files that are not cache entries.
func TestFileStoreDomainsSkips(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewFileStore(dir)
	for _, name := range []string{".tmp-example.com-123", "README", "UPPER.example.json", "example.com.json.bak"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600)
	}
	os.Mkdir(filepath.Join(dir, "dir.example.json"), 0o700)
	s.Save(context.Background(), testEntry(t, "example.com", "1"))
	ds, err := s.Domains(context.Background())
	if err != nil || !reflect.DeepEqual(ds, []string{"example.com"}) {
		t.Errorf("Domains = %v, %v", ds, err)
	}
}

func TestEntryExpiry(t *testing.T) {
	e := testEntry(t, "example.com", "1")
	if !e.Expires().Equal(e.FetchedAt.Add(time.Hour)) {
		t.Errorf("Expires = %v", e.Expires())
	}
	if !e.Valid(e.FetchedAt.Add(time.Hour-time.Nanosecond)) || e.Valid(e.FetchedAt.Add(time.Hour)) {
		t.Error("Valid boundary")
	}
	var nilEntry *Entry
	if nilEntry.Valid(time.Now()) || !nilEntry.Expires().IsZero() {
		t.Error("nil entry")
	}
}
