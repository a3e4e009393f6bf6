package dane

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// newServer returns a test resolver with a signed zone example.com, an
// unsigned zone example.net and names for every failure mode.
func newServer(t *testing.T) *dnstest.Server {
	t.Helper()
	s := dnstest.New(t)
	s.MustAdd(
		"example.com. SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60",
		"example.com. MX 20 mx2.example.com.",
		"example.com. MX 10 mx1.example.com.",
		"example.com. MX 20 mx3.example.com.",
		"example.com. TXT \"v=STSv1; id=20240101\"",
		"mx1.example.com. A 192.0.2.1",
		"mx1.example.com. AAAA 2001:db8::1",
		"mx2.example.com. A 192.0.2.2",
		"v4only.example.com. A 192.0.2.4",
		"split.example.com. TXT \"v=spf1 \" \"-all\"",
		"escaped.example.com. TXT \"a\\\"b\\\\c\\255\"",
		"nullmx.example.com. MX 0 .",
		"alias.example.com. CNAME mx1.example.com.",
		"alias2.example.com. CNAME alias.example.com.",
		"toinsecure.example.com. CNAME host.example.net.",
		"tobogus.example.com. CNAME bogus.example.com.",
		"bogus.example.com. A 192.0.2.66",
		"expired.example.com. A 192.0.2.67",
		"bogusaaaa.example.com. A 192.0.2.68",
		"loop1.example.com. CNAME loop2.example.com.",
		"loop2.example.com. CNAME loop1.example.com.",
		"xn--bcher-kva.example.com. MX 10 mx1.example.com.",
		"example.net. MX 10 mx.example.net.",
		"host.example.net. A 198.51.100.1",
		"mx.example.net. A 198.51.100.2",
	)
	s.SetZone("example.com", dnstest.Rule{Mode: dnstest.Secure})
	s.SetName("bogus.example.com", dnstest.Rule{Mode: dnstest.Bogus, EDEText: "validation failure <bogus.example.com. A IN>"})
	s.SetName("expired.example.com", dnstest.Rule{Mode: dnstest.Bogus, EDE: dns.ExtendedErrorCodeSignatureExpired})
	s.SetName("servfail.example.com", dnstest.Rule{Mode: dnstest.ServFail})
	s.SetName("unreachable.example.com", dnstest.Rule{Mode: dnstest.ServFail, EDE: dns.ExtendedErrorCodeNoReachableAuthority})
	s.SetName("refused.example.com", dnstest.Rule{Mode: dnstest.Refused})
	s.SetName("slow.example.com", dnstest.Rule{Mode: dnstest.Drop})
	s.SetName("junk.example.com", dnstest.Rule{Mode: dnstest.Malformed})
	s.SetName("big.example.com", dnstest.Rule{Mode: dnstest.Secure, Truncate: true})
	s.MustAdd("big.example.com. A 192.0.2.80")
	return s
}

// STD-65: every answer is secure, insecure, bogus or a lookup error;
// NXDOMAIN and NODATA are told apart from errors and from each other.
func TestLookupClassification(t *testing.T) {
	srv := newServer(t)
	r := testResolver(srv)
	ctx := context.Background()
	tests := []struct {
		name     string
		qtype    uint16
		status   Status // of the answer, or of the LookupError
		records  int
		nxdomain bool
		err      error // ErrBogus, ErrLookup or nil
		ede      uint16
	}{
		{"mx1.example.com", dns.TypeA, Secure, 1, false, nil, 0},
		{"host.example.net", dns.TypeA, Insecure, 1, false, nil, 0},
		{"nowhere.example.com", dns.TypeA, Secure, 0, true, nil, 0},
		{"nowhere.example.net", dns.TypeA, Insecure, 0, true, nil, 0},
		{"mx2.example.com", dns.TypeAAAA, Secure, 0, false, nil, 0},
		{"host.example.net", dns.TypeAAAA, Insecure, 0, false, nil, 0},
		{"bogus.example.com", dns.TypeA, Bogus, 0, false, ErrBogus, dns.ExtendedErrorCodeDNSBogus},
		{"expired.example.com", dns.TypeA, Bogus, 0, false, ErrBogus, dns.ExtendedErrorCodeSignatureExpired},
		{"servfail.example.com", dns.TypeA, Indeterminate, 0, false, ErrLookup, 0},
		{"unreachable.example.com", dns.TypeA, Indeterminate, 0, false, ErrLookup, dns.ExtendedErrorCodeNoReachableAuthority},
		{"refused.example.com", dns.TypeA, Indeterminate, 0, false, ErrLookup, 0},
		{"slow.example.com", dns.TypeA, Indeterminate, 0, false, ErrLookup, 0},
		{"junk.example.com", dns.TypeA, Indeterminate, 0, false, ErrLookup, 0},
		{"big.example.com", dns.TypeA, Secure, 1, false, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			a, err := r.Lookup(ctx, tc.name, tc.qtype)
			if tc.err != nil {
				var le *LookupError
				if !errors.As(err, &le) || !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want a *LookupError wrapping %v", err, tc.err)
				}
				if a != nil {
					t.Errorf("an answer came with the error: %+v", a)
				}
				if le.Status != tc.status || le.Name != tc.name || le.Type != dns.TypeToString[tc.qtype] {
					t.Errorf("LookupError %+v", le)
				}
				if tc.ede != 0 && (len(le.EDE) != 1 || le.EDE[0].Code != tc.ede) {
					t.Errorf("EDE %v, want code %d", le.EDE, tc.ede)
				}
				if le.ReportResultType() != rfc8460.DNSSECInvalid {
					t.Errorf("ReportResultType = %q", le.ReportResultType())
				}
				if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), srv.Addr) {
					t.Errorf("message does not name the name and the server: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tc.status || len(a.Records) != tc.records || a.NXDomain != tc.nxdomain {
				t.Errorf("got status %v, %d records, NXDOMAIN %v; want %v, %d, %v", a.Status, len(a.Records), a.NXDomain, tc.status, tc.records, tc.nxdomain)
			}
			if a.Name != tc.name || a.Canonical != tc.name || a.Server != srv.Addr || a.Secure() != (tc.status == Secure) {
				t.Errorf("answer %+v", a)
			}
		})
	}
}

// STD-64: the AD bit is believed only from a loopback upstream or one the
// caller listed as trusted.
func TestADTrust(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()

	r := testResolver(srv)
	r.loopbackUntrusted = true // pretend srv is a remote resolver
	a, err := r.Lookup(ctx, "mx1.example.com", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != Insecure {
		t.Errorf("AD from an untrusted upstream gave %v, want insecure", a.Status)
	}

	r.TrustedServers = []string{"127.0.0.1"}
	a, err = r.Lookup(ctx, "mx1.example.com", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != Secure {
		t.Errorf("AD from a listed trusted upstream gave %v, want secure", a.Status)
	}

	// Untrusted, a bogus verdict is still a failure, never a usable answer.
	r.TrustedServers = nil
	if _, err := r.Lookup(ctx, "bogus.example.com", dns.TypeA); !errors.Is(err, ErrBogus) {
		t.Errorf("bogus from an untrusted upstream: %v", err)
	}
}

// STD-64: which configured upstreams are trusted.
func TestConfigTrust(t *testing.T) {
	r := &Resolver{
		Servers:        []string{"127.0.0.1:5353", "[::1]:53", "192.0.2.53", "198.51.100.53:53", "[2001:db8::53]:5353", "::ffff:127.0.0.2"},
		TrustedServers: []string{"198.51.100.53", "[2001:db8::53]:1"},
	}
	ups, timeout, attempts, err := r.config()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"127.0.0.1:5353":        true,
		"[::1]:53":              true,
		"192.0.2.53:53":         false,
		"198.51.100.53:53":      true,
		"[2001:db8::53]:5353":   true,
		"[::ffff:127.0.0.2]:53": true,
	}
	if len(ups) != len(want) {
		t.Fatalf("%d upstreams", len(ups))
	}
	for _, u := range ups {
		if w, ok := want[u.addr.String()]; !ok || w != u.trusted {
			t.Errorf("%s trusted=%v", u.addr, u.trusted)
		}
	}
	if timeout != DefaultTimeout || attempts != DefaultAttempts {
		t.Errorf("timeout %v attempts %d", timeout, attempts)
	}
	for _, bad := range []string{"resolver.example:53", "1.2.3.4:x", ""} {
		if _, _, _, err := (&Resolver{Servers: []string{bad}}).config(); err == nil {
			t.Errorf("server %q accepted", bad)
		}
	}
	if _, _, _, err := (&Resolver{Servers: []string{"127.0.0.1"}, TrustedServers: []string{"x"}}).config(); err == nil {
		t.Error("bad trusted server accepted")
	}
}

// STD-64: resolv.conf gives the upstreams, timeout and attempts; its
// trust-ad option does not make a remote upstream trusted.
func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	conf := "nameserver 127.0.0.53\nnameserver 192.0.2.1\noptions timeout:1 attempts:4 trust-ad\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ups, timeout, attempts, err := (&Resolver{ResolvConf: path}).config()
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 2 || ups[0].addr.String() != "127.0.0.53:53" || !ups[0].trusted || ups[1].trusted {
		t.Errorf("upstreams %+v", ups)
	}
	if timeout != time.Second || attempts != 4 {
		t.Errorf("timeout %v attempts %d", timeout, attempts)
	}

	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	for _, p := range []string{empty, filepath.Join(dir, "missing.conf")} {
		_, err := (&Resolver{ResolvConf: p}).Lookup(context.Background(), "example.com", dns.TypeMX)
		if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v", p, err)
		}
	}
}

// The query asks a validating resolver for its verdict: RD, AD and EDNS0
// with DO, CD clear; a truncated UDP reply is retried over TCP.
func TestQueryFlagsAndTCPFallback(t *testing.T) {
	srv := newServer(t)
	r := testResolver(srv)
	if _, err := r.Lookup(context.Background(), "big.example.com", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	q := srv.Queries()
	if len(q) != 2 || q[0].Net != "udp" || q[1].Net != "tcp" {
		t.Fatalf("queries %+v, want UDP then TCP", q)
	}
	for _, x := range q {
		if !x.EDNS || !x.DO || !x.AD {
			t.Errorf("query %+v lacks EDNS, DO or AD", x)
		}
	}
}

// A reply truncated even over TCP is malformed.
func TestTruncatedOverTCP(t *testing.T) {
	tcpTC := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Truncated = true
		w.WriteMsg(m)
	})
	addr := startRaw(t, tcpTC)
	r := &Resolver{Servers: []string{addr}, Timeout: 250 * time.Millisecond, Attempts: 1}
	_, err := r.Lookup(context.Background(), "example.com", dns.TypeA)
	if !errors.Is(err, ErrLookup) || !errors.Is(err, errTruncatedTCP) {
		t.Errorf("err = %v", err)
	}
}

// startRaw runs a miekg server with handler h on 127.0.0.1 (UDP and TCP).
func startRaw(t *testing.T, h dns.Handler) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		u := &dns.Server{PacketConn: pc, Handler: h}
		tc := &dns.Server{Listener: ln, Handler: h}
		ready := make(chan struct{}, 2)
		u.NotifyStartedFunc = func() { ready <- struct{}{} }
		tc.NotifyStartedFunc = func() { ready <- struct{}{} }
		go u.ActivateAndServe()
		go tc.ActivateAndServe()
		<-ready
		<-ready
		t.Cleanup(func() { u.Shutdown(); tc.Shutdown() })
		return pc.LocalAddr().String()
	}
	t.Fatal("no free port")
	return ""
}

// Replies that answer another question, or come with another ID over TCP,
// are rejected; late UDP replies with another ID are skipped.
func TestMismatchedReplies(t *testing.T) {
	wrongName := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetQuestion("other.example.", dns.TypeA)
		m.Id = req.Id
		m.Response = true
		w.WriteMsg(m)
	})
	r := &Resolver{Servers: []string{startRaw(t, wrongName)}, Timeout: 250 * time.Millisecond, Attempts: 1}
	if _, err := r.Lookup(context.Background(), "example.com", dns.TypeA); !errors.Is(err, errMismatch) {
		t.Errorf("wrong question: %v", err)
	}

	staleFirst := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		stale := new(dns.Msg)
		stale.SetReply(req)
		stale.Id = req.Id + 1
		w.WriteMsg(stale)
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
		w.WriteMsg(m)
	})
	r = &Resolver{Servers: []string{startRaw(t, staleFirst)}, Timeout: time.Second, Attempts: 1}
	a, err := r.Lookup(context.Background(), "example.com", dns.TypeA)
	if err != nil || len(a.Records) != 1 {
		t.Errorf("stale UDP reply first: %v %v", a, err)
	}
}

// STD-65: CNAME chains are followed and their security kept; an insecure
// link makes the whole answer insecure; a bogus link makes it bogus.
func TestCNAMEChains(t *testing.T) {
	for _, follow := range []bool{true, false} {
		srv := newServer(t)
		srv.SetFollowCNAMEs(follow)
		r := testResolver(srv)
		ctx := context.Background()

		a, err := r.Lookup(ctx, "alias2.example.com", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != Secure || a.Canonical != "mx1.example.com" || len(a.CNAMEs) != 2 || len(a.Records) != 1 {
			t.Errorf("follow=%v: %+v", follow, a)
		}
		if a.CNAMEs[0] != (CNAME{"alias2.example.com", "alias.example.com", Secure}) || a.CNAMEs[1] != (CNAME{"alias.example.com", "mx1.example.com", Secure}) {
			t.Errorf("follow=%v: chain %+v", follow, a.CNAMEs)
		}
		if n := srv.Count("", 0); (follow && n != 1) || (!follow && n != 3) {
			t.Errorf("follow=%v: %d queries", follow, n)
		}

		a, err = r.Lookup(ctx, "toinsecure.example.com", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != Insecure || a.Canonical != "host.example.net" {
			t.Errorf("follow=%v: chain into an unsigned zone: %+v", follow, a)
		}
		if !follow && (a.CNAMEs[0].Status != Secure) {
			t.Errorf("the first link was validated separately and is secure: %+v", a.CNAMEs)
		}

		if _, err := r.Lookup(ctx, "tobogus.example.com", dns.TypeA); !errors.Is(err, ErrBogus) {
			t.Errorf("follow=%v: chain into a bogus name: %v", follow, err)
		}
		if _, err := r.Lookup(ctx, "loop1.example.com", dns.TypeA); !errors.Is(err, ErrLookup) {
			t.Errorf("follow=%v: loop: %v", follow, err)
		}
		a, err = r.Lookup(ctx, "alias.example.com", dns.TypeTXT)
		if err != nil || len(a.Records) != 0 || a.NXDomain || a.Canonical != "mx1.example.com" {
			t.Errorf("follow=%v: NODATA at the target: %+v %v", follow, a, err)
		}
	}
}

// A reply stopping at a CNAME without an SOA is followed up, and a
// reply whose answer holds other names' records is not believed for them.
func TestFollowHelper(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	c1, _ := dns.NewRR("a.example. CNAME b.example.")
	stray, _ := dns.NewRR("c.example. A 192.0.2.1")
	m.Answer = []dns.RR{c1, stray}
	final, links, rrs := follow(m, "a.example.", dns.TypeA)
	if final != "b.example." || len(links) != 1 || len(rrs) != 0 {
		t.Errorf("follow = %q %v %v", final, links, rrs)
	}
}

// STD-66, STD-67, STD-68: MX answers keep preference order, tell secure
// from insecure, report the null MX, and a failed lookup is an error.
func TestLookupMX(t *testing.T) {
	srv := newServer(t)
	r := testResolver(srv)
	ctx := context.Background()

	a, err := r.LookupMX(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}, {"mx3.example.com", 20}}
	if len(a.MX) != 3 || a.MX[0] != want[0] || a.MX[1] != want[1] || a.MX[2] != want[2] {
		t.Errorf("MX %v, want %v", a.MX, want)
	}
	if a.Status != Secure || a.NullMX {
		t.Errorf("status %v null %v", a.Status, a.NullMX)
	}

	a, err = r.LookupMX(ctx, "example.net")
	if err != nil || a.Status != Insecure || len(a.MX) != 1 {
		t.Errorf("insecure MX: %+v %v", a, err)
	}

	a, err = r.LookupMX(ctx, "nullmx.example.com")
	if err != nil || !a.NullMX || len(a.MX) != 0 {
		t.Errorf("null MX: %+v %v", a, err)
	}

	a, err = r.LookupMX(ctx, "mx1.example.com")
	if err != nil || a.NullMX || len(a.MX) != 0 || a.NXDomain || a.Status != Secure {
		t.Errorf("NODATA: %+v %v", a, err)
	}
	a, err = r.LookupMX(ctx, "nowhere.example.com")
	if err != nil || !a.NXDomain {
		t.Errorf("NXDOMAIN: %+v %v", a, err)
	}

	for _, name := range []string{"servfail.example.com", "slow.example.com", "bogus.example.com"} {
		if a, err := r.LookupMX(ctx, name); err == nil || a != nil {
			t.Errorf("%s: %+v %v, want an error and no answer", name, a, err)
		}
	}
}

// STD-34, STD-95: names are queried as A-labels.
func TestQueryNamesAreALabels(t *testing.T) {
	srv := newServer(t)
	r := testResolver(srv)
	a, err := r.LookupMX(context.Background(), "Bücher.Example.COM.")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "xn--bcher-kva.example.com" || len(a.MX) != 1 {
		t.Errorf("answer %+v", a)
	}
	if srv.Count("xn--bcher-kva.example.com", dns.TypeMX) != 1 {
		t.Errorf("queries %+v", srv.Queries())
	}
	for _, bad := range []string{"", "a..b", "192.0.2.1", "_25._tcp", "_x!._tcp.example.com", "ex ample.com", strings.Repeat("a.", 130) + "com"} {
		_, err := r.Lookup(context.Background(), bad, dns.TypeA)
		if !errors.Is(err, ErrLookup) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	n, err := toQueryName("_25._TCP.MX.Example.com")
	if err != nil || n != "_25._tcp.mx.example.com" {
		t.Errorf("toQueryName = %q, %v", n, err)
	}
}

func TestLookupIP(t *testing.T) {
	srv := newServer(t)
	srv.SetName("bogusaaaa.example.com", dnstest.Rule{Mode: dnstest.Secure})
	r := testResolver(srv)
	ctx := context.Background()

	a, err := r.LookupIP(ctx, "alias.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if len(a.Addrs) != 2 || a.Addrs[0] != want[0] || a.Addrs[1] != want[1] || a.Status != Secure || a.Canonical != "mx1.example.com" || a.Type != 0 {
		t.Errorf("LookupIP = %+v", a)
	}
	a, err = r.LookupIP(ctx, "v4only.example.com")
	if err != nil || len(a.Addrs) != 1 || a.Status != Secure {
		t.Errorf("v4only: %+v %v", a, err)
	}
	a, err = r.LookupA(ctx, "host.example.net")
	if err != nil || len(a.Addrs) != 1 || a.Status != Insecure {
		t.Errorf("LookupA insecure: %+v %v", a, err)
	}
	a, err = r.LookupAAAA(ctx, "mx1.example.com")
	if err != nil || len(a.Addrs) != 1 || !a.Addrs[0].Is6() {
		t.Errorf("LookupAAAA: %+v %v", a, err)
	}
	a, err = r.LookupIP(ctx, "nowhere.example.com")
	if err != nil || !a.NXDomain || len(a.Addrs) != 0 {
		t.Errorf("NXDOMAIN: %+v %v", a, err)
	}

	// A bogus AAAA with a good A still fails the whole lookup.
	srv2 := dnstest.New(t)
	srv2.MustAdd("h.example.com. A 192.0.2.1", "h.example.com. AAAA 2001:db8::1")
	srv2.SetDefault(dnstest.Rule{Mode: dnstest.Secure})
	failAAAA := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if req.Question[0].Qtype == dns.TypeAAAA {
			m.Rcode = dns.RcodeServerFailure
			m.SetEdns0(1232, true)
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus})
		} else {
			m.AuthenticatedData = true
			a, _ := dns.NewRR("h.example.com. A 192.0.2.1")
			m.Answer = []dns.RR{a}
		}
		w.WriteMsg(m)
	})
	r2 := &Resolver{Servers: []string{startRaw(t, failAAAA)}, Timeout: 250 * time.Millisecond, Attempts: 1}
	if _, err := r2.LookupIP(ctx, "h.example.com"); !errors.Is(err, ErrBogus) {
		t.Errorf("bogus AAAA: %v", err)
	}
}

// mta_sts takes a net.Resolver-shaped interface for TXT lookups.
type txtResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

var (
	_ txtResolver = (*Resolver)(nil)
	_ txtResolver = (*net.Resolver)(nil)
)

// LookupTXT has net.Resolver's semantics.
func TestLookupTXT(t *testing.T) {
	srv := newServer(t)
	r := testResolver(srv)
	ctx := context.Background()

	got, err := r.LookupTXT(ctx, "example.com")
	if err != nil || len(got) != 1 || got[0] != "v=STSv1; id=20240101" {
		t.Errorf("LookupTXT = %q, %v", got, err)
	}
	got, err = r.LookupTXT(ctx, "split.example.com")
	if err != nil || len(got) != 1 || got[0] != "v=spf1 -all" {
		t.Errorf("split strings: %q, %v", got, err)
	}
	got, err = r.LookupTXT(ctx, "escaped.example.com")
	if err != nil || len(got) != 1 || got[0] != "a\"b\\c\xff" {
		t.Errorf("escapes: %q, %v", got, err)
	}
	for _, name := range []string{"nowhere.example.com", "mx1.example.com"} {
		_, err = r.LookupTXT(ctx, name)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound || de.Name != name {
			t.Errorf("%s: err = %#v, want a not-found *net.DNSError", name, err)
		}
	}
	_, err = r.LookupTXT(ctx, "servfail.example.com")
	var de *net.DNSError
	var le *LookupError
	if !errors.As(err, &de) || de.IsNotFound || !de.IsTemporary || !errors.As(err, &le) || !errors.Is(err, ErrLookup) {
		t.Errorf("servfail: %#v", err)
	}
	_, err = r.LookupTXT(ctx, "slow.example.com")
	if !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("timeout: %#v", err)
	}
	_, err = r.LookupTXT(ctx, "bogus.example.com")
	if !errors.As(err, &de) || de.IsTemporary || !errors.Is(err, ErrBogus) {
		t.Errorf("bogus: %#v", err)
	}
}

func TestUnescapeTXT(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:      "plain",
		`a\"b`:       `a"b`,
		`a\\b`:       `a\b`,
		`\255\000x`:  "\xff\x00x",
		`\256`:       "256",
		`\12`:        "12",
		`trailing\`:  `trailing\`,
		`\;\ \(\)\.`: `; ().`,
	} {
		if got := unescapeTXT(in); got != want {
			t.Errorf("unescapeTXT(%q) = %q, want %q", in, got, want)
		}
	}
}

// Retries: a server that does not answer is skipped for the next one; one
// that answers SERVFAIL is asked once per lookup; attempts are bounded.
func TestRetries(t *testing.T) {
	good := newServer(t)
	dead := dnstest.New(t)
	dead.SetDefault(dnstest.Rule{Mode: dnstest.Drop})
	failing := dnstest.New(t)
	failing.SetDefault(dnstest.Rule{Mode: dnstest.ServFail})
	ctx := context.Background()

	r := &Resolver{Servers: []string{dead.Addr, failing.Addr, good.Addr}, Timeout: 100 * time.Millisecond, Attempts: 2}
	a, err := r.Lookup(ctx, "mx1.example.com", dns.TypeA)
	if err != nil || a.Server != good.Addr || a.Status != Secure {
		t.Fatalf("%+v %v", a, err)
	}

	r = &Resolver{Servers: []string{dead.Addr, failing.Addr}, Timeout: 100 * time.Millisecond, Attempts: 3}
	_, err = r.Lookup(ctx, "mx1.example.com", dns.TypeA)
	if !errors.Is(err, ErrLookup) {
		t.Errorf("err = %v", err)
	}
	if n := dead.Count("mx1.example.com", dns.TypeA); n != 4 {
		t.Errorf("the silent server was asked %d times, want 4 (1 + 3 attempts)", n)
	}
	if n := failing.Count("mx1.example.com", dns.TypeA); n != 2 {
		t.Errorf("the failing server was asked %d times, want 2 (once per lookup)", n)
	}

	// A bogus verdict from one server is reported even if another only
	// failed.
	bogus := dnstest.New(t)
	bogus.SetDefault(dnstest.Rule{Mode: dnstest.Bogus})
	r = &Resolver{Servers: []string{bogus.Addr, failing.Addr}, Timeout: 100 * time.Millisecond, Attempts: 1}
	if _, err := r.Lookup(ctx, "mx1.example.com", dns.TypeA); !errors.Is(err, ErrBogus) {
		t.Errorf("err = %v", err)
	}
}

// Cancelling the context interrupts a lookup in flight.
func TestCancel(t *testing.T) {
	srv := newServer(t)
	r := &Resolver{Servers: []string{srv.Addr}, Timeout: time.Minute, Attempts: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Lookup(ctx, "slow.example.com", dns.TypeA)
		done <- err
	}()
	for srv.Count("slow.example.com", dns.TypeA) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrLookup) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the lookup did not stop when its context was cancelled")
	}
	if n := srv.Count("slow.example.com", 0); n != 1 {
		t.Errorf("%d queries after cancellation, want 1", n)
	}

	// An expired context fails at once.
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := r.Lookup(ctx, "mx1.example.com", dns.TypeA); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestStatusStrings(t *testing.T) {
	for s, want := range map[Status]string{Indeterminate: "indeterminate", Insecure: "insecure", Secure: "secure", Bogus: "bogus", 9: "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
	if weaker(Secure, Insecure) != Insecure || weaker(Bogus, Insecure) != Bogus || weaker(Secure, Secure) != Secure || weaker(Indeterminate, Insecure) != Indeterminate {
		t.Error("weaker")
	}
	e := ExtendedError{Code: 6, Text: "x"}
	if e.String() != "EDE 6 (DNSSEC Bogus): x" || !e.DNSSEC() || (ExtendedError{Code: 22}).DNSSEC() {
		t.Errorf("%v", e)
	}
}

// An empty answer that is a referral comes from an authoritative server,
// not a recursive resolver: it is an error, not NODATA.
func TestReferralIsAnError(t *testing.T) {
	referral := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		ns, _ := dns.NewRR("example.com. NS ns1.example.com.")
		m.Ns = []dns.RR{ns}
		w.WriteMsg(m)
	})
	r := &Resolver{Servers: []string{startRaw(t, referral)}, Timeout: 250 * time.Millisecond, Attempts: 1}
	_, err := r.Lookup(context.Background(), "mx.example.com", dns.TypeTLSA)
	if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), "referral") {
		t.Errorf("err = %v", err)
	}
}
