package tlsrpt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// What one FileStore wrote, another on the same directory reads: counts
// and send states survive a restart.
func TestFileStoreSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := Key{Domain: "example.com", Day: day("2024-09-03")}
	s1, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Add(ctx, k, []PolicyResult{success(stsPolicy, 3), failure(stsPolicy, expired)}); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetSendState(ctx, k, SendState{ReportID: "r1", Deliveries: []Delivery{{URI: "https://c.example/r", Attempts: 2, LastError: "HTTP 500"}}}); err != nil {
		t.Fatal(err)
	}
	s2, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := s2.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	want := []PolicyResult{{Policy: stsPolicy, Summary: Summary{3, 1}, FailureDetails: []FailureDetail{expired}}}
	if !reflect.DeepEqual(agg.Policies, want) || agg.Send.ReportID != "r1" || agg.Send.Deliveries[0].LastError != "HTTP 500" {
		t.Errorf("after restart: %+v", agg)
	}
	fi, err := os.Stat(filepath.Join(dir, "2024-09-03_example.com.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("store file mode %v is readable by others", fi.Mode())
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("directory holds %d entries, want only the store file (no temporary files left)", len(des))
	}
}

// Two FileStores on one directory in one process share a lock: no count is
// lost between them (run with -race).
func TestFileStoreTwoInstancesOneDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := Key{Domain: "example.com", Day: day("2024-09-03")}
	var stores [2]*FileStore
	for i := range stores {
		s, err := NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := s.Add(ctx, k, []PolicyResult{success(stsPolicy, 1)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	agg, err := stores[0].Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if n := agg.Policies[0].Summary.TotalSuccessfulSessionCount; n != 20 {
		t.Errorf("count = %d, want 20", n)
	}
}

// What is on disk is read defensively: a damaged or edited file is
// reported as corrupt, never trusted and never a crash.
func TestFileStoreCorruptFiles(t *testing.T) {
	const name = "2024-09-03_example.com.json"
	k := Key{Domain: "example.com", Day: day("2024-09-03")}
	good := `{"format":1,"domain":"example.com","day":"2024-09-03","policies":[` +
		`{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}],"send":{}}`
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"not JSON", "garbage"},
		{"truncated", good[:len(good)/2]},
		{"data after the object", good + "{}"},
		{"unknown field", strings.Replace(good, `"send":{}`, `"send":{},"extra":1`, 1)},
		{"unknown format", strings.Replace(good, `"format":1`, `"format":2`, 1)},
		{"other domain", strings.Replace(good, `"domain":"example.com"`, `"domain":"example.net"`, 1)},
		{"other day", strings.Replace(good, `"day":"2024-09-03"`, `"day":"2024-09-04"`, 1)},
		{"policy of another domain", strings.Replace(good, `"policy-domain":"example.com"`, `"policy-domain":"example.net"`, 1)},
		{"unknown policy type", strings.Replace(good, `"policy-type":"sts"`, `"policy-type":"other"`, 1)},
		{"negative count", strings.Replace(good, `"total-successful-session-count":1`, `"total-successful-session-count":-1`, 1)},
		{"unknown result type", strings.Replace(good, `"total-failure-session-count":0}`,
			`"total-failure-session-count":1},"failure-details":[{"result-type":"bad","failed-session-count":1}]`, 1)},
		{"bad report id", strings.Replace(good, `"send":{}`, `"send":{"report_id":"../x"}`, 1)},
		{"too large", good + strings.Repeat(" ", MaxFileSize)},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var ce *CorruptError
			if _, err := s.Load(ctx, k); !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Path != p {
				t.Fatalf("Load: %v, want a *CorruptError for %s", err, p)
			}
			if err := s.SetSendState(ctx, k, SendState{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("SetSendState: %v, want ErrCorrupt", err)
			}
			if keys, _ := s.Keys(ctx); len(keys) != 1 {
				t.Errorf("Keys = %v: a corrupt entry must stay listed until it is dealt with", keys)
			}
			// Add moves the corrupt file away and reports it; the next Add
			// starts afresh.
			if err := s.Add(ctx, k, []PolicyResult{success(stsPolicy, 1)}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Add over a corrupt file: %v, want ErrCorrupt", err)
			}
			if _, err := os.Stat(p + ".corrupt"); err != nil {
				t.Errorf("corrupt file not kept aside: %v", err)
			}
			if err := s.Add(ctx, k, []PolicyResult{success(stsPolicy, 2)}); err != nil {
				t.Fatal(err)
			}
			agg, err := s.Load(ctx, k)
			if err != nil || agg.Policies[0].Summary.TotalSuccessfulSessionCount != 2 {
				t.Errorf("after recovery: %+v, %v", agg, err)
			}
		})
	}
	// The good file itself loads, so each case above fails for its own
	// reason.
	dir := t.TempDir()
	s, _ := NewFileStore(dir)
	os.WriteFile(filepath.Join(dir, name), []byte(good), 0o600)
	if _, err := s.Load(ctx, k); err != nil {
		t.Fatalf("the good file does not load: %v", err)
	}
}

// Keys lists only files named like entries.
func TestFileStoreKeysSkipsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{
		".tmp-2024-09-03_example.com.json-123",
		"2024-09-03_example.com.json.corrupt",
		"2024-09-03_Example.com.json",
		"2024-9-3_example.com.json",
		"2024-09-03.json",
		"notes.txt",
		"2024-09-03_example.net.json",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "2024-09-04_example.com.json"), 0o700)
	keys, err := s.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []Key{{"example.net", day("2024-09-03")}}; !reflect.DeepEqual(keys, want) {
		t.Errorf("Keys = %v, want %v", keys, want)
	}
}

func TestNewFileStore(t *testing.T) {
	if _, err := NewFileStore(""); err == nil {
		t.Error("NewFileStore(\"\") succeeded")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || s.Dir() != dir {
		t.Errorf("directory not created: %v, %v", fi, err)
	}
}
