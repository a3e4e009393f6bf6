package dane

import (
	"github.com/miekg/dns"
)

// nsecAt returns the validated NSEC record owned by name, or nil.
func (p *proof) nsecAt(name string) (*dns.NSEC, error) {
	k := rrsetKey{name, dns.TypeNSEC}
	set := p.sec.sets[k]
	if len(set) == 0 || !isSubDomain(p.zk.zone, name) {
		return nil, nil
	}
	n, ok := set[0].(*dns.NSEC)
	if !ok {
		return nil, nil
	}
	if err := p.valid(k); err != nil {
		return nil, err
	}
	return n, nil
}

// nsecCovers reports whether the span of n, from its owner to its next
// name in canonical order, strictly contains name. The last NSEC of a zone
// points back to the apex and covers every name after its owner.
func nsecCovers(n *dns.NSEC, name, zone string) bool {
	owner, next := n.Hdr.Name, n.NextDomain
	if !isSubDomain(zone, name) || !isSubDomain(zone, next) {
		return false
	}
	afterOwner := canonicalCompare(owner, name) < 0
	beforeNext := canonicalCompare(name, next) < 0
	if canonicalCompare(owner, next) < 0 {
		return afterOwner && beforeNext
	}
	return afterOwner || beforeNext
}

// nsecCovering returns a validated NSEC record whose span covers name. An
// NSEC owned by an ancestor of name that is a delegation point (NS
// without SOA) or has a DNAME proves nothing about names below it: they
// belong to another zone (RFC 6840 §4.1).
func (p *proof) nsecCovering(name string) (*dns.NSEC, error) {
	var firstErr error
	for _, k := range p.sec.order {
		if k.t != dns.TypeNSEC || !isSubDomain(p.zk.zone, k.name) {
			continue
		}
		n, ok := p.sec.sets[k][0].(*dns.NSEC)
		if !ok || !nsecCovers(n, name, p.zk.zone) {
			continue
		}
		if k.name != name && isSubDomain(k.name, name) &&
			((typeIn(n.TypeBitMap, dns.TypeNS) && !typeIn(n.TypeBitMap, dns.TypeSOA)) || typeIn(n.TypeBitMap, dns.TypeDNAME)) {
			continue
		}
		if err := p.valid(k); err != nil {
			if fatal(err) {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return n, nil
	}
	return nil, firstErr
}

// nsecEncloser returns the closest encloser of name that a covering NSEC
// record implies: the longest ancestor of name that is also an ancestor
// of (or equal to) the NSEC's owner or next name, both of which exist.
func nsecEncloser(name string, n *dns.NSEC) string {
	a, b := commonAncestor(name, n.Hdr.Name), commonAncestor(name, n.NextDomain)
	if dns.CountLabel(b) > dns.CountLabel(a) {
		return b
	}
	return a
}

// coverOrFail returns the covering NSEC for name or the error to report.
func (p *proof) coverOrFail(name string, t uint16, what string) (*dns.NSEC, error) {
	n, err := p.nsecCovering(name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, p.missing(name, t, what)
	}
	return n, nil
}

func (p *proof) nsecNXDomain(name string, t uint16) (Status, error) {
	if n, err := p.nsecAt(name); err != nil || n != nil {
		if err != nil {
			return Bogus, err
		}
		return Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN, but an NSEC record shows that the name exists")
	}
	n, err := p.coverOrFail(name, t, "NXDOMAIN without an NSEC record covering the name")
	if err != nil {
		return Bogus, err
	}
	if next := dns.CanonicalName(n.NextDomain); next != name && isSubDomain(name, next) {
		return Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN, but the covering NSEC record shows names below it (an empty non-terminal)")
	}
	ce := nsecEncloser(name, n)
	wc := "*." + ce
	if w, err := p.nsecAt(wc); err != nil || w != nil {
		if err != nil {
			return Bogus, err
		}
		return Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN, but the wildcard "+displayName(wc)+" exists")
	}
	if _, err := p.coverOrFail(wc, t, "NXDOMAIN without an NSEC record proving that the wildcard "+displayName(wc)+" does not exist"); err != nil {
		return Bogus, err
	}
	return Secure, nil
}

func (p *proof) nsecNoData(name string, t uint16) (Status, error) {
	n, err := p.nsecAt(name)
	if err != nil {
		return Bogus, err
	}
	if n != nil {
		if err := nodataTypes(n.TypeBitMap, name, t, p.zk.zone); err != nil {
			return Bogus, err
		}
		return Secure, nil
	}
	cov, err := p.coverOrFail(name, t, "NODATA without an NSEC record for the name")
	if err != nil {
		return Bogus, err
	}
	if next := dns.CanonicalName(cov.NextDomain); next != name && isSubDomain(name, next) {
		return Secure, nil // an empty non-terminal
	}
	wc := "*." + nsecEncloser(name, cov)
	w, err := p.nsecAt(wc)
	if err != nil {
		return Bogus, err
	}
	if w == nil {
		return Bogus, p.missing(name, t, "NODATA, but the NSEC records prove the name does not exist and show no wildcard")
	}
	if err := nodataTypes(w.TypeBitMap, wc, t, p.zk.zone); err != nil {
		return Bogus, err
	}
	return Secure, nil
}

// nodataTypes checks the type bitmap of the NSEC or NSEC3 record matching
// name for a NODATA answer of type t: t and CNAME absent; for DS, a record
// from the parent side of the cut (no SOA); for other types, not the
// parent's record at a delegation point (NS without SOA), which says
// nothing about the child zone's data (RFC 4035 §5.4, RFC 5155 §8.5, §8.6).
func nodataTypes(bitmap []uint16, name string, t uint16, zone string) error {
	switch {
	case typeIn(bitmap, t):
		return bogus(name, t, zone, dns.ExtendedErrorCodeDNSBogus, "NODATA, but the denial record lists the type")
	case typeIn(bitmap, dns.TypeCNAME):
		return bogus(name, t, zone, dns.ExtendedErrorCodeDNSBogus, "NODATA, but the denial record shows a CNAME")
	case t == dns.TypeDS && typeIn(bitmap, dns.TypeSOA) && name != ".":
		return bogus(name, t, zone, dns.ExtendedErrorCodeDNSBogus, "the denial of DS records comes from the child zone's apex, not its parent")
	case t != dns.TypeDS && typeIn(bitmap, dns.TypeNS) && !typeIn(bitmap, dns.TypeSOA):
		return bogus(name, t, zone, dns.ExtendedErrorCodeDNSBogus, "the denial record is the parent's, at a delegation: it says nothing about the child zone's records")
	}
	return nil
}

func (p *proof) nsecWildcard(owner string, t uint16, labels int) (Status, error) {
	n, err := p.coverOrFail(owner, t, "a wildcard answer without an NSEC record proving that the name itself does not exist")
	if err != nil {
		return Bogus, err
	}
	if dns.CountLabel(nsecEncloser(owner, n)) != labels {
		return Bogus, bogus(owner, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "a wildcard answer, but the NSEC record shows a closer name than the wildcard's")
	}
	return Secure, nil
}

func (p *proof) nsecCut(child string) (*delegation, error) {
	n, err := p.nsecAt(child)
	if err != nil {
		return nil, err
	}
	if n != nil {
		switch {
		case typeIn(n.TypeBitMap, dns.TypeDS):
			return nil, bogus(child, dns.TypeDS, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "no DS records came back, but the NSEC record lists them")
		case typeIn(n.TypeBitMap, dns.TypeSOA):
			return nil, bogus(child, dns.TypeDS, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "the denial of DS records comes from the child zone's apex, not its parent")
		case typeIn(n.TypeBitMap, dns.TypeNS):
			return &delegation{kind: cutInsecure, why: "the delegation to " + displayName(child) + " has no DS records (proven by NSEC)"}, nil
		}
		return &delegation{kind: cutNone}, nil
	}
	cov, err := p.coverOrFail(child, dns.TypeDS, "no NSEC record proves the absence of DS records")
	if err != nil {
		return nil, err
	}
	if next := dns.CanonicalName(cov.NextDomain); next != child && isSubDomain(child, next) {
		return &delegation{kind: cutNone}, nil
	}
	return &delegation{kind: cutAbsent}, nil
}
