package mtasts

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// DefaultFailureBackoff is how long a Client waits before fetching again a
// policy whose fetch failed, per domain and TXT id (RFC 8461 §3.3 suggests
// five minutes or more).
const DefaultFailureBackoff = 5 * time.Minute

// Client discovers, fetches and caches MTA-STS policies. The zero value
// works: it uses net.DefaultResolver, the system roots, a direct TCP dialer,
// an in-memory cache and the RFC 8461 default limits. Set the fields before
// first use and do not change or copy the Client afterwards; it is safe for
// concurrent use.
type Client struct {
	// Resolver looks up _mta-sts TXT records; nil means
	// net.DefaultResolver.
	Resolver TXTResolver
	// Store keeps fetched policies; nil means an in-memory store private
	// to this Client. Use a FileStore to keep policies across restarts.
	Store Store
	// RootCAs verifies the policy hosts' certificates; nil means the
	// system roots.
	RootCAs *x509.CertPool
	// DialContext opens the TCP connections to policy hosts; nil means a
	// net.Dialer. It is ignored when Transport is set.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Transport, if set, carries the policy requests instead of one built
	// from DialContext and RootCAs (for an HTTP proxy, say). Redirects are
	// still not followed and the certificate is still checked against
	// RootCAs when the Transport did not verify it.
	Transport http.RoundTripper
	// FetchTimeout bounds each policy fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// FailureBackoff is how long a failed fetch is remembered for a domain
	// and TXT id before it is tried again; 0 means DefaultFailureBackoff,
	// a negative value disables the backoff.
	FailureBackoff time.Duration
	// RefreshInterval is how often the refresher renews a cached policy
	// (at most half its max_age, minus up to 20% jitter); 0 means
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logger receives corrupt-cache and refresh-failure reports; nil
	// discards them.
	Logger *slog.Logger
	// Time returns the current time; nil means time.Now. Tests set it to
	// move the clock.
	Time func() time.Time

	transportOnce sync.Once
	http          *http.Client

	memOnce sync.Once
	mem     *MemoryStore

	mu       sync.Mutex
	failures map[string]failure // by domain
}

// failure remembers a failed fetch for a domain and TXT id.
type failure struct {
	id    string
	until time.Time
	err   error
}

func (c *Client) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

func (c *Client) store() Store {
	if c.Store != nil {
		return c.Store
	}
	c.memOnce.Do(func() { c.mem = &MemoryStore{} })
	return c.mem
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) resolver() TXTResolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

func (c *Client) failureBackoff() time.Duration {
	if c.FailureBackoff == 0 {
		return DefaultFailureBackoff
	}
	return c.FailureBackoff
}

// Source says where the policy in a Result came from.
type Source int

const (
	// SourceNone: no policy applies.
	SourceNone Source = iota
	// SourceFetched: the policy was fetched over HTTPS during this call.
	SourceFetched
	// SourceCached: a cached policy whose TXT id is still the published
	// one.
	SourceCached
	// SourceCachedAfterFailure: a cached, unexpired policy applied because
	// live discovery failed (TXT lookup error, TXT record gone or invalid,
	// fetch of a new policy failed); Result.Err says what failed.
	SourceCachedAfterFailure
)

// String names the source.
func (s Source) String() string {
	switch s {
	case SourceNone:
		return "none"
	case SourceFetched:
		return "fetched"
	case SourceCached:
		return "cached"
	case SourceCachedAfterFailure:
		return "cached-after-failure"
	}
	return "unknown"
}

// Result is the MTA-STS outcome for one recipient domain.
type Result struct {
	// Domain is the policy domain in A-labels.
	Domain string
	// Policy is the policy to apply, nil if none. A policy in mode none
	// is returned as such; it asks to be treated like no policy (see
	// Enforced and Testing).
	Policy *Policy
	// ID is the TXT id the policy was fetched under.
	ID string
	// Source says where Policy came from.
	Source Source
	// FetchedAt is when Policy was fetched; Policy expires at FetchedAt
	// plus its MaxAge.
	FetchedAt time.Time
	// Err is the discovery failure, if any: it is set with SourceNone when
	// no policy could be had and with SourceCachedAfterFailure. It matches
	// ErrNoRecord when the domain simply does not use MTA-STS.
	Err error
}

// Enforced reports whether delivery must follow the policy: mode enforce.
func (r *Result) Enforced() bool {
	return r != nil && r.Policy != nil && r.Policy.Mode == ModeEnforce
}

// Testing reports whether the policy is in mode testing: check and report,
// but deliver anyway.
func (r *Result) Testing() bool {
	return r != nil && r.Policy != nil && r.Policy.Mode == ModeTesting
}

// Expires returns when the policy stops being valid, or the zero time.
func (r *Result) Expires() time.Time {
	if r == nil || r.Policy == nil {
		return time.Time{}
	}
	return r.FetchedAt.Add(r.Policy.MaxAge)
}

// ReportResultType returns the RFC 8460 result type of the discovery
// failure: sts-policy-fetch-error, sts-policy-invalid or sts-webpki-invalid,
// or "" if discovery did not fail. When a cached enforce or testing policy
// was applied because the TXT record has disappeared, it is
// sts-policy-fetch-error (a domain withdrawing MTA-STS publishes mode none
// first, so this may be an attack on the DNS); with a cached mode none
// policy it is "".
func (r *Result) ReportResultType() string {
	if r == nil || r.Err == nil {
		return ""
	}
	if rt := ResultType(r.Err); rt != "" {
		return rt
	}
	if r.Source == SourceCachedAfterFailure && r.Policy != nil && r.Policy.Mode != ModeNone {
		return rfc8460.STSPolicyFetchError
	}
	return ""
}

// PolicyType returns the RFC 8460 policy-type for a report: "sts" when a
// policy in mode enforce or testing applies or when there is a failure to
// report (ReportResultType is not empty), "no-policy-found" otherwise,
// including when the policy is in mode none.
func (r *Result) PolicyType() string {
	if r == nil {
		return "no-policy-found"
	}
	if r.Policy != nil && r.Policy.Mode != ModeNone || r.ReportResultType() != "" {
		return "sts"
	}
	return "no-policy-found"
}

// PolicyStrings returns the policy-string lines of the applied policy for a
// TLS-RPT report (RFC 8460), or nil.
func (r *Result) PolicyStrings() []string {
	if r == nil || r.Policy == nil {
		return nil
	}
	return r.Policy.PolicyStrings()
}

// Get returns the MTA-STS policy to apply to mail for the recipient domain
// domain (the policy domain: RFC 8461 §3.4; no parent domain is consulted;
// when relaying through a smart host pass the smart host's domain).
//
// It looks up the _mta-sts TXT record and then:
//
//   - same id as the cached, unexpired policy: the cached policy
//     (SourceCached);
//   - new id or no valid cached policy: fetches, caches and returns the new
//     policy (SourceFetched);
//   - TXT lookup failed, record missing, invalid or duplicated, or fetch
//     failed: the cached policy if one is still valid
//     (SourceCachedAfterFailure), otherwise no policy (SourceNone); Err
//     says what failed and ReportResultType gives its RFC 8460 type.
//
// A failed fetch is not retried for the same domain and id for
// FailureBackoff. The returned error is non-nil only when domain is not a
// valid host name (ErrInvalidDomain) or ctx ended; every discovery failure
// is in Result.Err instead, because delivery goes on (RFC 8461 §3.3). A
// caller that prefers to defer delivery when it cannot tell whether the
// domain has a policy can test errors.Is(res.Err, ErrDNS) with SourceNone.
func (c *Client) Get(ctx context.Context, domain string) (*Result, error) {
	d, err := idn.ToASCII(domain)
	if err != nil {
		return nil, &Error{Op: "get", Domain: domain, Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)}
	}
	cached, err := c.loadValid(ctx, d)
	if err != nil {
		return nil, err
	}
	rec, lerr := LookupRecord(ctx, c.resolver(), d)
	if cerr := ctx.Err(); cerr != nil {
		return nil, &Error{Op: "get", Domain: d, Err: cerr}
	}
	if lerr != nil {
		return c.fallback(d, cached, lerr), nil
	}
	if cached != nil && cached.ID == rec.ID {
		return &Result{Domain: d, Policy: cached.Policy, ID: cached.ID, Source: SourceCached, FetchedAt: cached.FetchedAt}, nil
	}
	if ferr := c.recentFailure(d, rec.ID); ferr != nil {
		return c.fallback(d, cached, ferr), nil
	}
	return c.fetchAndStore(ctx, d, rec.ID, cached)
}

// loadValid returns the cached entry for d if it is still valid. A corrupt
// entry is logged and ignored.
func (c *Client) loadValid(ctx context.Context, d string) (*Entry, error) {
	e, err := c.store().Load(ctx, d)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &Error{Op: "get", Domain: d, Err: cerr}
		}
		if !errors.Is(err, ErrNotCached) {
			c.logger().Warn("mtasts: ignoring unreadable cached policy", slog.String("domain", d), slog.Any("error", err))
		}
		return nil, nil
	}
	if e == nil {
		return nil, nil
	}
	if !e.Valid(c.now()) {
		// An expired policy never applies again; drop it so that the
		// store does not keep it forever.
		if err := c.store().Delete(ctx, d); err != nil {
			c.logger().Warn("mtasts: could not delete expired cached policy", slog.String("domain", d), slog.Any("error", err))
		}
		return nil, nil
	}
	return e, nil
}

// fallback returns the cached policy after a discovery failure, or no
// policy.
func (c *Client) fallback(d string, cached *Entry, err error) *Result {
	if cached != nil {
		return &Result{Domain: d, Policy: cached.Policy, ID: cached.ID, Source: SourceCachedAfterFailure, FetchedAt: cached.FetchedAt, Err: err}
	}
	return &Result{Domain: d, Source: SourceNone, Err: err}
}

func (c *Client) fetchAndStore(ctx context.Context, d, id string, cached *Entry) (*Result, error) {
	p, ferr := c.FetchPolicy(ctx, d)
	if ferr != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &Error{Op: "get", Domain: d, Err: errors.Join(cerr, ferr)}
		}
		c.noteFailure(d, id, ferr)
		return c.fallback(d, cached, ferr), nil
	}
	c.clearFailure(d)
	now := c.now()
	e := &Entry{Domain: d, ID: id, Policy: p, FetchedAt: now}
	if err := c.store().Save(ctx, e); err != nil {
		c.logger().Warn("mtasts: could not cache the fetched policy; it still applies now", slog.String("domain", d), slog.Any("error", err))
	}
	return &Result{Domain: d, Policy: p, ID: id, Source: SourceFetched, FetchedAt: now}, nil
}

// recentFailure returns the error of a fetch for d and id that failed
// less than FailureBackoff ago, or nil.
func (c *Client) recentFailure(d, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.failures[d]
	if !ok || f.id != id || !c.now().Before(f.until) {
		return nil
	}
	return f.err
}

func (c *Client) noteFailure(d, id string, err error) {
	b := c.failureBackoff()
	if b < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = make(map[string]failure)
	}
	// Forget stale entries now and then so the map stays small.
	if len(c.failures) > 1024 {
		now := c.now()
		for k, v := range c.failures {
			if !now.Before(v.until) {
				delete(c.failures, k)
			}
		}
	}
	c.failures[d] = failure{id: id, until: c.now().Add(b), err: err}
}

func (c *Client) clearFailure(d string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.failures, d)
}

// Recheck is the check RFC 8461 §5.1 requires before a delivery that failed
// because of an enforce policy is failed permanently: it looks up the TXT
// record again and, if its id differs from prev.ID, fetches the new policy.
//
// It returns the new Result and changed = true when a new policy was
// fetched (retry delivery under it). It returns prev and changed = false
// with a nil error when the published id is unchanged or no record is
// published any more: the failure may then become permanent. It returns
// prev, false and a non-nil error when the check could not be completed (TXT
// lookup failed, fetching the new policy failed, ctx ended): the caller
// should treat the delivery failure as temporary and try again later.
func (c *Client) Recheck(ctx context.Context, prev *Result) (res *Result, changed bool, err error) {
	if prev == nil || prev.Domain == "" {
		return prev, false, &Error{Op: "recheck", Err: errors.New("no previous result to recheck")}
	}
	d := prev.Domain
	rec, lerr := LookupRecord(ctx, c.resolver(), d)
	if cerr := ctx.Err(); cerr != nil {
		return prev, false, &Error{Op: "recheck", Domain: d, Err: cerr}
	}
	if lerr != nil {
		if errors.Is(lerr, ErrNoRecord) || errors.Is(lerr, ErrRecordSyntax) || errors.Is(lerr, ErrMultipleRecords) {
			return prev, false, nil
		}
		return prev, false, lerr
	}
	if rec.ID == prev.ID {
		return prev, false, nil
	}
	cached, err := c.loadValid(ctx, d)
	if err != nil {
		return prev, false, err
	}
	if cached != nil && cached.ID == rec.ID {
		// Another delivery already fetched the new policy.
		return &Result{Domain: d, Policy: cached.Policy, ID: cached.ID, Source: SourceCached, FetchedAt: cached.FetchedAt}, true, nil
	}
	res, err = c.fetchAndStore(ctx, d, rec.ID, nil)
	if err != nil {
		return prev, false, err
	}
	if res.Source != SourceFetched {
		return prev, false, res.Err
	}
	return res, true, nil
}
