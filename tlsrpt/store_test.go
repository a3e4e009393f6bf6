package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// Both stores pass the same behaviour tests.
var storeKinds = []struct {
	name string
	new  func(t *testing.T) Store
}{
	{"MemoryStore", func(t *testing.T) Store { return &MemoryStore{} }},
	{"FileStore", func(t *testing.T) Store {
		s, err := NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

func success(p Policy, n int64) PolicyResult {
	return PolicyResult{Policy: p, Summary: Summary{TotalSuccessfulSessionCount: n}}
}

func failure(p Policy, d FailureDetail) PolicyResult {
	return PolicyResult{Policy: p, Summary: Summary{TotalFailureSessionCount: d.FailedSessionCount}, FailureDetails: []FailureDetail{d}}
}

var (
	stsPolicy = Policy{Type: PolicySTS, Domain: "example.com",
		Strings: []string{"version: STSv1", "mode: enforce", "mx: *.example.com", "max_age: 86400"},
		MXHosts: []string{"*.example.com"}}
	tlsaPolicy = Policy{Type: PolicyTLSA, Domain: "example.com",
		Strings: []string{"3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		MXHosts: []string{"mx1.example.com"}}
	expired = FailureDetail{ResultType: ResultCertificateExpired, SendingMTAIP: "192.0.2.10",
		ReceivingMXHostname: "mx1.example.com", ReceivingMXHelo: "mx1", ReceivingIP: "198.51.100.1", FailedSessionCount: 1}
)

// The aggregation rules: counts per policy, failure details per distinct
// detail, never per session.
func TestStoreAggregates(t *testing.T) {
	k := Key{Domain: "example.com", Day: day("2024-09-03")}
	other := expired
	other.ReceivingIP = "198.51.100.2"
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			s := kind.new(t)
			if _, err := s.Load(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load of an empty store: %v, want ErrNotFound", err)
			}
			if err := s.SetSendState(ctx, k, SendState{}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("SetSendState of a missing key: %v, want ErrNotFound", err)
			}
			for i := 0; i < 3; i++ {
				if err := s.Add(ctx, k, []PolicyResult{success(stsPolicy, 2), failure(stsPolicy, expired)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Add(ctx, k, []PolicyResult{failure(stsPolicy, other), success(tlsaPolicy, 5)}); err != nil {
				t.Fatal(err)
			}
			agg, err := s.Load(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			want := []PolicyResult{
				{Policy: stsPolicy, Summary: Summary{6, 4}, FailureDetails: []FailureDetail{withCount(expired, 3), other}},
				{Policy: tlsaPolicy, Summary: Summary{5, 0}},
			}
			if !reflect.DeepEqual(agg.Policies, want) {
				t.Errorf("Load = %+v,\nwant %+v", agg.Policies, want)
			}
			if agg.Key != k {
				t.Errorf("Load key = %v", agg.Key)
			}
			// Copies: changing what was loaded does not change the store.
			agg.Policies[0].Summary.TotalSuccessfulSessionCount = 99
			agg.Policies[0].Policy.Strings[0] = "changed"
			again, _ := s.Load(ctx, k)
			if !reflect.DeepEqual(again.Policies, want) {
				t.Errorf("the store shares memory with what Load returned")
			}

			st := SendState{ReportID: "abc123", Attempts: 1, FirstAttempt: time.Date(2024, 9, 4, 1, 0, 0, 0, time.UTC),
				Deliveries: []Delivery{{URI: "mailto:a@example.com", Sent: time.Date(2024, 9, 4, 1, 0, 1, 0, time.UTC), Attempts: 1}}}
			if err := s.SetSendState(ctx, k, st); err != nil {
				t.Fatal(err)
			}
			st.Deliveries[0].URI = "changed"
			if err := s.Add(ctx, k, []PolicyResult{success(tlsaPolicy, 1)}); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Load(ctx, k)
			if got.Send.ReportID != "abc123" || got.Send.Deliveries[0].URI != "mailto:a@example.com" || !got.Send.FirstAttempt.Equal(st.FirstAttempt) {
				t.Errorf("send state after Add = %+v", got.Send)
			}
			if got.Policies[1].Summary.TotalSuccessfulSessionCount != 6 {
				t.Errorf("counts after SetSendState and Add = %+v", got.Policies)
			}

			if err := s.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, k); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			if _, err := s.Load(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load after Delete: %v", err)
			}
		})
	}
}

func withCount(d FailureDetail, n int64) FailureDetail {
	d.FailedSessionCount = n
	return d
}

func TestStoreKeys(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			s := kind.new(t)
			keys := []Key{
				{"b.example", day("2024-09-03")},
				{"a.example", day("2024-09-04")},
				{"a.example", day("2024-09-03")},
				{"xn--bcher-kva.example", day("2023-12-31")},
			}
			for _, k := range keys {
				p := stsPolicy
				p.Domain = k.Domain
				if err := s.Add(ctx, k, []PolicyResult{success(p, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Keys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []Key{keys[3], keys[2], keys[0], keys[1]}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Keys = %v, want %v", got, want)
			}
		})
	}
}

// Keys must name a canonical domain and a real day, so that a key can
// never name another file.
func TestStoreRejectsBadKeys(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)
			for _, k := range []Key{
				{"Example.com", day("2024-09-03")},
				{"bücher.example", day("2024-09-03")},
				{"../etc", day("2024-09-03")},
				{"a/b", day("2024-09-03")},
				{"", day("2024-09-03")},
				{"example.com", Day{}},
				{"example.com", Day{2024, 2, 30}},
			} {
				if err := s.Add(context.Background(), k, []PolicyResult{success(stsPolicy, 1)}); err == nil {
					t.Errorf("Add(%+v) succeeded", k)
				}
			}
		})
	}
}

// The limits keep a store small whatever the network does: distinct
// failures beyond MaxFailureDetails count only in the summary.
func TestStoreLimits(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			s := kind.new(t)
			k := Key{Domain: "example.com", Day: day("2024-09-03")}
			var batch []PolicyResult
			for i := 0; i < MaxFailureDetails+10; i++ {
				d := expired
				d.ReceivingMXHelo = fmt.Sprintf("helo-%d", i)
				batch = append(batch, failure(stsPolicy, d))
			}
			for i := 0; i < MaxPolicies+3; i++ {
				p := tlsaPolicy
				p.MXHosts = []string{fmt.Sprintf("mx%d.example.com", i)}
				batch = append(batch, success(p, 1))
			}
			if err := s.Add(ctx, k, batch); err != nil {
				t.Fatal(err)
			}
			agg, err := s.Load(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if len(agg.Policies) != MaxPolicies {
				t.Errorf("%d policies kept, want %d", len(agg.Policies), MaxPolicies)
			}
			sts := agg.Policies[0]
			if len(sts.FailureDetails) != MaxFailureDetails || sts.Summary.TotalFailureSessionCount != MaxFailureDetails+10 {
				t.Errorf("%d details, %d failures; want %d, %d", len(sts.FailureDetails), sts.Summary.TotalFailureSessionCount, MaxFailureDetails, MaxFailureDetails+10)
			}
			// A known detail still counts once the limit is reached.
			if err := s.Add(ctx, k, []PolicyResult{failure(stsPolicy, withCount(sts.FailureDetails[0], 4))}); err != nil {
				t.Fatal(err)
			}
			agg, _ = s.Load(ctx, k)
			if n := agg.Policies[0].FailureDetails[0].FailedSessionCount; n != 5 {
				t.Errorf("known detail count = %d, want 5", n)
			}
		})
	}
}

// Concurrent writers lose no count (run with -race).
func TestStoreConcurrentAdd(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			s := kind.new(t)
			k := Key{Domain: "example.com", Day: day("2024-09-03")}
			const writers, adds = 4, 10
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < adds; i++ {
						if err := s.Add(ctx, k, []PolicyResult{success(stsPolicy, 1), failure(stsPolicy, expired)}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			agg, err := s.Load(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			want := Summary{writers * adds, writers * adds}
			if agg.Policies[0].Summary != want || agg.Policies[0].FailureDetails[0].FailedSessionCount != writers*adds {
				t.Errorf("after concurrent adds: %+v, want %+v", agg.Policies[0], want)
			}
		})
	}
}
