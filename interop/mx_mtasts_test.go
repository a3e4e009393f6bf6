//go:build interop

package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smtpsecure/smtpsecure/dane"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// resolvingDialer dials host names with the addresses a dane.Resolver gives,
// so that the policy hosts are found through the same resolver as the TXT
// records, and records where it connected.
type resolvingDialer struct {
	r      *dane.Resolver
	mu     sync.Mutex
	dialed map[string]string // host:port asked for → ip:port connected to
}

func (d *resolvingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := d.r.LookupIP(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips.Addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	to := net.JoinHostPort(ips.Addrs[0].String(), port)
	d.mu.Lock()
	d.dialed[addr] = to
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

// testMXLabMTASTS: an mtasts.Client whose TXT lookups and policy host
// addresses go through the library's resolver (pointed at Unbound) and which
// trusts the lab CA gets each domain's policy from nginx, with the mode and mx
// patterns the lab publishes, and no policy where there is none.
//
// STD-40, STD-44, STD-49, STD-52
func testMXLabMTASTS(t *testing.T, l *mxLab) {
	r := l.resolver()
	dialer := &resolvingDialer{r: r, dialed: map[string]string{}}
	c := &mtasts.Client{Resolver: r, RootCAs: l.caPool, DialContext: dialer.DialContext, Store: &mtasts.MemoryStore{}}
	for _, d := range l.domains {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := mxContext(t)
			res, err := c.Get(ctx, d.name)
			if err != nil {
				t.Fatalf("Get(%s): %v", d.name, err)
			}
			if d.policy == nil {
				if res.Source != mtasts.SourceNone || res.Policy != nil || !errors.Is(res.Err, mtasts.ErrNoRecord) {
					t.Errorf("Get(%s) = source %v, policy %v, err %v; want no policy (ErrNoRecord)", d.name, res.Source, res.Policy, res.Err)
				}
				if res.PolicyType() != "no-policy-found" {
					t.Errorf("Get(%s).PolicyType() = %q, want no-policy-found", d.name, res.PolicyType())
				}
				return
			}
			if res.Err != nil || res.Source != mtasts.SourceFetched || res.Policy == nil {
				t.Fatalf("Get(%s) = source %v, policy %v, err %v; want a fetched policy", d.name, res.Source, res.Policy, res.Err)
			}
			p := res.Policy
			if p.Mode != d.policy.mode || !slices.Equal(p.MX, d.policy.mx) || p.MaxAge != l.maxAge || res.ID != l.policyID {
				t.Errorf("Get(%s) = mode %s, mx %q, max_age %v, id %s; want %s, %q, %v, %s",
					d.name, p.Mode, p.MX, p.MaxAge, res.ID, d.policy.mode, d.policy.mx, l.maxAge, l.policyID)
			}
			if res.Enforced() != (d.policy.mode == mtasts.ModeEnforce) || res.Testing() != (d.policy.mode == mtasts.ModeTesting) {
				t.Errorf("Get(%s): Enforced %v, Testing %v for mode %s", d.name, res.Enforced(), res.Testing(), p.Mode)
			}
			if res.PolicyType() != "sts" || res.ReportResultType() != "" {
				t.Errorf("Get(%s): policy type %q, result type %q; want sts and no failure", d.name, res.PolicyType(), res.ReportResultType())
			}
			// The policy as served is the file the lab wrote.
			body, err := os.ReadFile(d.policy.file)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n"); !slices.Equal(p.Lines, want) {
				t.Errorf("policy lines of %s = %q, want %q (%s)", d.name, p.Lines, want, d.policy.file)
			}
			// The policy host was found through the resolver, at the lab's address.
			dialer.mu.Lock()
			to := dialer.dialed[d.policy.host+":443"]
			dialer.mu.Unlock()
			if to != d.policy.addr {
				t.Errorf("the policy of %s was fetched from %q, want %s (%s_POLICY_ADDR)", d.name, to, d.policy.addr, d.key)
			}
			// Does the policy list the domain's MX? Only where the lab says it
			// is delivered under it.
			for _, h := range d.mx {
				want := d.key != "STS_MISMATCH_DOMAIN" && d.key != "STS_TESTING_DOMAIN"
				if got := p.Match(h); got != want {
					t.Errorf("policy of %s: Match(%s) = %v, want %v", d.name, h, got, want)
				}
			}
		})
	}
	t.Run("PolicyHostCertificate", func(t *testing.T) {
		t.Parallel()
		// Another policy host's certificate does not do: the Client checks
		// the name (sts-webpki-invalid).
		ctx := mxContext(t)
		enforce, mismatch := l.domain("STS_ENFORCE_DOMAIN"), l.domain("STS_MISMATCH_DOMAIN")
		wrong := func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, mismatch.policy.addr)
		}
		c := &mtasts.Client{Resolver: r, RootCAs: l.caPool, DialContext: wrong}
		_, err := c.FetchPolicy(ctx, enforce.name)
		if !errors.Is(err, mtasts.ErrWebPKI) || mtasts.ResultType(err) != "sts-webpki-invalid" {
			t.Errorf("FetchPolicy(%s) from %s's host = %v, want ErrWebPKI (sts-webpki-invalid)", enforce.name, mismatch.name, err)
		}
		// And without the lab CA nothing is trusted.
		c = &mtasts.Client{Resolver: r, DialContext: dialer.DialContext}
		if _, err := c.FetchPolicy(ctx, enforce.name); !errors.Is(err, mtasts.ErrWebPKI) {
			t.Errorf("FetchPolicy(%s) with the system roots = %v, want ErrWebPKI", enforce.name, err)
		}
	})
	t.Run("PolicyHostAddresses", func(t *testing.T) {
		t.Parallel()
		ctx := mxContext(t)
		for _, d := range l.domains {
			if d.policy == nil {
				continue
			}
			ips, err := r.LookupIP(ctx, d.policy.host)
			if err != nil {
				t.Errorf("LookupIP(%s): %v", d.policy.host, err)
				continue
			}
			if want := []netip.Addr{hostOf(t, d.policy.addr)}; !slices.Equal(ips.Addrs, want) || ips.Status != dane.Insecure {
				t.Errorf("LookupIP(%s) = %v %v, want insecure %v", d.policy.host, ips.Status, ips.Addrs, want)
			}
			if want := fmt.Sprintf("mta-sts.%s", d.name); d.policy.host != want {
				t.Errorf("%s_POLICY_HOST = %s, want %s", d.key, d.policy.host, want)
			}
		}
	})
}
