package dane

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// n3 is an NSEC3 record usable in a proof.
type n3 struct {
	rr   *dns.NSEC3
	key  rrsetKey
	hash string // the owner's hash label, upper case
	next string // the next hashed owner, upper case
}

type hashKey struct {
	name, salt string
	iter       uint16
}

// nsec3s returns the NSEC3 records of the zone in this section that a
// proof may use: owned directly below the zone apex, hash algorithm SHA-1
// and flags 0 or 1 (RFC 5155 §8.1, §8.2). Records with other parameters
// are ignored, as those sections require. All must share one iteration
// count and salt, which RFC 5155 §8.2 allows a validator to require; it
// also bounds the hashing to one parameter set.
func (p *proof) nsec3s() ([]n3, error) {
	if p.n3done {
		return p.n3list, p.n3err
	}
	p.n3done = true
	for _, k := range p.sec.order {
		if k.t != dns.TypeNSEC3 || parentName(k.name) != p.zk.zone {
			continue
		}
		r, ok := p.sec.sets[k][0].(*dns.NSEC3)
		if !ok || r.Hash != dns.SHA1 || r.Flags > 1 {
			continue
		}
		if len(p.n3list) > 0 {
			first := p.n3list[0].rr
			if first.Iterations != r.Iterations || !strings.EqualFold(first.Salt, r.Salt) {
				p.n3err = bogus(k.name, dns.TypeNSEC3, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NSEC3 records with different iterations or salts")
				return nil, p.n3err
			}
		}
		i, _ := dns.NextLabel(k.name, 0)
		p.n3list = append(p.n3list, n3{rr: r, key: k, hash: strings.ToUpper(k.name[:i-1]), next: strings.ToUpper(r.NextDomain)})
	}
	return p.n3list, nil
}

// nsec3Start returns the usable NSEC3 records, or the outcome when there
// are none or their iteration count is above maxNSEC3Iterations: then,
// once one of them is validly signed, the answer is Insecure (RFC 9276
// §3.2), and no name is hashed.
func (p *proof) nsec3Start(name string, t uint16, what string) ([]n3, Status, error) {
	list, err := p.nsec3s()
	if err != nil {
		return nil, Bogus, err
	}
	if len(list) == 0 {
		return nil, Bogus, p.missing(name, t, what+" without the NSEC or NSEC3 records that prove it")
	}
	if it := list[0].rr.Iterations; it > maxNSEC3Iterations {
		for _, r := range list {
			if err := p.valid(r.key); err == nil {
				return nil, Insecure, nil
			} else if fatal(err) {
				return nil, Bogus, err
			}
		}
		return nil, Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeUnsupportedNSEC3IterValue,
			fmt.Sprintf("NSEC3 records with %d iterations, none validly signed", it))
	}
	return list, Secure, nil
}

// hash returns the NSEC3 hash of name with the parameters of r, counting
// it against the lookup's budget.
func (p *proof) hash(name string, r *dns.NSEC3) (string, error) {
	k := hashKey{name, strings.ToLower(r.Salt), r.Iterations}
	if h, ok := p.vl.hashes3[k]; ok {
		return h, nil
	}
	if p.vl.hashes >= maxLookupHashes {
		return "", limitError("NSEC3 hashes", maxLookupHashes)
	}
	p.vl.hashes++
	h := dns.HashName(name, dns.SHA1, r.Iterations, r.Salt)
	if h == "" {
		return "", bogus(name, dns.TypeNSEC3, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "an NSEC3 salt that is not hexadecimal")
	}
	if p.vl.hashes3 == nil {
		p.vl.hashes3 = make(map[hashKey]string)
	}
	p.vl.hashes3[k] = h
	return h, nil
}

// nsec3Covers reports whether the span from owner to next (hashes in
// base32hex, whose order is that of the hash values) strictly contains h.
// The last record wraps around to the first.
func nsec3Covers(owner, next, h string) bool {
	switch {
	case owner < next:
		return owner < h && h < next
	case owner == next: // a single record covers every other hash
		return h != owner
	}
	return h > owner || h < next
}

// n3match returns the validated NSEC3 record whose owner is the hash of
// name, or nil.
func (p *proof) n3match(list []n3, name string) (*n3, error) {
	h, err := p.hash(name, list[0].rr)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for i := range list {
		if list[i].hash != h {
			continue
		}
		if err := p.valid(list[i].key); err != nil {
			if fatal(err) {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return &list[i], nil
	}
	return nil, firstErr
}

// n3cover returns a validated NSEC3 record whose span covers the hash of
// name, or nil.
func (p *proof) n3cover(list []n3, name string) (*n3, error) {
	h, err := p.hash(name, list[0].rr)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for i := range list {
		if !nsec3Covers(list[i].hash, list[i].next, h) {
			continue
		}
		if err := p.valid(list[i].key); err != nil {
			if fatal(err) {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return &list[i], nil
	}
	return nil, firstErr
}

// closestEncloser finds the closest encloser proof of RFC 5155 §8.3 for
// name: the longest ancestor ce with a matching NSEC3 record, and the
// next closer name nc (one label longer, towards name) with a covering
// one. When name itself has a matching record, it returns name and no
// next closer name. The record matching ce must not be a delegation
// point's or have a DNAME: names below those are in another zone.
func (p *proof) closestEncloser(list []n3, name string, t uint16) (ce, nc string, cover *n3, err error) {
	for cur := name; isSubDomain(p.zk.zone, cur); cur = parentName(cur) {
		m, err := p.n3match(list, cur)
		if err != nil {
			return "", "", nil, err
		}
		if m != nil {
			if cur == name {
				return name, "", nil, nil
			}
			bm := m.rr.TypeBitMap
			if (typeIn(bm, dns.TypeNS) && !typeIn(bm, dns.TypeSOA)) || typeIn(bm, dns.TypeDNAME) {
				return "", "", nil, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus,
					"the closest encloser "+displayName(cur)+" is a delegation point or has a DNAME")
			}
			next := childToward(cur, name)
			c, err := p.n3cover(list, next)
			if err != nil {
				return "", "", nil, err
			}
			if c == nil {
				return "", "", nil, p.missing(name, t, "no NSEC3 record covers the next closer name "+displayName(next))
			}
			return cur, next, c, nil
		}
		if cur == p.zk.zone {
			break
		}
	}
	return "", "", nil, p.missing(name, t, "no NSEC3 record matches an ancestor of the name (no closest encloser proof)")
}

// childToward returns the name one label longer than ancestor on the way
// to name.
func childToward(ancestor, name string) string {
	labels := dns.CountLabel(ancestor) + 1
	i, start := dns.PrevLabel(name, labels)
	if start {
		return name
	}
	return dns.CanonicalName(name[i:])
}

func (p *proof) nsec3NXDomain(name string, t uint16) (Status, error) {
	list, st, err := p.nsec3Start(name, t, "NXDOMAIN")
	if list == nil {
		return st, err
	}
	ce, nc, cover, err := p.closestEncloser(list, name, t)
	if err != nil {
		return Bogus, err
	}
	if nc == "" {
		return Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN, but an NSEC3 record shows that the name exists")
	}
	wc := "*." + ce
	if m, err := p.n3match(list, wc); err != nil || m != nil {
		if err != nil {
			return Bogus, err
		}
		return Bogus, bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "NXDOMAIN, but the wildcard "+displayName(wc)+" exists")
	}
	c, err := p.n3cover(list, wc)
	if err != nil {
		return Bogus, err
	}
	if c == nil {
		return Bogus, p.missing(name, t, "NXDOMAIN without an NSEC3 record proving that the wildcard "+displayName(wc)+" does not exist")
	}
	if cover.rr.Flags&1 != 0 {
		// Opt-out: the next closer name may be an unsigned delegation
		// the chain skips, so its non-existence is not proven.
		return Insecure, nil
	}
	return Secure, nil
}

func (p *proof) nsec3NoData(name string, t uint16) (Status, error) {
	list, st, err := p.nsec3Start(name, t, "NODATA")
	if list == nil {
		return st, err
	}
	m, err := p.n3match(list, name)
	if err != nil {
		return Bogus, err
	}
	if m != nil {
		if err := nodataTypes(m.rr.TypeBitMap, name, t, p.zk.zone); err != nil {
			return Bogus, err
		}
		return Secure, nil
	}
	ce, _, cover, err := p.closestEncloser(list, name, t)
	if err != nil {
		return Bogus, err
	}
	optOut := cover.rr.Flags&1 != 0
	if t == dns.TypeDS {
		// RFC 5155 §8.6: without a matching record, only an opt-out span
		// covering the next closer name answers a DS query: an insecure
		// delegation the chain skipped.
		if optOut {
			return Insecure, nil
		}
		return Bogus, p.missing(name, t, "no NSEC3 record matches the name and the span covering it is not opt-out")
	}
	wc := "*." + ce
	w, err := p.n3match(list, wc)
	if err != nil {
		return Bogus, err
	}
	if w == nil {
		if optOut {
			return Insecure, nil // the name may sit under an unsigned delegation
		}
		return Bogus, p.missing(name, t, "NODATA, but the NSEC3 records prove the name does not exist and show no wildcard")
	}
	if err := nodataTypes(w.rr.TypeBitMap, wc, t, p.zk.zone); err != nil {
		return Bogus, err
	}
	if optOut {
		return Insecure, nil
	}
	return Secure, nil
}

func (p *proof) nsec3Wildcard(owner string, t uint16, labels int) (Status, error) {
	list, st, err := p.nsec3Start(owner, t, "a wildcard answer")
	if list == nil {
		return st, err
	}
	i, start := dns.PrevLabel(owner, labels+1)
	if start {
		return Bogus, bogus(owner, t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "a wildcard signature with a wrong label count")
	}
	nc := dns.CanonicalName(owner[i:])
	c, err := p.n3cover(list, nc)
	if err != nil {
		return Bogus, err
	}
	if c == nil {
		return Bogus, p.missing(owner, t, "a wildcard answer without an NSEC3 record covering the next closer name "+displayName(nc))
	}
	if c.rr.Flags&1 != 0 {
		return Insecure, nil
	}
	return Secure, nil
}

func (p *proof) nsec3Cut(child string) (*delegation, error) {
	list, st, err := p.nsec3Start(child, dns.TypeDS, "no DS records")
	if list == nil {
		if err != nil {
			return nil, err
		}
		_ = st // Insecure: iterations above the limit
		return &delegation{kind: cutInsecure, why: fmt.Sprintf("the NSEC3 records of %s use more than %d iterations (RFC 9276 §3.2)", displayName(p.zk.zone), maxNSEC3Iterations)}, nil
	}
	m, err := p.n3match(list, child)
	if err != nil {
		return nil, err
	}
	if m != nil {
		bm := m.rr.TypeBitMap
		switch {
		case typeIn(bm, dns.TypeDS):
			return nil, bogus(child, dns.TypeDS, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "no DS records came back, but the NSEC3 record lists them")
		case typeIn(bm, dns.TypeSOA):
			return nil, bogus(child, dns.TypeDS, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "the denial of DS records comes from the child zone's apex, not its parent")
		case typeIn(bm, dns.TypeNS):
			return &delegation{kind: cutInsecure, why: "the delegation to " + displayName(child) + " has no DS records (proven by NSEC3)"}, nil
		}
		return &delegation{kind: cutNone}, nil
	}
	_, _, cover, err := p.closestEncloser(list, child, dns.TypeDS)
	if err != nil {
		return nil, err
	}
	if cover.rr.Flags&1 != 0 {
		return &delegation{kind: cutInsecure, why: "an NSEC3 opt-out span covers " + displayName(child) + ": it may be an unsigned delegation"}, nil
	}
	return &delegation{kind: cutAbsent}, nil
}
