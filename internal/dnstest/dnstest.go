// Package dnstest runs an in-process DNS server for tests. It plays the part
// of a validating recursive resolver on the loopback interface: it answers
// from zones defined in Go, follows CNAME chains the way a recursive resolver
// does, and reports the DNSSEC outcome the way such a resolver reports it to
// a stub: the AD bit for secure data, no AD for unsigned data, SERVFAIL with
// an RFC 8914 extended error for data that fails validation.
//
// No signatures are made or checked. A client that trusts the AD bit of a
// loopback resolver (as package dane does) cannot tell the difference, and
// the tests stay fast.
//
// A typical test:
//
//	srv := dnstest.New(t)
//	srv.MustAdd(
//		"example.org. MX 10 mx.example.org.",
//		"mx.example.org. A 192.0.2.1",
//	)
//	srv.SetZone("example.org", dnstest.Rule{Mode: dnstest.Secure})
//	srv.SetName("broken.example.org", dnstest.Rule{Mode: dnstest.Bogus})
//	// point the code under test at srv.Addr
//
// Per name or per zone the server can answer securely or insecurely, fail
// validation (Bogus), fail without an extended error (ServFail), refuse,
// never answer (Drop, for timeouts), send bytes that are not a DNS message
// (Malformed), and truncate UDP answers so that the client must retry over
// TCP. Every query received is logged and can be counted.
package dnstest

import (
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Mode is how the server, acting as a validating resolver, answers for a
// name.
type Mode uint8

const (
	// Insecure answers without the AD bit, as for an unsigned zone. It is the
	// zero value.
	Insecure Mode = iota
	// Secure answers with the AD bit set (when the query set DO or AD), as
	// for data that validated.
	Secure
	// Bogus answers SERVFAIL with an RFC 8914 extended DNS error of the
	// DNSSEC kind (6, DNSSEC Bogus, unless Rule.EDE says otherwise), as a
	// validating resolver does for data that fails validation.
	Bogus
	// ServFail answers SERVFAIL, with an extended error only if Rule.EDE is
	// set.
	ServFail
	// Refused answers REFUSED.
	Refused
	// Drop never answers, so that the client times out.
	Drop
	// Malformed answers with bytes that carry the query's ID but do not
	// parse as a DNS message.
	Malformed
)

var modeNames = [...]string{"insecure", "secure", "bogus", "servfail", "refused", "drop", "malformed"}

// String returns the mode's name.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// severity orders the modes so that the worst one on a CNAME chain decides
// the answer, as it does with a real validating resolver.
func (m Mode) severity() int {
	switch m {
	case Secure:
		return 0
	case Insecure:
		return 1
	case ServFail:
		return 2
	case Bogus:
		return 3
	case Refused:
		return 4
	case Malformed:
		return 5
	case Drop:
		return 6
	}
	return 7
}

// Rule says how to answer for a name or a zone.
type Rule struct {
	// Mode is the outcome reported for the name.
	Mode Mode
	// EDE is the RFC 8914 info code sent with Bogus (default 6, DNSSEC
	// Bogus) or ServFail (none unless set). It is only sent to clients that
	// used EDNS, as RFC 8914 requires.
	EDE uint16
	// EDEText is the optional EXTRA-TEXT of the extended error.
	EDEText string
	// Truncate answers UDP queries with the TC bit and empty sections, so
	// that the client must retry over TCP, where the full answer is given.
	Truncate bool
}

// Query is one query the server received.
type Query struct {
	Name string // the query name as received, lower-cased, with the trailing dot
	Type uint16 // the query type
	Net  string // "udp" or "tcp"
	DO   bool   // the EDNS DO bit was set
	AD   bool   // the AD bit was set in the query
	EDNS bool   // the query carried an OPT record
}

// TB is the part of testing.TB that New uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is a running test DNS server. Its methods are safe for concurrent
// use, and rules and records may be changed while it runs.
type Server struct {
	// Addr is the address the server listens on for both UDP and TCP,
	// such as "127.0.0.1:53535".
	Addr string

	ln *Listener

	mu       sync.Mutex
	rrs      map[string][]dns.RR // owner (lower-case FQDN) -> records
	names    map[string]Rule     // exact names
	zones    map[string]Rule     // a zone and everything under it
	def      Rule
	noFollow bool
	log      []Query
}

// New starts a server for a test and stops it when the test ends.
func New(tb TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Start starts a server on a free port of 127.0.0.1, UDP and TCP. The
// caller must Close it.
func Start() (*Server, error) {
	s := &Server{
		rrs:   make(map[string][]dns.RR),
		names: make(map[string]Rule),
		zones: make(map[string]Rule),
	}
	ln, err := Listen(func(network string) dns.Handler { return dns.HandlerFunc(s.serve(network)) })
	if err != nil {
		return nil, err
	}
	s.ln, s.Addr = ln, ln.Addr
	return s, nil
}

// Close stops the server and waits for it to finish.
func (s *Server) Close() error { return s.ln.Close() }

// canonical returns name as a lower-case FQDN.
func canonical(name string) string {
	return dns.CanonicalName(name)
}

// Add parses records in presentation format ("mx.example.org. 300 IN A
// 192.0.2.1"; owner names are absolute, TTL and class may be left out) and
// adds them to the server's data.
func (s *Server) Add(records ...string) error {
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", r, err)
		}
		if rr == nil {
			return fmt.Errorf("dnstest: record %q is empty", r)
		}
		rrs = append(rrs, rr)
	}
	s.AddRR(rrs...)
	return nil
}

// MustAdd is like Add but panics on a syntax error, for record literals in
// tests.
func (s *Server) MustAdd(records ...string) {
	if err := s.Add(records...); err != nil {
		panic(err)
	}
}

// AddRR adds records to the server's data.
func (s *Server) AddRR(rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range rrs {
		owner := canonical(rr.Header().Name)
		s.rrs[owner] = append(s.rrs[owner], dns.Copy(rr))
	}
}

// Remove deletes the records of type qtype at name; qtype 0 deletes all of
// them.
func (s *Server) Remove(name string, qtype uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := canonical(name)
	if qtype == 0 {
		delete(s.rrs, owner)
		return
	}
	kept := s.rrs[owner][:0]
	for _, rr := range s.rrs[owner] {
		if rr.Header().Rrtype != qtype {
			kept = append(kept, rr)
		}
	}
	s.rrs[owner] = kept
}

// SetName sets the rule for one name (not the names under it). It takes
// precedence over zone rules.
func (s *Server) SetName(name string, r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[canonical(name)] = r
}

// SetZone sets the rule for a zone and every name under it. The rule of the
// closest enclosing zone applies.
func (s *Server) SetZone(zone string, r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[canonical(zone)] = r
}

// SetDefault sets the rule for names that no SetName or SetZone rule covers.
// The initial default is the zero Rule: insecure answers.
func (s *Server) SetDefault(r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = r
}

// SetFollowCNAMEs chooses whether answers include the whole CNAME chain, as
// a recursive resolver's do (the default), or stop at the first CNAME
// without an SOA record, as some forwarders' do, so that the client must
// follow the chain itself.
func (s *Server) SetFollowCNAMEs(follow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noFollow = !follow
}

// Queries returns a copy of the log of queries received, oldest first.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.log...)
}

// Count returns how many queries for name and qtype were received; qtype 0
// counts every type and an empty name counts every name.
func (s *Server) Count(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := ""
	if name != "" {
		want = canonical(name)
	}
	n := 0
	for _, q := range s.log {
		if (want == "" || q.Name == want) && (qtype == 0 || q.Type == qtype) {
			n++
		}
	}
	return n
}

// ResetLog forgets the queries received so far.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// ruleFor returns the rule for a lower-case FQDN. s.mu must be held.
func (s *Server) ruleFor(name string) Rule {
	if r, ok := s.names[name]; ok {
		return r
	}
	for n := name; ; {
		if r, ok := s.zones[n]; ok {
			return r
		}
		if n == "." {
			break
		}
		i := strings.IndexByte(n, '.')
		n = n[i+1:]
		if n == "" {
			n = "."
		}
	}
	return s.def
}

// exists reports whether a name owns records or is an empty non-terminal.
// s.mu must be held.
func (s *Server) exists(name string) bool {
	if len(s.rrs[name]) > 0 {
		return true
	}
	for owner, rrs := range s.rrs {
		if len(rrs) > 0 && dns.IsSubDomain(name, owner) && owner != name {
			return true
		}
	}
	return false
}

// soaFor returns the SOA record for the negative answer about name: the one
// at the closest enclosing owner that has one, else a synthetic one for the
// closest zone with a rule, else for the root. s.mu must be held.
func (s *Server) soaFor(name string) dns.RR {
	zone := "."
	for n := name; ; {
		for _, rr := range s.rrs[n] {
			if rr.Header().Rrtype == dns.TypeSOA {
				return dns.Copy(rr)
			}
		}
		if _, ok := s.zones[n]; ok && zone == "." {
			zone = n
		}
		if n == "." {
			break
		}
		i := strings.IndexByte(n, '.')
		n = n[i+1:]
		if n == "" {
			n = "."
		}
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:      "ns." + strings.TrimPrefix(zone, "."),
		Mbox:    "hostmaster." + strings.TrimPrefix(zone, "."),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  60,
	}
}

// resolve answers a query from the data, following CNAMEs. s.mu must be
// held.
func (s *Server) resolve(qname string, qtype uint16) (answer, authority []dns.RR, rcode int, rule Rule) {
	rule = s.ruleFor(qname)
	worst := func(r Rule) {
		if r.Mode.severity() > rule.Mode.severity() {
			t := rule.Truncate || r.Truncate
			rule = r
			rule.Truncate = t
		} else if r.Truncate {
			rule.Truncate = true
		}
	}
	seen := map[string]bool{}
	cur := qname
	for hop := 0; hop < 16; hop++ {
		if hop > 0 {
			worst(s.ruleFor(cur))
		}
		if seen[cur] {
			return answer, nil, dns.RcodeServerFailure, Rule{Mode: ServFail}
		}
		seen[cur] = true
		var cname *dns.CNAME
		var found []dns.RR
		for _, rr := range s.rrs[cur] {
			t := rr.Header().Rrtype
			if t == qtype || qtype == dns.TypeANY {
				found = append(found, dns.Copy(rr))
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if len(found) > 0 {
			return append(answer, found...), nil, dns.RcodeSuccess, rule
		}
		if cname != nil {
			answer = append(answer, dns.Copy(cname))
			if s.noFollow {
				return answer, nil, dns.RcodeSuccess, rule
			}
			cur = canonical(cname.Target)
			continue
		}
		if s.exists(cur) {
			return answer, []dns.RR{s.soaFor(cur)}, dns.RcodeSuccess, rule
		}
		return answer, []dns.RR{s.soaFor(cur)}, dns.RcodeNameError, rule
	}
	return answer, nil, dns.RcodeServerFailure, Rule{Mode: ServFail}
}

func (s *Server) serve(network string) func(dns.ResponseWriter, *dns.Msg) {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) != 1 {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeFormatError)
			w.WriteMsg(m)
			return
		}
		q := req.Question[0]
		opt := req.IsEdns0()
		entry := Query{
			Name: canonical(q.Name),
			Type: q.Qtype,
			Net:  network,
			AD:   req.AuthenticatedData,
			EDNS: opt != nil,
			DO:   opt != nil && opt.Do(),
		}

		s.mu.Lock()
		s.log = append(s.log, entry)
		answer, authority, rcode, rule := s.resolve(entry.Name, q.Qtype)
		s.mu.Unlock()

		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		if opt != nil {
			m.SetEdns0(1232, opt.Do())
		}

		switch rule.Mode {
		case Drop:
			return
		case Malformed:
			// A header announcing one question whose name is a
			// compression pointer to itself: it cannot be unpacked.
			w.Write([]byte{byte(req.Id >> 8), byte(req.Id), 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
			return
		case Refused:
			m.Rcode = dns.RcodeRefused
			w.WriteMsg(m)
			return
		case Bogus, ServFail:
			m.Rcode = dns.RcodeServerFailure
			code, send := rule.EDE, rule.EDE != 0
			if rule.Mode == Bogus && !send {
				code, send = dns.ExtendedErrorCodeDNSBogus, true
			}
			if send && opt != nil {
				o := m.IsEdns0()
				o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: rule.EDEText})
			}
			w.WriteMsg(m)
			return
		}
		if rcode == dns.RcodeServerFailure {
			m.Rcode = rcode
			w.WriteMsg(m)
			return
		}

		m.Rcode = rcode
		m.Answer = answer
		m.Ns = authority
		// RFC 6840 §5.8: AD only for a client that showed it understands it.
		m.AuthenticatedData = rule.Mode == Secure && (entry.AD || entry.DO)
		if network == "udp" {
			if rule.Truncate {
				m.Truncated = true
				m.Answer, m.Ns = nil, nil
			} else {
				size := dns.MinMsgSize
				if opt != nil && int(opt.UDPSize()) > size {
					size = int(opt.UDPSize())
				}
				m.Truncate(size)
			}
		}
		w.WriteMsg(m)
	}
}
