package dane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

const (
	trustHost = "mx.example.com"
	trustTLSA = "_25._tcp.mx.example.com"
)

// trustZone adds the records every upstream in the trust tests serves:
// a host with secure addresses and a DANE-EE record.
func trustZone(s *dnstest.Server) {
	s.MustAdd(
		"example.com. SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60",
		trustHost+". A 192.0.2.25",
		trustTLSA+". TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
	)
	s.SetZone("example.com", dnstest.Rule{Mode: dnstest.Secure})
}

// lateFailer is a trusted upstream that drops the first TLSA query (a
// timeout in round one) and answers SERVFAIL to the next (round two), so
// that an untrusted upstream later in the list would get the chance to
// answer first in both rounds.
type lateFailer struct {
	mu   sync.Mutex
	tlsa int
}

func (l *lateFailer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	l.mu.Lock()
	l.tlsa++
	n := l.tlsa
	l.mu.Unlock()
	if n == 1 {
		return // dropped: the client times out
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	w.WriteMsg(m)
}

// secureAddrs is a secure address answer for trustHost, as LookupIP gives
// it from a trusted upstream: these tests are about the TLSA query.
func secureAddrs() *IPAnswer {
	a := &IPAnswer{Answer: Answer{Name: trustHost, Canonical: trustHost, Status: Secure}}
	a.Addrs = append(a.Addrs, netip.MustParseAddr("192.0.2.25"))
	return a
}

// STD-64, STD-65, STD-71: once a trusted upstream has failed a TLSA query,
// whatever the failure, the order of the upstreams and the number of
// rounds, no untrusted upstream decides it: the host is unusable, never
// "no DANE". Issue 9 item 1.
func TestUntrustedNeverOverrulesTrustedFailure(t *testing.T) {
	type failMode struct {
		name string
		rule dnstest.Rule // for the TLSA name at the trusted upstream
		late bool         // use lateFailer instead of a rule
		want error
	}
	modes := []failMode{
		{name: "servfail", rule: dnstest.Rule{Mode: dnstest.ServFail}, want: ErrLookup},
		{name: "servfail-ede-unreachable", rule: dnstest.Rule{Mode: dnstest.ServFail, EDE: dns.ExtendedErrorCodeNoReachableAuthority}, want: ErrLookup},
		{name: "servfail-ede-bogus", rule: dnstest.Rule{Mode: dnstest.Bogus}, want: ErrBogus},
		{name: "servfail-ede-expired", rule: dnstest.Rule{Mode: dnstest.Bogus, EDE: dns.ExtendedErrorCodeSignatureExpired}, want: ErrBogus},
		{name: "refused", rule: dnstest.Rule{Mode: dnstest.Refused}, want: ErrLookup},
		{name: "timeout", rule: dnstest.Rule{Mode: dnstest.Drop}, want: ErrLookup},
		{name: "malformed", rule: dnstest.Rule{Mode: dnstest.Malformed}, want: ErrLookup},
		{name: "timeout-then-servfail", late: true, want: ErrLookup},
	}
	for _, m := range modes {
		for _, untrustedFirst := range []bool{false, true} {
			for _, attempts := range []int{1, 2} {
				m, untrustedFirst, attempts := m, untrustedFirst, attempts
				name := fmt.Sprintf("%s/untrusted-first=%v/attempts=%d", m.name, untrustedFirst, attempts)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					// The untrusted upstream has the records and even sets
					// AD: it must not be asked at all.
					untrusted := dnstest.New(t)
					trustZone(untrusted)

					var trustedAddr string
					if m.late {
						trustedAddr = startRaw(t, &lateFailer{})
					} else {
						trusted := dnstest.New(t)
						trustZone(trusted)
						trusted.SetName(trustTLSA, m.rule)
						trustedAddr = trusted.Addr
					}
					servers := []string{trustedAddr, untrusted.Addr}
					if untrustedFirst {
						servers = []string{untrusted.Addr, trustedAddr}
					}
					// Upstreams that answer get a generous timeout, so that a
					// loaded machine cannot turn an answer into a timeout;
					// those that never answer a short one, which only makes
					// the test faster: the outcome is the same either way.
					timeout := 10 * time.Second
					if m.rule.Mode == dnstest.Drop || m.late {
						timeout = time.Second
					}
					r := &Resolver{Servers: servers, Timeout: timeout, Attempts: attempts,
						untrustedServers: []string{untrusted.Addr}}
					h, err := r.LookupHostTLSA(context.Background(), secureAddrs(), 25)
					if !errors.Is(err, m.want) {
						t.Errorf("LookupHostTLSA error = %v, want %v", err, m.want)
					}
					if h == nil || h.Decision != HostUnusable {
						t.Errorf("decision = %+v, want host unusable", h)
					}
					if n := untrusted.Count("", 0); n != 0 {
						t.Errorf("the untrusted upstream was asked %d times, want never (queries %+v)", n, untrusted.Queries())
					}
				})
			}
		}
	}
}

// STD-64: the rule "only trusted upstreams when one is configured" leaves
// the other paths as they were: a trusted upstream that answers decides;
// without any trusted upstream the untrusted ones are asked and their
// answers are insecure; among trusted upstreams a plain SERVFAIL is
// followed by the next one, while a bogus verdict yields only to a secure
// answer.
func TestUpstreamSelection(t *testing.T) {
	secure := dnstest.New(t)
	trustZone(secure)
	insecure := dnstest.New(t)
	trustZone(insecure)
	insecure.SetZone("example.com", dnstest.Rule{Mode: dnstest.Insecure})
	servfail := dnstest.New(t)
	trustZone(servfail)
	servfail.SetName(trustTLSA, dnstest.Rule{Mode: dnstest.ServFail})
	bogus := dnstest.New(t)
	trustZone(bogus)
	bogus.SetName(trustTLSA, dnstest.Rule{Mode: dnstest.Bogus})

	tests := []struct {
		name      string
		servers   []*dnstest.Server
		untrusted []*dnstest.Server
		decision  Decision
		err       error
		notAsked  []*dnstest.Server
	}{
		{"trusted answers, untrusted first in the list", []*dnstest.Server{insecure, secure}, []*dnstest.Server{insecure}, DANERequired, nil, []*dnstest.Server{insecure}},
		{"no trusted upstream: untrusted answers, insecure", []*dnstest.Server{insecure, secure}, []*dnstest.Server{insecure, secure}, NoDANE, nil, nil},
		{"trusted servfail, next trusted secure", []*dnstest.Server{servfail, secure}, nil, DANERequired, nil, nil},
		{"trusted bogus, next trusted secure", []*dnstest.Server{bogus, secure}, nil, DANERequired, nil, nil},
		{"trusted bogus, next trusted insecure", []*dnstest.Server{bogus, insecure}, nil, HostUnusable, ErrBogus, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Timeout: 10 * time.Second, Attempts: 1}
			for _, s := range tc.servers {
				r.Servers = append(r.Servers, s.Addr)
				s.ResetLog()
			}
			for _, s := range tc.untrusted {
				r.untrustedServers = append(r.untrustedServers, s.Addr)
			}
			h, err := r.LookupHostTLSA(context.Background(), secureAddrs(), 25)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if h.Decision != tc.decision {
				t.Errorf("decision %v, want %v", h.Decision, tc.decision)
			}
			for _, s := range tc.notAsked {
				if n := s.Count("", 0); n != 0 {
					t.Errorf("%s was asked %d times", s.Addr, n)
				}
			}
		})
	}
}
