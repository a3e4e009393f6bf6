package dane

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// validate returns the DNSSEC status of the reply m to the query (qname,
// qtype), checking exactly what Lookup takes from it: every CNAME
// followed from qname (or the DNAME it was synthesized from), then the
// records of qtype at the end of the chain, or the proof that there are
// none (NXDOMAIN or NODATA). A reply that stops at a CNAME without a
// denial for its target proves nothing about the target, which the caller
// asks for next.
//
// The status is the weakest of the parts. An error means Bogus (a
// *ValidationError) or Indeterminate (a failed query, a work limit).
func (vl *vlookup) validate(m *dns.Msg, qname string, qtype uint16) (Status, error) {
	final, links, rrs := follow(m, qname, qtype)
	ans, auth := groupRRs(m.Answer), groupRRs(m.Ns)
	st := Secure
	for _, l := range links {
		owner := dns.CanonicalName(l.Hdr.Name)
		k := rrsetKey{owner, dns.TypeCNAME}
		set, sigs := ans.sets[k], ans.sigs[k]
		if len(sigs) == 0 {
			if d, ok := ans.dnameFor(owner, l.Target); ok {
				set, sigs = ans.sets[d], ans.sigs[d]
			}
		}
		s, err := vl.rrsetStatus(set, sigs, auth)
		if err != nil {
			return statusOf(err), err
		}
		st = weaker(st, s)
	}
	final = dns.CanonicalName(final)
	var s Status
	var err error
	switch {
	case m.Rcode == dns.RcodeNameError:
		// Lookup reports NXDOMAIN whatever records came with it, so the
		// proof is required even then (a signed answer whose rcode was
		// changed must not become a secure denial).
		s, err = vl.denialStatus(auth, final, qtype, true)
	case len(rrs) > 0:
		k := rrsetKey{final, qtype}
		s, err = vl.rrsetStatus(ans.sets[k], ans.sigs[k], auth)
	case len(links) > 0 && !hasSOA(m.Ns) && !auth.has(dns.TypeNSEC) && !auth.has(dns.TypeNSEC3):
		return st, nil
	default:
		s, err = vl.denialStatus(auth, final, qtype, false)
	}
	if err != nil {
		return statusOf(err), err
	}
	if ttl, ok := minTTL(m); ok {
		vl.use(vl.now.Add(time.Duration(ttl) * time.Second))
	}
	return weaker(st, s), nil
}

// dnameFor returns the DNAME RRset in the section from which the CNAME
// owner -> target was synthesized (RFC 6672 §5.3.1): owned by an ancestor
// of owner, with target equal to owner's labels below it followed by the
// DNAME's target.
func (s *section) dnameFor(owner, target string) (rrsetKey, bool) {
	for _, k := range s.order {
		if k.t != dns.TypeDNAME || k.name == owner || !isSubDomain(k.name, owner) {
			continue
		}
		d, ok := s.sets[k][0].(*dns.DNAME)
		if !ok {
			continue
		}
		prefix := strings.TrimSuffix(owner, k.name)
		if dns.CanonicalName(prefix+dns.CanonicalName(d.Target)) == dns.CanonicalName(target) {
			return k, true
		}
	}
	return rrsetKey{}, false
}

// minTTL returns the smallest TTL in the answer and authority sections.
func minTTL(m *dns.Msg) (uint32, bool) {
	var ttl uint32
	found := false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if !found || h.Ttl < ttl {
				ttl, found = h.Ttl, true
			}
		}
	}
	return ttl, found
}

// expanded reports whether a signature with labels labels over records
// at owner shows a wildcard expansion (RFC 4035 §5.3.2): fewer labels than
// the owner has, not counting the "*" of a wildcard owner itself.
func expanded(owner string, labels int) bool {
	n := dns.CountLabel(owner)
	if strings.HasPrefix(owner, "*.") {
		n--
	}
	return labels < n
}

// zoneNameOf returns the name whose zone holds the records of type t at
// owner: the owner, except for DS records, which the parent zone holds.
func zoneNameOf(owner string, t uint16) string {
	if t == dns.TypeDS && owner != "." {
		return parentName(owner)
	}
	return owner
}

// candidateSigners returns the signer names worth examining for records
// at owner: at most maxSigners distinct names that are owner or its
// ancestors (strict ancestors for DS), at or below the closest trust
// anchor of owner's zone. A signer above that anchor is refused, so that a
// forged signature claiming an unanchored ancestor cannot make records
// look Insecure.
func (vl *vlookup) candidateSigners(sigs []*dns.RRSIG, owner string, t uint16) []string {
	zoneName := zoneNameOf(owner, t)
	anchor := vl.v.anchorFor(zoneName)
	if anchor == "" {
		return nil
	}
	var out []string
	for _, sig := range sigs {
		s := dns.CanonicalName(sig.SignerName)
		if !isSubDomain(s, zoneName) || !isSubDomain(anchor, s) || containsName(out, s) {
			continue
		}
		out = append(out, s)
		if len(out) == maxSigners {
			break
		}
	}
	return out
}

// rrsetStatus validates one RRset of a reply. The zone of each candidate
// signer is established from the trust anchor; an insecure zone at or
// above it makes the RRset Insecure; otherwise one signature must verify
// with that zone's keys. A signature from a wildcard also needs the proof,
// in auth, that the owner itself does not exist. Without a usable
// signature the RRset is Insecure only if its own zone is, else Bogus.
func (vl *vlookup) rrsetStatus(set []dns.RR, sigs []*dns.RRSIG, auth *section) (Status, error) {
	if len(set) == 0 {
		return Bogus, bogus(".", 0, "", dns.ExtendedErrorCodeDNSBogus, "a record the answer relies on is missing")
	}
	h := set[0].Header()
	owner, t := dns.CanonicalName(h.Name), h.Rrtype
	var lastErr error
	for _, signer := range vl.candidateSigners(sigs, owner, t) {
		zk, err := vl.zoneFor(signer)
		if err != nil {
			return statusOf(err), err
		}
		if zk.status == Insecure {
			vl.use(zk.expires)
			return Insecure, nil
		}
		if zk.zone != signer {
			continue // the signer is not a zone apex: its signatures are unusable
		}
		exp, labels, err := vl.verify(set, sigs, zk.zone, zk.keys, zk.tags)
		if err != nil {
			if fatal(err) {
				return Indeterminate, err
			}
			lastErr = err
			continue
		}
		vl.use(exp)
		if !expanded(owner, labels) {
			return Secure, nil
		}
		p := vl.newProof(zk, auth)
		st, err := p.wildcard(owner, t, labels)
		if err != nil {
			return statusOf(err), err
		}
		vl.use(p.expires(exp))
		return st, nil
	}
	zk, err := vl.zoneFor(zoneNameOf(owner, t))
	if err != nil {
		return statusOf(err), err
	}
	vl.use(zk.expires)
	if zk.status == Insecure {
		return Insecure, nil
	}
	if lastErr != nil {
		return Bogus, lastErr
	}
	return Bogus, bogus(owner, t, zk.zone, dns.ExtendedErrorCodeRRSIGsMissing, "no usable signature, though the zone is signed")
}

// denialStatus checks the proof in auth that name does not exist (nx) or
// has no records of type t, signed by the zone that holds name. An
// unsigned denial is Insecure only if that zone is.
func (vl *vlookup) denialStatus(auth *section, name string, t uint16, nx bool) (Status, error) {
	var sigs []*dns.RRSIG
	for _, k := range auth.order {
		if k.t == dns.TypeNSEC || k.t == dns.TypeNSEC3 {
			sigs = append(sigs, auth.sigs[k]...)
		}
	}
	var lastErr error
	zoneName := zoneNameOf(name, t)
	for _, signer := range vl.candidateSigners(sigs, name, t) {
		zk, err := vl.zoneFor(signer)
		if err != nil {
			return statusOf(err), err
		}
		if zk.status == Insecure {
			vl.use(zk.expires)
			return Insecure, nil
		}
		if zk.zone != signer {
			continue
		}
		p := vl.newProof(zk, auth)
		var st Status
		if nx {
			st, err = p.nxdomain(name, t)
		} else {
			st, err = p.nodata(name, t)
		}
		if err != nil {
			if fatal(err) {
				return statusOf(err), err
			}
			lastErr = err
			continue
		}
		vl.use(p.expires(zk.expires))
		return st, nil
	}
	zk, err := vl.zoneFor(zoneName)
	if err != nil {
		return statusOf(err), err
	}
	vl.use(zk.expires)
	if zk.status == Insecure {
		return Insecure, nil
	}
	if lastErr != nil {
		return Bogus, lastErr
	}
	what := "NODATA"
	if nx {
		what = "NXDOMAIN"
	}
	return Bogus, bogus(name, t, zk.zone, dns.ExtendedErrorCodeNSECMissing, what+" without a signed NSEC or NSEC3 proof, though the zone is signed")
}
