package dane

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// CNAME is one alias followed during a lookup.
type CNAME struct {
	Name   string // the alias, A-labels without the trailing dot
	Target string // what it points to
	Status Status // the status of the response that carried it
}

// Answer is the outcome of one lookup: the records, or a denial, with the
// DNSSEC status of all of it.
//
// An Answer with no Records is a denial: NXDOMAIN when NXDomain is set,
// NODATA (the name exists, without records of the type) when it is not.
// Neither is an error; lookups that fail return an error instead.
type Answer struct {
	// Name is the name asked for, as lower-case A-labels without the
	// trailing dot.
	Name string
	// Type is the record type asked for (dns.TypeMX, …); 0 for LookupIP,
	// which asks for A and AAAA.
	Type uint16
	// Canonical is the owner of the records (or of the denial) after the
	// CNAMEs were followed; it equals Name when there was no alias.
	Canonical string
	// CNAMEs are the aliases followed from Name to Canonical, in order.
	CNAMEs []CNAME
	// Status is Secure only if every response that contributed to the
	// answer (each CNAME and the records or the denial) came with the AD
	// bit from a trusted resolver; otherwise Insecure.
	Status Status
	// NXDomain is set when Canonical does not exist.
	NXDomain bool
	// Records are the records of the type asked for, owned by Canonical.
	Records []dns.RR
	// Server is the resolver that gave the final response.
	Server string
}

// Secure reports whether the whole answer was validated by DNSSEC.
func (a *Answer) Secure() bool { return a != nil && a.Status == Secure }

// toQueryName converts a name to the lower-case A-label form used in
// queries (RFC 5891 §5). Leading labels that start with "_" (as in
// "_25._tcp.mx.example.com" or "_mta-sts.example.com") are service labels
// and are kept as they are, lower-cased.
func toQueryName(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	labels := strings.Split(n, ".")
	i := 0
	for i < len(labels) && strings.HasPrefix(labels[i], "_") {
		l := labels[i]
		if len(l) < 2 || len(l) > 63 {
			return "", fmt.Errorf("invalid name %q: label %q", name, l)
		}
		for j := 1; j < len(l); j++ {
			c := l[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("invalid name %q: label %q", name, l)
			}
		}
		labels[i] = strings.ToLower(l)
		i++
	}
	if i == len(labels) {
		return "", fmt.Errorf("invalid name %q: no host or domain after the service labels", name)
	}
	rest, err := idn.ToASCII(strings.Join(labels[i:], "."))
	if err != nil {
		return "", err
	}
	full := rest
	if i > 0 {
		full = strings.Join(labels[:i], ".") + "." + rest
	}
	if len(full) > 253 {
		return "", fmt.Errorf("invalid name %q: longer than 253 octets", name)
	}
	return full, nil
}

func typeString(t uint16) string {
	if t == 0 {
		return "A/AAAA"
	}
	return dns.TypeToString[t]
}

// failed turns a query failure into a LookupError.
func failed(name string, qtype uint16, f *failure) *LookupError {
	e := &LookupError{Name: name, Type: typeString(qtype), Server: f.server, Rcode: f.rcode, EDE: f.ede, Status: Indeterminate}
	switch {
	case f.bogus:
		e.Status = Bogus
		e.Err = ErrBogus
	case f.err != nil:
		e.Err = fmt.Errorf("%w: %w", ErrLookup, f.err)
	default:
		e.Err = ErrLookup
	}
	return e
}

// Lookup asks for the records of type qtype at name, following CNAMEs,
// and returns them with their DNSSEC status. NXDOMAIN and NODATA are
// answers, not errors. A failed or bogus lookup returns a *LookupError
// (errors.Is ErrLookup or ErrBogus) and no answer.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	ascii, err := toQueryName(name)
	if err != nil {
		return nil, &LookupError{Name: name, Type: typeString(qtype), Rcode: -1, Err: fmt.Errorf("%w: %w", ErrLookup, err)}
	}
	var vl *vlookup
	if r.validating() {
		if err := r.Validator.init(); err != nil {
			return nil, &LookupError{Name: ascii, Type: typeString(qtype), Rcode: -1, Err: fmt.Errorf("%w: validator: %w", ErrLookup, err)}
		}
		vl = newVlookup(ctx, r)
		if h := r.Validator.statsHook; h != nil {
			defer func() { h(vl.queries, vl.checks, vl.hashes) }()
		}
	}
	a := &Answer{Name: ascii, Type: qtype, Canonical: ascii, Status: Secure}
	cur := dns.Fqdn(ascii)
	seen := map[string]bool{cur: true}
	for {
		var resp *response
		var st Status
		if vl != nil {
			var err error
			resp, st, err = vl.answer(cur, qtype)
			if err != nil {
				server := ""
				if resp != nil {
					server = resp.server
				}
				return nil, vl.failure(ascii, qtype, server, err)
			}
		} else {
			var f *failure
			resp, f = r.query(ctx, cur, qtype)
			if f != nil {
				return nil, failed(ascii, qtype, f)
			}
			st = Insecure
			if resp.trusted && resp.msg.AuthenticatedData {
				st = Secure
			}
		}
		a.Status = weaker(a.Status, st)
		a.Server = resp.server
		final, links, rrs := follow(resp.msg, cur, qtype)
		for _, l := range links {
			t := dns.CanonicalName(l.Target)
			if seen[t] || len(a.CNAMEs) >= maxChainLen {
				return nil, &LookupError{Name: ascii, Type: typeString(qtype), Server: resp.server, Rcode: resp.msg.Rcode,
					Err: fmt.Errorf("%w: CNAME chain loops or is longer than %d links", ErrLookup, maxChainLen)}
			}
			seen[t] = true
			a.CNAMEs = append(a.CNAMEs, CNAME{Name: trimDot(l.Hdr.Name), Target: trimDot(l.Target), Status: st})
		}
		a.Canonical = trimDot(final)
		if resp.msg.Rcode == dns.RcodeNameError {
			a.NXDomain = true
			return a, nil
		}
		if len(rrs) == 0 && len(links) == 0 && !hasSOA(resp.msg.Ns) && hasType(resp.msg.Ns, dns.TypeNS) {
			// A referral: the upstream is not a recursive resolver, and
			// an empty answer from it proves nothing.
			return nil, &LookupError{Name: ascii, Type: typeString(qtype), Server: resp.server, Rcode: resp.msg.Rcode,
				Err: fmt.Errorf("%w: %s answered with a referral; it is not a recursive resolver", ErrLookup, resp.server)}
		}
		a.Records = rrs
		if vl != nil {
			a.Records = copyRRs(rrs) // the reply may be shared through the cache
		}
		if len(rrs) > 0 || len(links) == 0 || hasSOA(resp.msg.Ns) {
			return a, nil
		}
		// The reply stopped at a CNAME without data or a denial for its
		// target: follow the chain ourselves.
		cur = dns.CanonicalName(final)
	}
}

func trimDot(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

func hasSOA(rrs []dns.RR) bool { return hasType(rrs, dns.TypeSOA) }

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// follow walks the CNAME chain in a reply's answer section from qname and
// returns the last name, the CNAMEs followed and the records of qtype at
// the last name.
func follow(m *dns.Msg, qname string, qtype uint16) (string, []*dns.CNAME, []dns.RR) {
	cur := qname
	var links []*dns.CNAME
	for range maxChainLen + 1 {
		var rrs []dns.RR
		var next *dns.CNAME
		for _, rr := range m.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) || h.Class != dns.ClassINET {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && next == nil {
				next = c
			}
		}
		if len(rrs) > 0 || next == nil || qtype == dns.TypeCNAME {
			return cur, links, rrs
		}
		links = append(links, next)
		cur = next.Target
	}
	return cur, links, nil
}

// MX is one mail exchanger.
type MX struct {
	Host       string // A-labels, no trailing dot
	Preference uint16
}

// MXAnswer is the answer to an MX lookup.
type MXAnswer struct {
	Answer
	// MX are the mail exchangers sorted by preference, lowest first;
	// exchangers of equal preference keep the order of the reply. The null
	// MX (target ".") is never listed.
	MX []MX
	// NullMX is set when the domain publishes the RFC 7505 null MX, a
	// single MX record with target ".": it accepts no mail.
	NullMX bool
}

// LookupMX looks up the MX records of a domain. The answer's Status tells a
// DNSSEC-validated MX RRset from an insecure one (RFC 7672 §2.2.1); a
// failed lookup is an error, never an empty answer, and delivery should
// then be deferred (RFC 7672 §2.1.2).
func (r *Resolver) LookupMX(ctx context.Context, domain string) (*MXAnswer, error) {
	a, err := r.Lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := &MXAnswer{Answer: *a}
	null := 0
	for _, rr := range a.Records {
		mx, ok := rr.(*dns.MX)
		if !ok {
			continue
		}
		if mx.Mx == "." {
			null++
			continue
		}
		out.MX = append(out.MX, MX{Host: trimDot(mx.Mx), Preference: mx.Preference})
	}
	slices.SortStableFunc(out.MX, func(a, b MX) int { return int(a.Preference) - int(b.Preference) })
	out.NullMX = null > 0 && len(out.MX) == 0
	return out, nil
}

// IPAnswer is the answer to an address lookup.
type IPAnswer struct {
	Answer
	// Addrs are the addresses: IPv4 first, then IPv6.
	Addrs []netip.Addr
}

// LookupA looks up the IPv4 addresses of a host.
func (r *Resolver) LookupA(ctx context.Context, host string) (*IPAnswer, error) {
	return r.lookupAddrs(ctx, host, dns.TypeA)
}

// LookupAAAA looks up the IPv6 addresses of a host.
func (r *Resolver) LookupAAAA(ctx context.Context, host string) (*IPAnswer, error) {
	return r.lookupAddrs(ctx, host, dns.TypeAAAA)
}

func (r *Resolver) lookupAddrs(ctx context.Context, host string, qtype uint16) (*IPAnswer, error) {
	a, err := r.Lookup(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	out := &IPAnswer{Answer: *a}
	for _, rr := range a.Records {
		switch v := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out.Addrs = append(out.Addrs, ip)
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
				out.Addrs = append(out.Addrs, ip)
			}
		}
	}
	return out, nil
}

// LookupIP looks up the A and AAAA records of a host at the same time. The
// answer is Secure only if both are; if either lookup fails the whole
// lookup fails (a bogus one first), since a host whose address records
// cannot be trusted must not be used for DANE (RFC 7672 §2.2.3).
func (r *Resolver) LookupIP(ctx context.Context, host string) (*IPAnswer, error) {
	var wg sync.WaitGroup
	var a4, a6 *IPAnswer
	var e4, e6 error
	wg.Add(2)
	go func() { defer wg.Done(); a4, e4 = r.LookupA(ctx, host) }()
	go func() { defer wg.Done(); a6, e6 = r.LookupAAAA(ctx, host) }()
	wg.Wait()
	if e4 != nil || e6 != nil {
		if errors.Is(e6, ErrBogus) {
			return nil, e6
		}
		if e4 != nil {
			return nil, e4
		}
		return nil, e6
	}
	out := &IPAnswer{Answer: a4.Answer}
	out.Type = 0
	out.Status = weaker(a4.Status, a6.Status)
	out.Records = append(append([]dns.RR(nil), a4.Records...), a6.Records...)
	out.Addrs = append(append([]netip.Addr(nil), a4.Addrs...), a6.Addrs...)
	out.NXDomain = a4.NXDomain && a6.NXDomain
	if len(a4.Records) == 0 && len(a6.Records) > 0 {
		out.Canonical, out.CNAMEs = a6.Canonical, a6.CNAMEs
	}
	return out, nil
}

// TLSAAnswer is the answer to a TLSA lookup.
type TLSAAnswer struct {
	Answer
	// TLSA are the records' data, usable or not.
	TLSA []TLSA
}

// LookupTLSA looks up the TLSA records at an owner name such as
// "_25._tcp.mx.example.com". It does not apply the RFC 7672 rules; for
// that, use LookupHostTLSA.
func (r *Resolver) LookupTLSA(ctx context.Context, name string) (*TLSAAnswer, error) {
	a, err := r.Lookup(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, err
	}
	out := &TLSAAnswer{Answer: *a}
	for _, rr := range a.Records {
		if t, ok := rr.(*dns.TLSA); ok {
			out.TLSA = append(out.TLSA, fromRR(t))
		}
	}
	return out, nil
}

// fromRR converts a parsed TLSA record. A record whose data is not whole
// (shorter than three octets, or bad hex) comes out with no association
// data, which makes it unusable rather than a match for anything.
func fromRR(t *dns.TLSA) TLSA {
	out := TLSA{Usage: Usage(t.Usage), Selector: Selector(t.Selector), MatchingType: MatchingType(t.MatchingType)}
	if t.Hdr.Rdlength != 0 && t.Hdr.Rdlength < 3 {
		return out
	}
	if d, err := hex.DecodeString(t.Certificate); err == nil && len(d) > 0 {
		out.Data = d
	}
	return out
}

// LookupTXT returns the TXT records of a name, each record's strings
// joined, with the semantics of net.Resolver.LookupTXT: when the name does
// not exist or has no TXT records the error is a *net.DNSError with
// IsNotFound set; other failures are a *net.DNSError too, whose Unwrap
// reaches the *LookupError. It ignores DNSSEC status; use Lookup with
// dns.TypeTXT for that.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.Lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		de := &net.DNSError{Err: err.Error(), Name: name, UnwrapErr: err, IsTemporary: true}
		var le *LookupError
		if errors.As(err, &le) {
			de.Server = le.Server
			de.IsTimeout = isTimeout(le.Err)
			de.IsTemporary = !errors.Is(err, ErrBogus)
		}
		return nil, de
	}
	var out []string
	for _, rr := range a.Records {
		if t, ok := rr.(*dns.TXT); ok {
			var b strings.Builder
			for _, s := range t.Txt {
				b.WriteString(unescapeTXT(s))
			}
			out = append(out, b.String())
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, Server: a.Server, IsNotFound: true}
	}
	return out, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unescapeTXT undoes the presentation escaping that the DNS library applies
// to character-strings: "\X" is X and "\DDD" is the octet DDD.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
