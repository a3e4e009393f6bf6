package policy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	r "github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// stsFixture is a domain with an MTA-STS policy that a test can change.
type stsFixture struct {
	dns    *dnstest.Server
	mu     sync.Mutex
	policy string
	p      *Planner
}

const policyAddr = "198.51.100.1:443"

func newSTSFixture(t *testing.T) *stsFixture {
	f := &stsFixture{dns: dnstest.New(t)}
	f.dns.MustAdd(
		"fixture.example. MX 10 mx.fixture.example.",
		"mx.fixture.example. A 192.0.2.1",
		"_mta-sts.fixture.example. TXT \"v=STSv1; id=1\"",
		"mta-sts.fixture.example. A 198.51.100.1",
	)
	f.setPolicy("enforce", "other.fixture.example")
	ca, err := testpki.NewCA("fixture root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"mta-sts.fixture.example"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(f.policy))
	}))
	srv.TLS = leaf.ServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.p = &Planner{
		Resolver: &dane.Resolver{Servers: []string{f.dns.Addr}, Timeout: 10 * time.Second},
		RootCAs:  ca.Pool(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != policyAddr {
				return nil, errors.New("test: only the policy host is reachable")
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
		},
	}
	return f
}

func (f *stsFixture) setPolicy(mode, mx string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = "version: STSv1\nmode: " + mode + "\nmx: " + mx + "\nmax_age: 86400\n"
}

func (f *stsFixture) publish(id string) {
	f.dns.Remove("_mta-sts.fixture.example", dns.TypeTXT)
	f.dns.MustAdd("_mta-sts.fixture.example. TXT \"v=STSv1; id=" + id + "\"")
}

// STD-57: before an enforce failure becomes permanent, the policy is
// rechecked; a new id brings a new plan. STD-39: the policy is the
// recipient domain's own, and its host is resolved through the Planner's
// resolver.
func TestRecheck(t *testing.T) {
	f := newSTSFixture(t)
	ctx := context.Background()
	pl := mustPlan(t, f.p, "fixture.example")
	var e *Error
	if !errors.As(pl.Err, &e) || !e.Recheck || e.Temporary {
		t.Fatalf("Err = %v, want a recheck", pl.Err)
	}
	if f.dns.Count("mta-sts.fixture.example", dns.TypeA) == 0 || f.dns.Count("_mta-sts.fixture.example", dns.TypeTXT) == 0 {
		t.Error("the MTA-STS record or the policy host was not looked up through the Planner's resolver")
	}

	// Same id: no change, the failure may become permanent.
	same, changed, err := f.p.Recheck(ctx, pl)
	if err != nil || changed || same != pl {
		t.Fatalf("Recheck with the same id = %v, %v, %v", same, changed, err)
	}

	// A new id and a policy that lists the host: a new plan.
	f.setPolicy("enforce", "mx.fixture.example")
	f.publish("2")
	np, changed, err := f.p.Recheck(ctx, pl)
	if err != nil || !changed {
		t.Fatalf("Recheck with a new id = %v, %v", changed, err)
	}
	if np.Err != nil || !np.Hosts[0].Usable() || np.Hosts[0].Source != SourceMTASTSEnforce || np.MTASTS.ID != "2" {
		t.Errorf("new plan:\n%s", np)
	}

	// A recheck that cannot be completed is an error: stay temporary.
	f.dns.SetName("_mta-sts.fixture.example", dnstest.Rule{Mode: dnstest.ServFail})
	if _, changed, err := f.p.Recheck(ctx, np); err == nil || changed {
		t.Errorf("Recheck with a failing TXT lookup = %v, %v", changed, err)
	}

	// Nothing to recheck without an enforce policy.
	if got, changed, err := f.p.Recheck(ctx, &Plan{Domain: "x.example"}); got == nil || changed || err != nil {
		t.Errorf("Recheck without a policy = %v, %v, %v", got, changed, err)
	}
}

// A testing policy that does not list the host: delivery as without a
// policy, the would-be exclusion reported.
func TestTestingUnlisted(t *testing.T) {
	f := newSTSFixture(t)
	f.setPolicy("testing", "other.fixture.example")
	pl := mustPlan(t, f.p, "fixture.example")
	checkHost(t, pl.Hosts[0], wantHost{name: "mx.fixture.example", auth: AuthNone, sni: "mx.fixture.example",
		source: SourceMTASTSTesting, report: tlsrpt.PolicySTS, testing: "unlisted", why: "does not list the host"})
	if rt, err := pl.Hosts[0].Testing.Check(nil); rt != r.STARTTLSNotSupported || err == nil {
		t.Errorf("Check(nil) = %q, %v", rt, err)
	}
}

// STD-56: mode none is no policy.
func TestModeNone(t *testing.T) {
	f := newSTSFixture(t)
	f.setPolicy("none", "other.fixture.example")
	pl := mustPlan(t, f.p, "fixture.example")
	checkHost(t, pl.Hosts[0], wantHost{name: "mx.fixture.example", auth: AuthNone, sni: "mx.fixture.example",
		source: SourceDefault, report: tlsrpt.PolicyNone})
	if pl.MTASTS.Mode != "none" || pl.Err != nil {
		t.Errorf("plan:\n%s", pl)
	}
}

// The policy host is resolved through the Planner's resolver: a name that
// does not exist there is a fetch error, as is an address that refuses.
// STD-59.
func TestPolicyHostResolution(t *testing.T) {
	f := newSTSFixture(t)
	f.dns.Remove("mta-sts.fixture.example", dns.TypeA)
	pl := mustPlan(t, f.p, "fixture.example")
	if pl.MTASTS.ResultType != r.STSPolicyFetchError || !strings.Contains(pl.MTASTS.Error, "does not exist") {
		t.Errorf("policy host without addresses: %+v", pl.MTASTS)
	}
	if h := pl.Hosts[0]; !h.Usable() || h.Source != SourceDefault {
		t.Errorf("host %+v", h)
	}

	f = newSTSFixture(t)
	f.dns.Remove("mta-sts.fixture.example", dns.TypeA)
	f.dns.MustAdd("mta-sts.fixture.example. AAAA 2001:db8::443")
	pl = mustPlan(t, f.p, "fixture.example")
	if pl.MTASTS.ResultType != r.STSPolicyFetchError || !strings.Contains(pl.MTASTS.Error, "only the policy host is reachable") {
		t.Errorf("policy host at an unreachable address: %+v", pl.MTASTS)
	}

	// An address given directly is dialled as it is.
	c, err := f.p.dialViaResolver(context.Background(), "tcp", policyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := f.p.dialViaResolver(context.Background(), "tcp4", "mta-sts.fixture.example:443"); err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("tcp4 to a name with only IPv6 addresses: %v", err)
	}
}
