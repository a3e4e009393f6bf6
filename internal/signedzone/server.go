package signedzone

import (
	"sync"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

// Query is one query the server received.
type Query struct {
	Name string // lower-case FQDN
	Type uint16
	Net  string // "udp", "tcp" or "" (Answer called directly)
	DO   bool   // the EDNS DO bit
	CD   bool   // the CD bit
}

// TB is the part of testing.TB that New uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server answers queries from signed zones as a non-validating recursive
// resolver would. Its methods are safe for concurrent use.
type Server struct {
	// Addr is where it listens, UDP and TCP, such as "127.0.0.1:53535";
	// empty for a server made with NewHandler.
	Addr string

	ln *dnstest.Listener

	mu      sync.Mutex
	zones   map[string]*Zone
	log     []Query
	rewrite func(q Query, m *dns.Msg) *dns.Msg
}

// NewHandler returns a server that is not listening: call Answer directly.
// It signs every zone that is not signed yet.
func NewHandler(zones ...*Zone) (*Server, error) {
	s := &Server{zones: map[string]*Zone{}}
	for _, z := range zones {
		if err := s.AddZone(z); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// New signs the zones, starts a server on a free port of 127.0.0.1 for
// the test, and stops it when the test ends. Children must be added with
// Delegate before New signs their parents.
func New(tb TB, zones ...*Zone) *Server {
	tb.Helper()
	s, err := Start(zones...)
	if err != nil {
		tb.Fatalf("signedzone: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Start is New without a test: the caller must Close the server.
func Start(zones ...*Zone) (*Server, error) {
	s, err := NewHandler(zones...)
	if err != nil {
		return nil, err
	}
	ln, err := dnstest.Listen(s.handler)
	if err != nil {
		return nil, err
	}
	s.ln, s.Addr = ln, ln.Addr
	return s, nil
}

// Close stops a listening server.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// AddZone serves z, signing it first if it was not signed.
func (s *Server) AddZone(z *Zone) error {
	z.mu.Lock()
	signed := z.signed
	z.mu.Unlock()
	if !signed {
		if err := z.Sign(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[z.Origin] = z
	return nil
}

// SetRewrite installs a function that sees every reply before it is sent
// and returns the reply to send instead, or nil to send nothing (the
// client times out). It breaks answers in ways zone data cannot: stripped
// signatures, forged denial records, SERVFAIL.
func (s *Server) SetRewrite(f func(q Query, m *dns.Msg) *dns.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rewrite = f
}

// Queries returns the queries received so far, oldest first.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.log...)
}

// Count returns how many queries for name and type t were received; an
// empty name or t 0 match any.
func (s *Server) Count(name string, t uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.log {
		if (name == "" || q.Name == dns.CanonicalName(name)) && (t == 0 || q.Type == t) {
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

// zoneFor returns the zone that answers name and type t: the deepest zone
// holding name, except that DS records at a zone's apex come from its
// parent zone when the server has it (RFC 4035 §3.1.4.1).
func (s *Server) zoneFor(name string, t uint16) *Zone {
	var best *Zone
	for origin, z := range s.zones {
		if t == dns.TypeDS && origin == name && name != "." {
			continue
		}
		if dns.IsSubDomain(origin, name) && (best == nil || dns.CountLabel(origin) > dns.CountLabel(best.Origin)) {
			best = z
		}
	}
	return best
}

// Answer returns the reply to a query, as a recursive resolver that does
// not validate would give it: CNAMEs (and DNAMEs) followed across zones,
// RRSIGs and NSEC or NSEC3 records when the query set DO, never the AD
// bit. Names in no zone are refused.
func (s *Server) Answer(req *dns.Msg) *dns.Msg {
	return s.answer(req, "")
}

func (s *Server) answer(req *dns.Msg, network string) *dns.Msg {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	entry := Query{Name: dns.CanonicalName(q.Name), Type: q.Qtype, Net: network, DO: do, CD: req.CheckingDisabled}

	s.mu.Lock()
	s.log = append(s.log, entry)
	rewrite := s.rewrite
	s.mu.Unlock()

	if opt != nil {
		m.SetEdns0(1232, do)
	}
	name := entry.Name
	for hop := 0; ; hop++ {
		s.mu.Lock()
		z := s.zoneFor(name, q.Qtype)
		s.mu.Unlock()
		if z == nil {
			if hop == 0 {
				m.Rcode = dns.RcodeRefused
			}
			break
		}
		r := z.lookup(name, q.Qtype, do)
		if r.referral || hop == 16 {
			m.Rcode = dns.RcodeServerFailure
			m.Answer = nil
			break
		}
		m.Answer = append(m.Answer, r.answer...)
		m.Ns = r.ns
		m.Rcode = r.rcode
		if r.next == "" {
			break
		}
		name = r.next
	}
	if rewrite != nil {
		m = rewrite(entry, m)
	}
	return m
}

func (s *Server) handler(network string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := s.answer(req, network)
		if m == nil {
			return
		}
		if network == "udp" {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
				size = int(opt.UDPSize())
			}
			if m.Len() > size {
				m.Truncated = true
				m.Answer, m.Ns, m.Extra = nil, nil, nil
				if opt := req.IsEdns0(); opt != nil {
					m.SetEdns0(1232, opt.Do())
				}
			}
		}
		w.WriteMsg(m)
	})
}
