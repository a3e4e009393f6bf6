package dane

import (
	"bytes"

	"github.com/miekg/dns"
)

// rrsetKey names an RRset: its owner (a lower-case FQDN) and type.
type rrsetKey struct {
	name string
	t    uint16
}

// section is one section of a reply, grouped into RRsets (class IN only)
// and the signatures over them.
type section struct {
	sets  map[rrsetKey][]dns.RR
	sigs  map[rrsetKey][]*dns.RRSIG
	order []rrsetKey // the RRsets in the order they first appear
}

// groupRRs groups records into RRsets. Records of one RRset whose owner
// names differ only in case get the first one's spelling, as signature
// verification requires identical owners.
func groupRRs(rrs []dns.RR) *section {
	s := &section{sets: make(map[rrsetKey][]dns.RR), sigs: make(map[rrsetKey][]*dns.RRSIG)}
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		name := dns.CanonicalName(h.Name)
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := rrsetKey{name, sig.TypeCovered}
			s.sigs[k] = append(s.sigs[k], sig)
			continue
		}
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		k := rrsetKey{name, h.Rrtype}
		set, ok := s.sets[k]
		if !ok {
			s.order = append(s.order, k)
		} else if set[0].Header().Name != h.Name {
			rr = dns.Copy(rr)
			rr.Header().Name = set[0].Header().Name
		}
		s.sets[k] = append(set, rr)
	}
	return s
}

// has reports whether the section holds records of type t.
func (s *section) has(t uint16) bool {
	for _, k := range s.order {
		if k.t == t {
			return true
		}
	}
	return false
}

// signers returns the distinct signer names of the signatures over the
// RRsets of type t, in order of appearance.
func (s *section) signers(t uint16) []string {
	var out []string
	for _, k := range s.order {
		if k.t != t {
			continue
		}
		for _, sig := range s.sigs[k] {
			n := dns.CanonicalName(sig.SignerName)
			if !containsName(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// canonicalLabels returns the labels of a name as wire octets, lower-cased,
// from the leftmost to the rightmost, or false when the name is not a
// valid domain name.
func canonicalLabels(name string) ([][]byte, bool) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	var out [][]byte
	for off := 0; off < n; {
		l := int(buf[off])
		if l == 0 {
			break
		}
		if off+1+l > n {
			return nil, false
		}
		label := bytes.ToLower(buf[off+1 : off+1+l])
		out = append(out, label)
		off += 1 + l
	}
	return out, true
}

// canonicalCompare orders two names as RFC 4034 §6.1 does: label by
// label from the rightmost, each label compared as lower-cased octets, a
// name sorting before the names below it. Invalid names sort first.
func canonicalCompare(a, b string) int {
	la, oka := canonicalLabels(a)
	lb, okb := canonicalLabels(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i, j := len(la)-1, len(lb)-1; i >= 0 || j >= 0; i, j = i-1, j-1 {
		switch {
		case i < 0:
			return -1
		case j < 0:
			return 1
		}
		if c := bytes.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return 0
}

// commonAncestor returns the longest name that is a, or an ancestor of a,
// and also b or an ancestor of b.
func commonAncestor(a, b string) string {
	n := dns.CompareDomainName(a, b)
	if n == 0 {
		return "."
	}
	i, start := dns.PrevLabel(a, n)
	if start {
		return dns.CanonicalName(a)
	}
	return dns.CanonicalName(a[i:])
}

// typeIn reports whether a type bitmap lists t.
func typeIn(bitmap []uint16, t uint16) bool {
	for _, x := range bitmap {
		if x == t {
			return true
		}
	}
	return false
}
