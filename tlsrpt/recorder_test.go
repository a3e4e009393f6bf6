package tlsrpt

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 9, 3, 12, 0, 0, 0, time.UTC)

func stsResult() Result {
	return Result{Time: t0, Policy: stsPolicy}
}

func loadOne(t *testing.T, s Store, k Key) *Aggregate {
	t.Helper()
	agg, err := s.Load(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return agg
}

// STD-86: one outcome per session attempt, counted under its policy: a
// success in the summary, a failure in the summary and in a failure detail
// that carries each field of the Result.
func TestRecorderFields(t *testing.T) {
	full := Result{
		Time:                t0,
		Policy:              tlsaPolicy,
		ResultType:          ResultTLSAInvalid,
		SendingIP:           netip.MustParseAddr("2001:db8::25"),
		ReceivingMXHostname: "mx1.example.com",
		ReceivingMXHelo:     "mx1.example.com ESMTP",
		ReceivingIP:         netip.MustParseAddr("::ffff:198.51.100.7"),
		FailureReasonCode:   "no TLSA record matched",
		AdditionalInfo:      "https://sender.example/tlsrpt/1",
	}
	tests := []struct {
		name   string
		res    Result
		policy Policy
		sum    Summary
		detail *FailureDetail
	}{
		{"success", Result{Time: t0, Policy: stsPolicy}, stsPolicy, Summary{1, 0}, nil},
		{"no policy found", Result{Time: t0, Policy: Policy{Type: PolicyNone, Domain: "example.com"}},
			Policy{Type: PolicyNone, Domain: "example.com"}, Summary{1, 0}, nil},
		{"every field", full, tlsaPolicy, Summary{0, 1}, &FailureDetail{
			ResultType: ResultTLSAInvalid, SendingMTAIP: "2001:db8::25", ReceivingMXHostname: "mx1.example.com",
			ReceivingMXHelo: "mx1.example.com ESMTP", ReceivingIP: "198.51.100.7", FailedSessionCount: 1,
			AdditionalInformation: "https://sender.example/tlsrpt/1", FailureReasonCode: "no TLSA record matched"}},
		{"starttls not supported, nothing else known", Result{Time: t0, Policy: Policy{Type: PolicyNone, Domain: "example.com"}, ResultType: ResultSTARTTLSNotSupported},
			Policy{Type: PolicyNone, Domain: "example.com"}, Summary{0, 1}, &FailureDetail{ResultType: ResultSTARTTLSNotSupported, FailedSessionCount: 1}},
		{"domain made canonical", Result{Time: t0, Policy: Policy{Type: PolicySTS, Domain: "Bücher.Example."}},
			Policy{Type: PolicySTS, Domain: "xn--bcher-kva.example"}, Summary{1, 0}, nil},
		{"long text cut", Result{Time: t0, Policy: stsPolicy, ResultType: ResultValidationFailure,
			ReceivingMXHelo: strings.Repeat("é", 200), AdditionalInfo: strings.Repeat("x", 2000), FailureReasonCode: "bad\xffutf8"},
			stsPolicy, Summary{0, 1}, &FailureDetail{ResultType: ResultValidationFailure, FailedSessionCount: 1,
				ReceivingMXHelo: strings.Repeat("é", 127), AdditionalInformation: strings.Repeat("x", maxInfoLen), FailureReasonCode: "bad?utf8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &MemoryStore{}
			r := NewRecorder(s)
			if err := r.Record(context.Background(), tt.res); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			agg := loadOne(t, s, Key{Domain: tt.policy.Domain, Day: day("2024-09-03")})
			want := PolicyResult{Policy: tt.policy, Summary: tt.sum}
			if tt.detail != nil {
				want.FailureDetails = []FailureDetail{*tt.detail}
			}
			if len(agg.Policies) != 1 || !reflect.DeepEqual(agg.Policies[0], want) {
				t.Errorf("counted %+v,\nwant %+v", agg.Policies, want)
			}
		})
	}
}

// Sessions are counted, not stored: many sessions with the same outcome make
// one detail; the day is the UTC day.
func TestRecorderAggregates(t *testing.T) {
	ctx := context.Background()
	s := &MemoryStore{}
	r := NewRecorder(s)
	fail := stsResult()
	fail.ResultType = ResultCertificateExpired
	fail.ReceivingMXHostname = "mx1.example.com"
	for i := 0; i < 1000; i++ {
		if err := r.Record(ctx, stsResult()); err != nil {
			t.Fatal(err)
		}
		if err := r.Record(ctx, fail); err != nil {
			t.Fatal(err)
		}
	}
	// 23:30 at UTC-2 is 01:30 UTC the next day.
	late := stsResult()
	late.Time = time.Date(2024, 9, 3, 23, 30, 0, 0, time.FixedZone("-02", -2*3600))
	if err := r.Record(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	agg := loadOne(t, s, Key{"example.com", day("2024-09-03")})
	p := agg.Policies[0]
	if p.Summary != (Summary{1000, 1000}) || len(p.FailureDetails) != 1 || p.FailureDetails[0].FailedSessionCount != 1000 {
		t.Errorf("counted %+v", p)
	}
	next := loadOne(t, s, Key{"example.com", day("2024-09-04")})
	if next.Policies[0].Summary != (Summary{1, 0}) {
		t.Errorf("next UTC day counted %+v", next.Policies)
	}
	// A second Flush has nothing to add.
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if again := loadOne(t, s, Key{"example.com", day("2024-09-03")}); !reflect.DeepEqual(again.Policies, agg.Policies) {
		t.Errorf("second Flush changed the counts: %+v", again.Policies)
	}
}

// A result without a time is counted on the Recorder's clock.
func TestRecorderClock(t *testing.T) {
	s := &MemoryStore{}
	r := &Recorder{Store: s, Clock: newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}
	res := stsResult()
	res.Time = time.Time{}
	if err := r.Record(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	r.Flush(context.Background())
	loadOne(t, s, Key{"example.com", day("2030-01-02")})
}

func TestRecorderRejectsInvalidResults(t *testing.T) {
	for name, res := range map[string]Result{
		"no domain":           {Time: t0, Policy: Policy{Type: PolicySTS}},
		"IP literal domain":   {Time: t0, Policy: Policy{Type: PolicySTS, Domain: "192.0.2.1"}},
		"unknown policy type": {Time: t0, Policy: Policy{Type: "dane", Domain: "example.com"}},
		"empty policy type":   {Time: t0, Policy: Policy{Domain: "example.com"}},
		"unknown result type": {Time: t0, Policy: stsPolicy, ResultType: "timeout"},
		"result type in caps": {Time: t0, Policy: stsPolicy, ResultType: "Certificate-Expired"},
	} {
		s := &MemoryStore{}
		r := NewRecorder(s)
		if err := r.Record(context.Background(), res); !errors.Is(err, ErrInvalidResult) {
			t.Errorf("%s: Record = %v, want ErrInvalidResult", name, err)
		}
		r.Flush(context.Background())
		if keys, _ := s.Keys(context.Background()); len(keys) != 0 {
			t.Errorf("%s: counted anyway: %v", name, keys)
		}
	}
}

// Results of report deliveries are never counted (RFC 8460 §5.3; no loops).
func TestRecorderDropsReportDeliveries(t *testing.T) {
	ctx := context.Background()
	s := &MemoryStore{}
	r := NewRecorder(s)
	rctx := WithReportDelivery(ctx)
	if !IsReportDelivery(rctx) || IsReportDelivery(ctx) {
		t.Fatal("IsReportDelivery does not see the mark")
	}
	derived, cancel := context.WithTimeout(rctx, time.Hour)
	defer cancel()
	fail := stsResult()
	fail.ResultType = ResultCertificateNotTrusted
	for _, c := range []context.Context{rctx, derived} {
		if err := r.Record(c, fail); err != nil {
			t.Fatal(err)
		}
	}
	r.Flush(ctx)
	if keys, _ := s.Keys(ctx); len(keys) != 0 {
		t.Errorf("report deliveries were counted: %v", keys)
	}
}

// failingStore fails Add while fail is set.
type failingStore struct {
	MemoryStore
	mu   sync.Mutex
	fail bool
}

func (s *failingStore) Add(ctx context.Context, k Key, c []PolicyResult) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return s.MemoryStore.Add(ctx, k, c)
}

// Counts that could not be written are kept for the next Flush, together
// with those recorded meanwhile.
func TestRecorderFlushFailureKeepsCounts(t *testing.T) {
	ctx := context.Background()
	s := &failingStore{fail: true}
	r := NewRecorder(s)
	r.Record(ctx, stsResult())
	r.Record(ctx, stsResult())
	if err := r.Flush(ctx); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush = %v, want the store's error", err)
	}
	r.Record(ctx, stsResult())
	s.mu.Lock()
	s.fail = false
	s.mu.Unlock()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := loadOne(t, s, Key{"example.com", day("2024-09-03")}).Policies[0].Summary.TotalSuccessfulSessionCount; n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
	if err := (&Recorder{}).Flush(ctx); err == nil {
		t.Error("Flush without a Store succeeded")
	}
}

// Record and Flush from many goroutines lose nothing (run with -race).
func TestRecorderConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecorder(s)
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res := stsResult()
				if i%2 == 1 {
					res.ResultType = ResultSTARTTLSNotSupported
				}
				if err := r.Record(ctx, res); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					if err := r.Flush(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := loadOne(t, s, Key{"example.com", day("2024-09-03")}).Policies[0]
	if want := (Summary{goroutines * each / 2, goroutines * each / 2}); p.Summary != want {
		t.Errorf("summary %+v, want %+v", p.Summary, want)
	}
}
