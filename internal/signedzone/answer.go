package signedzone

import (
	"bytes"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// result is a zone's answer to one query.
type result struct {
	answer, ns []dns.RR
	rcode      int
	next       string // a CNAME target to follow, "" when the answer is complete
	referral   bool   // name is below a delegation point of this zone
}

// canonicalLess orders names as RFC 4034 §6.1 does: label by label from
// the right, each label as lower-cased octets, a name before its
// descendants.
func canonicalLess(a, b string) bool {
	la, lb := wireLabels(a), wireLabels(b)
	for i, j := len(la)-1, len(lb)-1; ; i, j = i-1, j-1 {
		if j < 0 {
			return false
		}
		if i < 0 {
			return true
		}
		if c := bytes.Compare(la[i], lb[j]); c != 0 {
			return c < 0
		}
	}
}

func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		return nil
	}
	var out [][]byte
	for off := 0; off < n && buf[off] != 0; off += 1 + int(buf[off]) {
		out = append(out, bytes.ToLower(buf[off+1:off+1+int(buf[off])]))
	}
	return out
}

// exists reports whether name owns records or is an empty non-terminal
// above authoritative records. z.mu must be held.
func (z *Zone) exists(name string) bool {
	if len(z.nodes[name]) > 0 {
		return true
	}
	for n := range z.nodes {
		if n != name && dns.IsSubDomain(name, n) && z.authoritative(n) {
			return true
		}
	}
	return false
}

// closestEncloser returns the longest existing ancestor of name. z.mu
// must be held.
func (z *Zone) closestEncloser(name string) string {
	for n := parent(name); ; n = parent(n) {
		if n == z.Origin || z.exists(n) {
			return n
		}
	}
}

// withSigs returns the RRset of type t at name with its signatures when
// do is set. z.mu must be held.
func (z *Zone) withSigs(name string, t uint16, do bool) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrsetLocked(name, t) {
		out = append(out, dns.Copy(rr))
	}
	if do {
		for _, s := range z.sigs[name][t] {
			out = append(out, dns.Copy(s))
		}
	}
	return out
}

// synthesize copies the RRset of type t at the wildcard wc, with its
// signatures when do is set, as records owned by name (RFC 4592).
func (z *Zone) synthesize(wc, name string, t uint16, do bool) []dns.RR {
	out := z.withSigs(wc, t, do)
	for _, rr := range out {
		rr.Header().Name = name
	}
	return out
}

// nsecBefore returns the NSEC record (with signatures) whose span covers
// name: the one owned by the last authoritative name before it. z.mu must
// be held.
func (z *Zone) nsecBefore(name string) []dns.RR {
	names := z.names()
	i := sort.Search(len(names), func(i int) bool { return !canonicalLess(names[i], name) })
	owner := names[len(names)-1]
	if i > 0 {
		owner = names[i-1]
	}
	return z.withSigs(owner, dns.TypeNSEC, true)
}

// nsec3For returns the NSEC3 record (with signatures) matching name when
// there is one, else the one whose span covers its hash. z.mu must be
// held.
func (z *Zone) nsec3For(name string) (rrs []dns.RR, match bool) {
	p := z.NSEC3
	h := strings.ToLower(dns.HashName(name, dns.SHA1, p.Iterations, p.Salt))
	owner := h + "." + z.Origin
	if z.Origin == "." {
		owner = h + "."
	}
	if _, ok := z.nsec3[owner]; ok {
		return z.withSigs(owner, dns.TypeNSEC3, true), true
	}
	i := sort.SearchStrings(z.hashes, owner)
	prev := z.hashes[len(z.hashes)-1]
	if i > 0 {
		prev = z.hashes[i-1]
	}
	return z.withSigs(prev, dns.TypeNSEC3, true), false
}

// nsec3Encloser returns the closest encloser proof for name: the record
// matching its closest hashed encloser and the one covering the next
// closer name, and that encloser.
func (z *Zone) nsec3Encloser(name string) ([]dns.RR, string) {
	var nc string
	for n := name; ; n = parent(n) {
		rrs, match := z.nsec3For(n)
		if match {
			if nc == "" {
				return rrs, n
			}
			cover, _ := z.nsec3For(nc)
			return append(rrs, cover...), n
		}
		nc = n
		if n == z.Origin {
			return nil, n
		}
	}
}

// denyName returns the records proving that name does not exist and that
// no wildcard matches it.
func (z *Zone) denyName(name string) []dns.RR {
	if z.NSEC3 == nil {
		ce := z.closestEncloser(name)
		return dedupRRs(append(z.nsecBefore(name), z.nsecBefore("*."+ce)...))
	}
	proof, ce := z.nsec3Encloser(name)
	wc, _ := z.nsec3For("*." + ce)
	return dedupRRs(append(proof, wc...))
}

// denyType returns the records proving that the existing name has no
// records of type t.
func (z *Zone) denyType(name string) []dns.RR {
	if z.NSEC3 == nil {
		if _, ok := z.nodes[name][dns.TypeNSEC]; ok {
			return z.withSigs(name, dns.TypeNSEC, true)
		}
		return z.nsecBefore(name) // an empty non-terminal
	}
	if rrs, match := z.nsec3For(name); match {
		return rrs
	}
	proof, _ := z.nsec3Encloser(name) // an unsigned delegation in an opt-out span
	return proof
}

// negative returns the authority section of a negative answer: the SOA
// and, for DO queries to a signed zone, the denial records.
func (z *Zone) negative(deny func() []dns.RR, do bool) []dns.RR {
	ns := z.withSigs(z.Origin, dns.TypeSOA, do)
	if do && len(z.KSKs) > 0 {
		ns = append(ns, deny()...)
	}
	return ns
}

// lookup answers a query from the zone's data, as its authoritative
// server would, with the signatures and denial records when do is set.
func (z *Zone) lookup(name string, t uint16, do bool) result {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = dns.CanonicalName(name)
	if cut := z.cutAbove(name); cut != "" && (cut != name || t != dns.TypeDS) {
		return result{referral: true}
	}
	// A DNAME at an ancestor rewrites the name (RFC 6672).
	for a := parent(name); name != z.Origin && dns.IsSubDomain(z.Origin, a); a = parent(a) {
		if set := z.nodes[a][dns.TypeDNAME]; len(set) > 0 {
			d := set[0].(*dns.DNAME)
			target := strings.TrimSuffix(name, a) + dns.CanonicalName(d.Target)
			ans := z.withSigs(a, dns.TypeDNAME, do)
			ans = append(ans, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl}, Target: target})
			return result{answer: ans, next: target}
		}
		if a == z.Origin {
			break
		}
	}
	if z.exists(name) {
		if set := z.withSigs(name, t, do); len(z.rrsetLocked(name, t)) > 0 {
			return result{answer: set}
		}
		if c := z.nodes[name][dns.TypeCNAME]; len(c) > 0 && t != dns.TypeCNAME {
			return result{answer: z.withSigs(name, dns.TypeCNAME, do), next: dns.CanonicalName(c[0].(*dns.CNAME).Target)}
		}
		return result{ns: z.negative(func() []dns.RR { return z.denyType(name) }, do)}
	}
	ce := z.closestEncloser(name)
	wc := "*." + ce
	if len(z.nodes[wc]) > 0 {
		proof := func() []dns.RR {
			if !do || len(z.KSKs) == 0 {
				return nil
			}
			if z.NSEC3 == nil {
				return z.nsecBefore(name)
			}
			labels := dns.CountLabel(ce) + 1
			i, _ := dns.PrevLabel(name, labels)
			cover, _ := z.nsec3For(name[i:])
			return cover
		}
		if len(z.nodes[wc][t]) > 0 {
			return result{answer: z.synthesize(wc, name, t, do), ns: proof()}
		}
		if c := z.nodes[wc][dns.TypeCNAME]; len(c) > 0 && t != dns.TypeCNAME {
			return result{answer: z.synthesize(wc, name, dns.TypeCNAME, do), ns: proof(), next: dns.CanonicalName(c[0].(*dns.CNAME).Target)}
		}
		return result{ns: z.negative(func() []dns.RR {
			if z.NSEC3 == nil {
				return dedupRRs(append(z.nsecBefore(name), z.withSigs(wc, dns.TypeNSEC, true)...))
			}
			enc, _ := z.nsec3Encloser(name)
			m, _ := z.nsec3For(wc)
			return dedupRRs(append(enc, m...))
		}, do)}
	}
	return result{ns: z.negative(func() []dns.RR { return z.denyName(name) }, do), rcode: dns.RcodeNameError}
}

// dedupRRs drops repeated records.
func dedupRRs(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		s := rr.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}
