package signedzone

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func testHierarchy(t *testing.T, nsec3 *NSEC3Params) (*Zone, *Zone, *Server) {
	t.Helper()
	root := NewZone(".", MustKey(".", dns.ECDSAP256SHA256))
	ex := NewZone("example.", MustKey("example.", dns.ED25519))
	ex.NSEC3 = nsec3
	ex.MustAdd(
		"example. MX 10 mx.example.",
		"mx.example. A 192.0.2.1",
		"a.b.example. A 192.0.2.2",
		"*.w.example. TXT \"w\"",
		"c.example. CNAME mx.example.",
	)
	ex.MustSign()
	root.Delegate(ex, dns.SHA256)
	root.MustSign()
	return root, ex, New(t, root, ex)
}

func ask(t *testing.T, s *Server, name string, qt uint16, do bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qt)
	q.SetEdns0(1232, do)
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second}
	m, _, err := c.Exchange(q, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every signature the zone makes verifies with its keys, and every NSEC
// chain closes: following NextDomain from the apex visits every name once.
func TestSignAndChain(t *testing.T) {
	for _, p := range []*NSEC3Params{nil, {Iterations: 1, Salt: "ab"}} {
		_, ex, _ := testHierarchy(t, p)
		ex.mu.Lock()
		keys := map[uint16]*dns.DNSKEY{}
		for _, k := range append(ex.KSKs, ex.ZSKs...) {
			keys[k.Tag()] = k.DNSKEY
		}
		checked := 0
		for name, bytype := range ex.sigs {
			for t2, sigs := range bytype {
				set := ex.rrsetLocked(name, t2)
				for _, s := range sigs {
					if err := s.Verify(keys[s.KeyTag], set); err != nil {
						t.Errorf("%s %s: %v", name, dns.TypeToString[t2], err)
					}
					checked++
				}
			}
		}
		if p == nil {
			seen := map[string]bool{}
			for n := ex.Origin; !seen[n]; {
				seen[n] = true
				n = ex.nodes[n][dns.TypeNSEC][0].(*dns.NSEC).NextDomain
			}
			if len(seen) != len(ex.names()) {
				t.Errorf("the NSEC chain visits %d names of %d", len(seen), len(ex.names()))
			}
		} else if len(ex.nsec3) != 7 { // apex, mx, a.b, b (empty non-terminal), *.w, w, c
			t.Errorf("%d NSEC3 records, want 7", len(ex.nsec3))
		}
		ex.mu.Unlock()
		if checked == 0 {
			t.Error("no signatures")
		}
	}
}

// The server answers as a recursive resolver: DS from the parent, CNAMEs
// followed, wildcards expanded, signatures and denial records only with
// DO, never AD.
func TestServerAnswers(t *testing.T) {
	_, _, s := testHierarchy(t, nil)
	m := ask(t, s, "example.", dns.TypeDS, true)
	if len(m.Answer) != 2 || m.Answer[1].(*dns.RRSIG).SignerName != "." {
		t.Errorf("DS answer %v", m.Answer)
	}
	m = ask(t, s, "c.example.", dns.TypeA, true)
	if len(m.Answer) != 4 || m.AuthenticatedData {
		t.Errorf("CNAME answer %v (AD %v)", m.Answer, m.AuthenticatedData)
	}
	m = ask(t, s, "x.w.example.", dns.TypeTXT, true)
	if len(m.Answer) != 2 || m.Answer[0].Header().Name != "x.w.example." || len(m.Ns) != 2 {
		t.Errorf("wildcard answer %v / %v", m.Answer, m.Ns)
	}
	m = ask(t, s, "nowhere.example.", dns.TypeA, true)
	if m.Rcode != dns.RcodeNameError || len(m.Ns) < 4 {
		t.Errorf("NXDOMAIN %v", m)
	}
	m = ask(t, s, "nowhere.example.", dns.TypeA, false)
	for _, rr := range m.Ns {
		if t2 := rr.Header().Rrtype; t2 == dns.TypeRRSIG || t2 == dns.TypeNSEC {
			t.Errorf("without DO: %v", rr)
		}
	}
	m = ask(t, s, "example.org.", dns.TypeA, true)
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("a name under the root: %v", dns.RcodeToString[m.Rcode])
	}
	if n := s.Count("example.", dns.TypeDS); n != 1 {
		t.Errorf("Count = %d", n)
	}
}

// A reply larger than the client's UDP size is truncated over UDP.
func TestServerTruncates(t *testing.T) {
	ex := NewZone("example.", MustKey("example.", dns.ECDSAP256SHA256))
	for i := range 60 {
		ex.MustAdd("big.example. TXT \"" + string(rune('a'+i%26)) + "0123456789012345678901234567890123456789\"")
	}
	s := New(t, ex)
	q := new(dns.Msg)
	q.SetQuestion("big.example.", dns.TypeTXT)
	q.SetEdns0(1232, true)
	m, _, err := (&dns.Client{Net: "udp", Timeout: 10 * time.Second}).Exchange(q, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Truncated || len(m.Answer) != 0 {
		t.Errorf("UDP reply not truncated: TC %v, %d records", m.Truncated, len(m.Answer))
	}
	if m := ask(t, s, "big.example.", dns.TypeTXT, true); m.Truncated || len(m.Answer) != 61 {
		t.Errorf("TCP reply: TC %v, %d records", m.Truncated, len(m.Answer))
	}
}
