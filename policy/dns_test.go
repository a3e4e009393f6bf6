package policy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	r "github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// dnsPlanner returns a Planner asking only srv, with MTA-STS lookups that
// find nothing (no _mta-sts records are published).
func dnsPlanner(srv *dnstest.Server) *Planner {
	return &Planner{
		Resolver:    &dane.Resolver{Servers: []string{srv.Addr}, Timeout: 10 * time.Second, Attempts: 1},
		DialContext: refuseDial,
		Rand:        rand.NewPCG(7, 7),
	}
}

func refuseDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, fmt.Errorf("test: no network (%s %s)", network, addr)
}

// The RFC 5321 §5.1 and RFC 7672 §2.2 DNS rules on cases the world does
// not hold. STD-66, STD-71.
func TestDNSRules(t *testing.T) {
	srv := dnstest.New(t)
	srv.MustAdd(
		"servfail.example. MX 10 mx.servfail.example.",
		"noaddr.example. TXT \"exists, without MX or addresses\"",
		"hostnoaddr.example. MX 10 gone.hostnoaddr.example.",
		"hostnoaddr.example. MX 20 empty.hostnoaddr.example.",
		"empty.hostnoaddr.example. TXT \"no addresses\"",
		"addrfail.example. MX 10 mx.addrfail.example.",
		"mx.addrfail.example. A 192.0.2.1",
		"tlsafail.example. MX 10 mx.tlsafail.example.",
		"mx.tlsafail.example. A 192.0.2.2",
		"dup.example. MX 10 mx.dup.example.",
		"dup.example. MX 20 mx.dup.example.",
		"mx.dup.example. A 192.0.2.3",
		"badname.example. MX 10 under_score.badname.example.",
		"badname.example. MX 20 mx.badname.example.",
		"mx.badname.example. A 192.0.2.4",
		"alias.example. CNAME target.example.",
		"target.example. A 192.0.2.5",
	)
	srv.SetZone("tlsafail.example", dnstest.Rule{Mode: dnstest.Secure})
	srv.SetZone("alias.example", dnstest.Rule{Mode: dnstest.Secure})
	srv.SetZone("target.example", dnstest.Rule{Mode: dnstest.Secure})
	srv.SetName("servfail.example", dnstest.Rule{Mode: dnstest.ServFail})
	srv.SetName("mx.addrfail.example", dnstest.Rule{Mode: dnstest.Refused})
	srv.SetName("_25._tcp.mx.tlsafail.example", dnstest.Rule{Mode: dnstest.ServFail})
	p := dnsPlanner(srv)

	t.Run("MX lookup error defers", func(t *testing.T) {
		pl := mustPlan(t, p, "servfail.example")
		var e *Error
		if !errors.As(pl.Err, &e) || !errors.Is(pl.Err, ErrMXLookup) || !errors.Is(pl.Err, dane.ErrLookup) || !e.Temporary {
			t.Fatalf("Err = %#v", pl.Err)
		}
		if got := pl.ReportResults(time.Now()); len(got) != 0 {
			t.Errorf("a plain lookup failure is not a DNSSEC failure to report: %+v", got)
		}
		if len(pl.Hosts) != 0 {
			t.Errorf("hosts %v after a failed MX lookup", pl.Hosts)
		}
	})
	t.Run("no MX and no addresses", func(t *testing.T) {
		pl := mustPlan(t, p, "noaddr.example")
		var e *Error
		if !errors.As(pl.Err, &e) || !errors.Is(pl.Err, ErrNoMailHost) || e.Temporary {
			t.Fatalf("Err = %v", pl.Err)
		}
		if !pl.MX.Implicit || pl.Hosts[0].Excluded.Code != ExcludedNoAddress {
			t.Errorf("plan %s", pl)
		}
	})
	t.Run("hosts without addresses", func(t *testing.T) {
		pl := mustPlan(t, p, "hostnoaddr.example")
		var e *Error
		if !errors.As(pl.Err, &e) || !errors.Is(pl.Err, ErrNoUsableHost) || e.Temporary || e.Recheck {
			t.Fatalf("Err = %v", pl.Err)
		}
		for _, h := range pl.Hosts {
			if h.Excluded == nil || h.Excluded.Code != ExcludedNoAddress || h.Excluded.Temporary {
				t.Errorf("%s: %+v", h.Name, h.Excluded)
			}
		}
	})
	t.Run("address lookup error", func(t *testing.T) {
		pl := mustPlan(t, p, "addrfail.example")
		h := pl.Hosts[0]
		if h.Excluded == nil || h.Excluded.Code != ExcludedAddressLookup || !h.Excluded.Temporary || h.Excluded.ResultType != "" {
			t.Errorf("%+v", h.Excluded)
		}
		var e *Error
		if !errors.As(pl.Err, &e) || !e.Temporary {
			t.Errorf("Err = %v", pl.Err)
		}
	})
	t.Run("TLSA lookup error is not no-DANE", func(t *testing.T) {
		pl := mustPlan(t, p, "tlsafail.example")
		h := pl.Hosts[0]
		if h.Excluded == nil || h.Excluded.Code != ExcludedTLSALookup || !h.Excluded.Temporary || !errors.Is(h.Excluded.Err, dane.ErrLookup) {
			t.Errorf("%+v", h.Excluded)
		}
		if rr := pl.ReportResults(time.Now()); len(rr) != 1 || rr[0].ResultType != r.DNSSECInvalid || rr[0].ReceivingMXHostname != h.Name {
			t.Errorf("ReportResults %+v", rr)
		}
	})
	t.Run("duplicate MX host listed once", func(t *testing.T) {
		pl := mustPlan(t, p, "dup.example")
		if len(pl.Hosts) != 1 || pl.Hosts[0].Preference != 10 {
			t.Errorf("hosts %+v", pl.Hosts)
		}
	})
	t.Run("invalid MX host name", func(t *testing.T) {
		pl := mustPlan(t, p, "badname.example")
		if h := pl.Hosts[0]; h.Excluded == nil || h.Excluded.Code != ExcludedInvalidName || h.Excluded.Temporary {
			t.Errorf("%s: %+v", h.Name, h.Excluded)
		}
		if !pl.Hosts[1].Usable() || pl.Err != nil {
			t.Errorf("plan %s", pl)
		}
	})
	t.Run("implicit MX through a CNAME", func(t *testing.T) {
		pl := mustPlan(t, p, "alias.example")
		if !pl.MX.Implicit || pl.MX.Canonical != "target.example" || pl.Err != nil {
			t.Fatalf("plan %s", pl)
		}
		h := pl.Hosts[0]
		if h.Name != "alias.example" || h.Canonical != "target.example" || !h.AddrsSecure {
			t.Errorf("host %+v", h)
		}
		// The next-hop domain and its CNAME expansion are reference
		// identifiers when the denial of MX is secure (RFC 7672 §3.2.2).
		if got := strings.Join(pl.MX.NextHopNames, " "); got != "alias.example target.example" {
			t.Errorf("NextHopNames %q", got)
		}
	})
}

// STD-67: preference order is kept; equal preferences are shuffled with
// the injected source; MaxHosts bounds the lookups.
func TestMXOrder(t *testing.T) {
	srv := dnstest.New(t)
	for _, h := range []string{"a", "b", "c", "d"} {
		srv.MustAdd("mx-" + h + ".shuffle.example. A 192.0.2.10")
	}
	srv.MustAdd(
		"shuffle.example. MX 20 mx-d.shuffle.example.",
		"shuffle.example. MX 10 mx-a.shuffle.example.",
		"shuffle.example. MX 10 mx-b.shuffle.example.",
		"shuffle.example. MX 10 mx-c.shuffle.example.",
	)
	for i := 1; i <= MaxHosts+2; i++ {
		srv.MustAdd(fmt.Sprintf("many.example. MX %d h%d.many.example.", i, i), fmt.Sprintf("h%d.many.example. A 192.0.2.%d", i, i))
	}

	orders := map[string]bool{}
	for seed := range uint64(40) {
		p := dnsPlanner(srv)
		p.Rand = rand.NewPCG(seed, seed)
		pl := mustPlan(t, p, "shuffle.example")
		var names []string
		for _, h := range pl.Hosts {
			names = append(names, strings.TrimSuffix(h.Name, ".shuffle.example"))
		}
		if len(names) != 4 || names[3] != "mx-d" {
			t.Fatalf("seed %d: order %v: preference 20 must come last", seed, names)
		}
		orders[strings.Join(names[:3], ",")] = true
		again := mustPlan(t, &Planner{Resolver: p.Resolver, DialContext: refuseDial, Rand: rand.NewPCG(seed, seed)}, "shuffle.example")
		for i := range pl.Hosts {
			if again.Hosts[i].Name != pl.Hosts[i].Name {
				t.Fatalf("seed %d: the same source gave another order", seed)
			}
		}
	}
	if len(orders) != 6 {
		t.Errorf("%d of the 6 orders of three equal preferences seen over 40 seeds: %v", len(orders), orders)
	}

	pl := mustPlan(t, dnsPlanner(srv), "many.example")
	if len(pl.Hosts) != MaxHosts+2 {
		t.Fatalf("%d hosts", len(pl.Hosts))
	}
	for i, h := range pl.Hosts {
		over := i >= MaxHosts
		if over != (h.Excluded != nil && h.Excluded.Code == ExcludedOverLimit) {
			t.Errorf("host %d %s: %+v", i+1, h.Name, h.Excluded)
		}
		if over && srv.Count(h.Name, dns.TypeA) != 0 {
			t.Errorf("%s beyond the limit was looked up", h.Name)
		}
	}
}

// When the resolver cannot validate, the plan says that DANE was not
// checked instead of treating signed domains as unsigned without a word.
func TestDANENotChecked(t *testing.T) {
	srv := dnstest.New(t) // all answers insecure, as from an untrusted upstream
	srv.MustAdd(
		"signed.example. MX 10 mx.signed.example.",
		"mx.signed.example. A 192.0.2.1",
		"_25._tcp.mx.signed.example. TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000",
	)
	p := dnsPlanner(srv)
	p.canValidate = func() bool { return false }
	pl := mustPlan(t, p, "signed.example")
	if pl.DANEChecked {
		t.Fatal("DANEChecked with a resolver that cannot validate")
	}
	h := pl.Hosts[0]
	if h.Requirement.Auth != AuthNone || h.Source != SourceDefault {
		t.Errorf("host %+v", h)
	}
	for _, want := range []string{"DANE NOT checked", "DANE could not be checked: the resolver cannot give DNSSEC answers", "DANE could not be checked: the resolver gives no DNSSEC answers"} {
		if !strings.Contains(pl.String(), want) {
			t.Errorf("plan does not say %q:\n%s", want, pl)
		}
	}

	// The real check: a loopback resolver is trusted.
	if pl := mustPlan(t, dnsPlanner(srv), "signed.example"); !pl.DANEChecked {
		t.Error("a Planner on a loopback resolver says it cannot validate")
	}
}

// Plan fails only for an invalid domain, an invalid configuration or an
// ended context.
func TestPlanErrors(t *testing.T) {
	srv := dnstest.New(t)
	srv.MustAdd("slow.example. TXT \"x\"")
	srv.SetName("slow.example", dnstest.Rule{Mode: dnstest.Drop})
	p := dnsPlanner(srv)
	p.Resolver.Timeout = time.Minute
	for _, d := range []string{"", "exa mple.com", "[192.0.2.1]", "192.0.2.1", "a..example"} {
		_, err := p.Plan(context.Background(), d)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("Plan(%q) = %v, want ErrInvalidDomain", d, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Plan(ctx, "slow.example")
		done <- err
	}()
	for srv.Count("slow.example", dns.TypeMX) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Plan after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Plan did not return after its context was cancelled (resolver timeout is a minute)")
	}

	bad := &Planner{Rules: &Rules{Default: Rule{Level: LevelEncrypt, Names: []string{"x.example"}}}}
	if _, err := bad.Plan(context.Background(), "example.com"); !errors.Is(err, ErrRulesSyntax) {
		t.Errorf("invalid rules: %v", err)
	}
	file := t.TempDir() + "/file"
	if err := writeFile(file); err != nil {
		t.Fatal(err)
	}
	badDir := &Planner{MTASTSCacheDir: file + "/sub"}
	if _, err := badDir.Plan(context.Background(), "example.com"); err == nil || !strings.Contains(err.Error(), "MTA-STS cache directory") {
		t.Errorf("cache directory under a file: %v", err)
	}
	if _, err := badDir.MTASTSClient(); err == nil {
		t.Error("MTASTSClient with a bad cache directory succeeded")
	}
}

// The zero Planner is ready to use: system resolver and roots, and an
// in-memory MTA-STS cache.
func TestZeroPlanner(t *testing.T) {
	var p Planner
	c, err := p.MTASTSClient()
	if err != nil || c == nil {
		t.Fatalf("MTASTSClient = %v, %v", c, err)
	}
	if c.Store != nil || c.RootCAs != nil || c.Resolver == nil {
		t.Errorf("default MTA-STS client %+v: want the Planner's resolver, system roots, memory store", c)
	}
	if r, ok := c.Resolver.(*dane.Resolver); !ok || r != p.res {
		t.Errorf("the MTA-STS client does not use the Planner's resolver: %T", c.Resolver)
	}
	own := &Planner{MTASTS: c}
	if got, _ := own.MTASTSClient(); got != c {
		t.Error("a given MTA-STS client is not used")
	}
}
