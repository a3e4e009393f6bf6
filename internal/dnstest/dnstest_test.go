package dnstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ask sends one query to the server over network, with EDNS and DO when do
// is set.
func ask(t *testing.T, s *Server, network, name string, qtype uint16, do bool) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if do {
		m.SetEdns0(1232, true)
	}
	c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, s.Addr)
	return r, err
}

func newZone(t *testing.T) *Server {
	s := New(t)
	s.MustAdd(
		"example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 60",
		"example.org. MX 10 mx.example.org.",
		"mx.example.org. A 192.0.2.1",
		"mx.example.org. AAAA 2001:db8::1",
		"alias.example.org. CNAME mx.example.org.",
		"alias2.example.org. CNAME alias.example.org.",
		"out.example.org. CNAME mx.unsigned.test.",
		"mx.unsigned.test. A 192.0.2.9",
		"to-bogus.example.org. CNAME bad.example.org.",
		"bad.example.org. A 192.0.2.66",
		"loop1.example.org. CNAME loop2.example.org.",
		"loop2.example.org. CNAME loop1.example.org.",
		"a.b.ent.example.org. A 192.0.2.7",
	)
	s.SetZone("example.org", Rule{Mode: Secure})
	s.SetName("bad.example.org", Rule{Mode: Bogus, EDEText: "signature expired"})
	return s
}

func TestModes(t *testing.T) {
	s := newZone(t)
	s.SetName("servfail.example.org", Rule{Mode: ServFail})
	s.SetName("servfail-ede.example.org", Rule{Mode: ServFail, EDE: dns.ExtendedErrorCodeNoReachableAuthority})
	s.SetName("expired.example.org", Rule{Mode: Bogus, EDE: dns.ExtendedErrorCodeSignatureExpired})
	s.SetName("refused.example.org", Rule{Mode: Refused})

	tests := []struct {
		name   string
		qtype  uint16
		do     bool
		rcode  int
		ad     bool
		answer int
		soa    bool
		ede    int // -1: no EDE option
	}{
		{"mx.example.org", dns.TypeA, true, dns.RcodeSuccess, true, 1, false, -1},
		{"mx.example.org", dns.TypeA, false, dns.RcodeSuccess, false, 1, false, -1},
		{"mx.unsigned.test", dns.TypeA, true, dns.RcodeSuccess, false, 1, false, -1},
		{"mx.example.org", dns.TypeTXT, true, dns.RcodeSuccess, true, 0, true, -1},
		{"nowhere.example.org", dns.TypeA, true, dns.RcodeNameError, true, 0, true, -1},
		{"ent.example.org", dns.TypeA, true, dns.RcodeSuccess, true, 0, true, -1},
		{"alias2.example.org", dns.TypeA, true, dns.RcodeSuccess, true, 3, false, -1},
		{"out.example.org", dns.TypeA, true, dns.RcodeSuccess, false, 2, false, -1},
		{"bad.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, int(dns.ExtendedErrorCodeDNSBogus)},
		{"bad.example.org", dns.TypeA, false, dns.RcodeServerFailure, false, 0, false, -1},
		{"to-bogus.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, int(dns.ExtendedErrorCodeDNSBogus)},
		{"expired.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, int(dns.ExtendedErrorCodeSignatureExpired)},
		{"servfail.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, -1},
		{"servfail-ede.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, int(dns.ExtendedErrorCodeNoReachableAuthority)},
		{"refused.example.org", dns.TypeA, true, dns.RcodeRefused, false, 0, false, -1},
		{"loop1.example.org", dns.TypeA, true, dns.RcodeServerFailure, false, 0, false, -1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/do=%v", tc.name, dns.TypeToString[tc.qtype], tc.do), func(t *testing.T) {
			r, err := ask(t, s, "udp", tc.name, tc.qtype, tc.do)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad || len(r.Answer) != tc.answer {
				t.Fatalf("rcode %s AD %v answers %d, want %s %v %d\n%v",
					dns.RcodeToString[r.Rcode], r.AuthenticatedData, len(r.Answer), dns.RcodeToString[tc.rcode], tc.ad, tc.answer, r)
			}
			hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
			if hasSOA != tc.soa {
				t.Errorf("authority %v, want SOA: %v", r.Ns, tc.soa)
			}
			ede := -1
			if o := r.IsEdns0(); o != nil {
				for _, opt := range o.Option {
					if e, ok := opt.(*dns.EDNS0_EDE); ok {
						ede = int(e.InfoCode)
					}
				}
			}
			if ede != tc.ede {
				t.Errorf("EDE %d, want %d", ede, tc.ede)
			}
			if tc.do && r.IsEdns0() == nil {
				t.Errorf("no OPT record in the reply to an EDNS query")
			}
		})
	}
}

func TestSOAIsTheZones(t *testing.T) {
	s := newZone(t)
	r, err := ask(t, s, "udp", "nowhere.example.org", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if soa, ok := r.Ns[0].(*dns.SOA); !ok || soa.Ns != "ns.example.org." {
		t.Errorf("authority %v, want the zone's SOA", r.Ns)
	}
	r, err = ask(t, s, "udp", "nothing.unsigned.test", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Name != "." {
		t.Errorf("reply %v, want NXDOMAIN with a root SOA", r)
	}
}

func TestDrop(t *testing.T) {
	s := newZone(t)
	s.SetName("slow.example.org", Rule{Mode: Drop})
	for _, network := range []string{"udp", "tcp"} {
		_, err := ask(t, s, network, "slow.example.org", dns.TypeA, true)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err = %v, want a timeout", network, err)
		}
	}
	if n := s.Count("slow.example.org", dns.TypeA); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestMalformed(t *testing.T) {
	s := newZone(t)
	s.SetName("junk.example.org", Rule{Mode: Malformed})
	for _, network := range []string{"udp", "tcp"} {
		_, err := ask(t, s, network, "junk.example.org", dns.TypeA, true)
		if err == nil {
			t.Errorf("%s: a malformed reply was accepted", network)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: err = %v, want an unpack error, not a timeout", network, err)
		}
	}
}

func TestTruncate(t *testing.T) {
	s := newZone(t)
	s.SetName("mx.example.org", Rule{Mode: Secure, Truncate: true})
	r, err := ask(t, s, "udp", "mx.example.org", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP reply TC=%v with %d answers, want TC and none", r.Truncated, len(r.Answer))
	}
	r, err = ask(t, s, "tcp", "mx.example.org", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 1 || !r.AuthenticatedData {
		t.Errorf("TCP reply %v, want the full secure answer", r)
	}
	q := s.Queries()
	if len(q) != 2 || q[0].Net != "udp" || q[1].Net != "tcp" || !q[0].DO || !q[0].EDNS {
		t.Errorf("log %+v", q)
	}
}

func TestSizeTruncation(t *testing.T) {
	s := New(t)
	for i := range 40 {
		s.MustAdd(fmt.Sprintf("big.test. TXT \"%s %d\"", strings.Repeat("x", 60), i))
	}
	r, err := ask(t, s, "udp", "big.test", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Errorf("a %d-answer reply to a 512-octet client was not truncated", len(r.Answer))
	}
	r, err = ask(t, s, "tcp", "big.test", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 40 {
		t.Errorf("TCP reply TC=%v with %d answers, want 40", r.Truncated, len(r.Answer))
	}
}

func TestFollowCNAMEs(t *testing.T) {
	s := newZone(t)
	s.SetFollowCNAMEs(false)
	r, err := ask(t, s, "udp", "alias2.example.org", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || len(r.Ns) != 0 {
		t.Errorf("reply %v, want only the first CNAME", r)
	}
}

func TestRuleOrder(t *testing.T) {
	s := New(t)
	s.MustAdd("x.a.b.example. A 192.0.2.1", "y.b.example. A 192.0.2.2", "z.example. A 192.0.2.3")
	s.SetDefault(Rule{Mode: Secure})
	s.SetZone("b.example", Rule{Mode: Insecure})
	s.SetZone("a.b.example", Rule{Mode: Secure})
	s.SetName("y.b.example", Rule{Mode: Secure})
	for name, ad := range map[string]bool{"x.a.b.example": true, "y.b.example": true, "z.example": true, "w.b.example": false} {
		r, err := ask(t, s, "udp", name, dns.TypeA, true)
		if err != nil {
			t.Fatal(err)
		}
		if r.AuthenticatedData != ad {
			t.Errorf("%s: AD %v, want %v", name, r.AuthenticatedData, ad)
		}
	}
}

func TestAddErrorsAndRemove(t *testing.T) {
	s := New(t)
	if err := s.Add("not a record"); err == nil {
		t.Error("Add accepted a bad record")
	}
	s.MustAdd("h.test. A 192.0.2.1", "h.test. TXT \"x\"")
	s.Remove("h.test", dns.TypeTXT)
	r, _ := ask(t, s, "udp", "h.test", dns.TypeTXT, false)
	if r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("after Remove: %v, want NODATA", r)
	}
	s.Remove("h.test", 0)
	r, _ = ask(t, s, "udp", "h.test", dns.TypeA, false)
	if r == nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("after Remove all: %v, want NXDOMAIN", r)
	}
	if n := s.Count("", 0); n != 2 {
		t.Errorf("Count all = %d, want 2", n)
	}
	s.ResetLog()
	if n := s.Count("", 0); n != 0 {
		t.Errorf("Count after ResetLog = %d", n)
	}
}

func TestModeString(t *testing.T) {
	if Bogus.String() != "bogus" || Mode(99).String() != "Mode(99)" {
		t.Error(Bogus.String(), Mode(99).String())
	}
}
