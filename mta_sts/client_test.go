package mtasts

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// lifecycle is a Client with a fake resolver, an HTTPS server and a fake
// clock.
type lifecycle struct {
	t     *testing.T
	r     *fakeResolver
	ps    *policyServer
	clock *fakeClock
	c     *Client
	logs  *logBuffer
}

func newLifecycle(t *testing.T) *lifecycle {
	r := newFakeResolver()
	ps := newPolicyServer(t)
	clock := newFakeClock()
	logs := &logBuffer{}
	c := ps.client(r)
	c.Time = clock.Now
	c.Logger = logs.logger()
	return &lifecycle{t: t, r: r, ps: ps, clock: clock, c: c, logs: logs}
}

func (l *lifecycle) get(domain string) *Result {
	l.t.Helper()
	res, err := l.c.Get(context.Background(), domain)
	if err != nil {
		l.t.Fatalf("Get(%q): %v", domain, err)
	}
	return res
}

func (l *lifecycle) expect(res *Result, src Source, id string, mode Mode, rt string) {
	l.t.Helper()
	if res.Source != src {
		l.t.Errorf("Source = %v, want %v (err %v)", res.Source, src, res.Err)
	}
	if res.ID != id {
		l.t.Errorf("ID = %q, want %q", res.ID, id)
	}
	switch {
	case mode == "" && res.Policy != nil:
		l.t.Errorf("Policy = %+v, want none", res.Policy)
	case mode != "" && (res.Policy == nil || res.Policy.Mode != mode):
		l.t.Errorf("Policy = %+v, want mode %s", res.Policy, mode)
	}
	if got := res.ReportResultType(); got != rt {
		l.t.Errorf("ReportResultType = %q, want %q (err %v)", got, rt, res.Err)
	}
}

const (
	enforceMX1 = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 86400\n"
	enforceMX2 = "version: STSv1\nmode: enforce\nmx: mx2.example.com\nmax_age: 86400\n"
)

// STD-42, STD-58: a new id means fetch, the same id keeps the cached policy
// for max_age from the last fetch.
func TestGetCacheByID(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)

	res := l.get("example.com")
	l.expect(res, SourceFetched, "1", ModeEnforce, "")
	if !res.Enforced() || !res.Policy.Match("mx1.example.com") || res.Err != nil {
		t.Fatalf("fresh result %+v", res)
	}
	if !res.Expires().Equal(l.clock.Now().Add(86400 * time.Second)) {
		t.Errorf("Expires = %v", res.Expires())
	}

	// Same id: cached, no new fetch, even if the served policy changed.
	l.ps.servePolicy("mta-sts.example.com", enforceMX2)
	l.clock.Advance(time.Hour)
	res = l.get("example.com")
	l.expect(res, SourceCached, "1", ModeEnforce, "")
	if !res.Policy.Match("mx1.example.com") || l.ps.count("mta-sts.example.com") != 1 {
		t.Errorf("same id refetched or changed policy: %+v, %d fetches", res.Policy, l.ps.count("mta-sts.example.com"))
	}

	// New id: fetch.
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=2")
	res = l.get("example.com")
	l.expect(res, SourceFetched, "2", ModeEnforce, "")
	if !res.Policy.Match("mx2.example.com") || res.Policy.Match("mx1.example.com") {
		t.Errorf("new policy not applied: %+v", res.Policy)
	}

	// Same id, but the cached policy expired: fetch again.
	l.clock.Advance(86400*time.Second + time.Second)
	res = l.get("example.com")
	l.expect(res, SourceFetched, "2", ModeEnforce, "")
	if n := l.ps.count("mta-sts.example.com"); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

// STD-43: a TXT record that disappears does not evict the cached policy;
// nor does one that becomes invalid or duplicated.
func TestGetMissingRecordKeepsCache(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	l.expect(l.get("example.com"), SourceFetched, "1", ModeEnforce, "")

	l.r.setTXT("_mta-sts.example.com")
	res := l.get("example.com")
	l.expect(res, SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSPolicyFetchError)
	if !errors.Is(res.Err, ErrNoRecord) {
		t.Errorf("Err = %v", res.Err)
	}

	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1", "v=STSv1; id=2")
	res = l.get("example.com")
	l.expect(res, SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSPolicyFetchError)

	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=")
	l.expect(l.get("example.com"), SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSPolicyFetchError)

	// Until it expires: then there is no policy.
	l.r.setTXT("_mta-sts.example.com")
	l.clock.Advance(86401 * time.Second)
	res = l.get("example.com")
	l.expect(res, SourceNone, "", "", "")
	if res.PolicyType() != "no-policy-found" {
		t.Errorf("PolicyType = %q", res.PolicyType())
	}
	// The expired entry is dropped from the store.
	if _, err := l.c.store().Load(context.Background(), "example.com"); !errors.Is(err, ErrNotCached) {
		t.Errorf("expired entry kept: %v", err)
	}
}

// STD-60: live discovery fails (DNS error, fetch of a new policy fails), a
// valid cached policy applies.
func TestGetFailureUsesCache(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	l.expect(l.get("example.com"), SourceFetched, "1", ModeEnforce, "")

	l.r.setServfail("_mta-sts.example.com", true)
	res := l.get("example.com")
	l.expect(res, SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSPolicyFetchError)
	if !errors.Is(res.Err, ErrDNS) {
		t.Errorf("Err = %v", res.Err)
	}
	l.r.setServfail("_mta-sts.example.com", false)

	// New id, but the policy host now serves garbage.
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=2")
	l.ps.handle("mta-sts.example.com", nil, textHandler(200, "text/plain", "garbage"))
	res = l.get("example.com")
	l.expect(res, SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSPolicyInvalid)
	if res.PolicyType() != "sts" || !reflect.DeepEqual(res.PolicyStrings(), strings.Split(strings.TrimSuffix(enforceMX1, "\n"), "\n")) {
		t.Errorf("PolicyType %q, PolicyStrings %q", res.PolicyType(), res.PolicyStrings())
	}

	// A certificate problem reports sts-webpki-invalid.
	l.ps.handle("mta-sts.example.com", l.ps.certFor("www.example.com"), textHandler(200, "text/plain", enforceMX2))
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=3")
	l.expect(l.get("example.com"), SourceCachedAfterFailure, "1", ModeEnforce, rfc8460.STSWebPKIInvalid)
}

// STD-59: TXT present, fetch fails, no valid cache: no policy, and the
// failure is reported as sts-policy-fetch-error.
func TestGetFetchFailureNoCache(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.handle("mta-sts.example.com", nil, textHandler(503, "text/plain", "busy"))
	res := l.get("example.com")
	l.expect(res, SourceNone, "", "", rfc8460.STSPolicyFetchError)
	if res.Enforced() || res.Testing() || res.PolicyStrings() != nil {
		t.Errorf("no-policy result claims a policy: %+v", res)
	}
	if res.PolicyType() != "sts" {
		t.Errorf("PolicyType = %q, want sts (a TXT record was found)", res.PolicyType())
	}
	var e *Error
	if !errors.As(res.Err, &e) || e.Domain != "example.com" || e.ReportResultType() != rfc8460.STSPolicyFetchError {
		t.Errorf("Err = %#v", res.Err)
	}

	// No TXT record at all: no policy, nothing to report.
	res = l.get("nothing.example")
	l.expect(res, SourceNone, "", "", "")
	if !errors.Is(res.Err, ErrNoRecord) || res.PolicyType() != "no-policy-found" {
		t.Errorf("no record: %v, %q", res.Err, res.PolicyType())
	}

	// DNS failure, no cache: no policy, sts-policy-fetch-error.
	l.r.setServfail("_mta-sts.broken.example", true)
	res = l.get("broken.example")
	l.expect(res, SourceNone, "", "", rfc8460.STSPolicyFetchError)
}

// A failed fetch is not retried for the same id within FailureBackoff; a new
// id or the end of the backoff fetches again.
func TestGetFailureBackoff(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.handle("mta-sts.example.com", nil, textHandler(500, "text/plain", ""))
	l.expect(l.get("example.com"), SourceNone, "", "", rfc8460.STSPolicyFetchError)
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)

	l.clock.Advance(time.Minute)
	res := l.get("example.com")
	l.expect(res, SourceNone, "", "", rfc8460.STSPolicyFetchError)
	if n := l.ps.count("mta-sts.example.com"); n != 1 {
		t.Errorf("%d fetches during the backoff, want 1", n)
	}

	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=2")
	l.expect(l.get("example.com"), SourceFetched, "2", ModeEnforce, "")

	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=3")
	l.ps.handle("mta-sts.example.com", nil, textHandler(500, "text/plain", ""))
	l.expect(l.get("example.com"), SourceCachedAfterFailure, "2", ModeEnforce, rfc8460.STSPolicyFetchError)
	l.ps.servePolicy("mta-sts.example.com", enforceMX2)
	l.clock.Advance(DefaultFailureBackoff + time.Second)
	l.expect(l.get("example.com"), SourceFetched, "3", ModeEnforce, "")

	// A negative backoff disables it.
	l.c.FailureBackoff = -1
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=4")
	l.ps.handle("mta-sts.example.com", nil, textHandler(500, "text/plain", ""))
	l.get("example.com")
	l.get("example.com")
	if n := l.ps.count("mta-sts.example.com"); n != 6 {
		t.Errorf("%d fetches, want 6", n)
	}
}

// STD-56: testing and none modes are returned as such, and none is
// not enforced and not reported as an STS policy.
func TestGetModes(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.testing.example", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.testing.example", "version: STSv1\nmode: testing\nmx: mx.testing.example\nmax_age: 600\n")
	l.r.setTXT("_mta-sts.none.example", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.none.example", "version: STSv1\nmode: none\nmax_age: 600\n")

	res := l.get("testing.example")
	if res.Enforced() || !res.Testing() || res.PolicyType() != "sts" {
		t.Errorf("testing: %+v", res)
	}
	res = l.get("none.example")
	if res.Enforced() || res.Testing() || res.PolicyType() != "no-policy-found" || res.Policy == nil {
		t.Errorf("none: %+v", res)
	}
	// A cached none policy withdraws an earlier enforce policy.
	l.r.setTXT("_mta-sts.none.example", "v=STSv1; id=1")
	if l.get("none.example").Source != SourceCached {
		t.Error("none policy not cached")
	}
	// The domain then removes its TXT record: nothing to report.
	l.r.setTXT("_mta-sts.none.example")
	res = l.get("none.example")
	if res.Source != SourceCachedAfterFailure || res.ReportResultType() != "" || res.PolicyType() != "no-policy-found" {
		t.Errorf("none policy, TXT removed: %v %q %q", res.Source, res.ReportResultType(), res.PolicyType())
	}
	// Or publishes a new id whose policy cannot be fetched: reported.
	l.r.setTXT("_mta-sts.none.example", "v=STSv1; id=2")
	l.ps.handle("mta-sts.none.example", nil, textHandler(500, "text/plain", ""))
	res = l.get("none.example")
	if res.Source != SourceCachedAfterFailure || res.ReportResultType() != rfc8460.STSPolicyFetchError || res.PolicyType() != "sts" {
		t.Errorf("none policy, new id fails: %v %q %q", res.Source, res.ReportResultType(), res.PolicyType())
	}
}

// STD-39, STD-95: the policy domain is the recipient domain, in A-labels; an
// invalid domain is an error.
func TestGetDomain(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.xn--mller-kva.example", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.xn--mller-kva.example", enforceMX1)
	res := l.get("MÜLLER.example.")
	if res.Domain != "xn--mller-kva.example" || res.Source != SourceFetched {
		t.Errorf("IDN domain: %+v", res)
	}
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	res = l.get("sub.example.com")
	l.expect(res, SourceNone, "", "", "")
	for _, q := range l.r.queried() {
		if q == "_mta-sts.example.com." {
			t.Errorf("parent domain consulted for sub.example.com")
		}
	}
	for _, bad := range []string{"", ".example.com", "[192.0.2.1]", "2001:db8::1", "a..b"} {
		if _, err := l.c.Get(context.Background(), bad); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("Get(%q) error %v", bad, err)
		}
	}
}

func TestGetCancelled(t *testing.T) {
	l := newLifecycle(t)
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.c.Get(ctx, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Get: %v", err)
	}
	if l.ps.count("mta-sts.example.com") != 0 {
		t.Error("cancelled Get fetched")
	}
}

// STD-57: before an enforce failure becomes permanent the TXT id is checked
// again and a new policy fetched.
func TestRecheck(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=1")
	l.ps.servePolicy("mta-sts.example.com", enforceMX1)
	res := l.get("example.com")

	// Unchanged id: the failure may become permanent.
	got, changed, err := l.c.Recheck(ctx, res)
	if err != nil || changed || got != res {
		t.Errorf("unchanged: %+v, %v, %v", got, changed, err)
	}
	if n := l.ps.count("mta-sts.example.com"); n != 1 {
		t.Errorf("unchanged id refetched (%d fetches)", n)
	}

	// No record any more: no new policy either.
	l.r.setTXT("_mta-sts.example.com")
	if got, changed, err = l.c.Recheck(ctx, res); err != nil || changed || got != res {
		t.Errorf("no record: %+v, %v, %v", got, changed, err)
	}

	// DNS failure: the check could not be done, the failure stays temporary.
	l.r.setServfail("_mta-sts.example.com", true)
	if got, changed, err = l.c.Recheck(ctx, res); !errors.Is(err, ErrDNS) || changed || got != res {
		t.Errorf("DNS failure: %+v, %v, %v", got, changed, err)
	}
	l.r.setServfail("_mta-sts.example.com", false)

	// New id whose policy cannot be fetched: temporary as well.
	l.r.setTXT("_mta-sts.example.com", "v=STSv1; id=2")
	l.ps.handle("mta-sts.example.com", nil, textHandler(500, "text/plain", ""))
	if got, changed, err = l.c.Recheck(ctx, res); !errors.Is(err, ErrFetch) || changed || got != res {
		t.Errorf("fetch failure: %+v, %v, %v", got, changed, err)
	}

	// New id and policy: retry under it.
	l.ps.servePolicy("mta-sts.example.com", enforceMX2)
	got, changed, err = l.c.Recheck(ctx, res)
	if err != nil || !changed || got.ID != "2" || !got.Policy.Match("mx2.example.com") {
		t.Fatalf("new policy: %+v, %v, %v", got, changed, err)
	}
	// The new policy is cached for the next Get.
	l.expect(l.get("example.com"), SourceCached, "2", ModeEnforce, "")
	// A Recheck with the stale result finds the new policy in the cache.
	got, changed, err = l.c.Recheck(ctx, res)
	if err != nil || !changed || got.ID != "2" || got.Source != SourceCached {
		t.Errorf("stale result: %+v, %v, %v", got, changed, err)
	}
	if _, _, err := l.c.Recheck(ctx, nil); err == nil {
		t.Error("Recheck(nil) succeeded")
	}
}

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceNone: "none", SourceFetched: "fetched", SourceCached: "cached", SourceCachedAfterFailure: "cached-after-failure", Source(99): "unknown"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
	var r *Result
	if r.Enforced() || r.Testing() || r.ReportResultType() != "" || r.PolicyType() != "no-policy-found" || r.PolicyStrings() != nil || !r.Expires().IsZero() {
		t.Error("nil Result methods")
	}
}

// The zero Client uses an in-memory store of its own.
func TestZeroClientStore(t *testing.T) {
	var c Client
	if c.store() == nil || c.store() != c.store() {
		t.Fatal("zero Client store")
	}
	if c.resolver() == nil || c.fetchTimeout() != DefaultFetchTimeout || c.failureBackoff() != DefaultFailureBackoff || c.refreshInterval() != DefaultRefreshInterval {
		t.Error("zero Client defaults")
	}
}
