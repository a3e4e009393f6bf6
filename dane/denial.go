package dane

import (
	"errors"
	"time"

	"github.com/miekg/dns"
)

// proof checks authenticated denial of existence (RFC 4035 §5.4, RFC 5155
// §8): the NSEC or NSEC3 records of a reply's authority section, signed by
// one secure zone, proving that a name does not exist, has no records of
// a type, has no DS records, or was not matched exactly by a wildcard.
// Each RRset it relies on is verified once, with the zone's keys.
type proof struct {
	vl      *vlookup
	zk      *zoneKeys
	sec     *section
	checked map[rrsetKey]error
	exp     time.Time // the earliest expiry of the records relied on

	n3done bool
	n3list []n3
	n3err  error
}

func (vl *vlookup) newProof(zk *zoneKeys, sec *section) *proof {
	return &proof{vl: vl, zk: zk, sec: sec, checked: make(map[rrsetKey]error), exp: zk.expires}
}

// expires returns the earlier of t and the expiry of what the proof used.
func (p *proof) expires(t time.Time) time.Time {
	if p.exp.Before(t) {
		return p.exp
	}
	return t
}

// valid verifies the RRset k with the zone's keys, once. Denial records
// signed as a wildcard expansion prove nothing (RFC 4035 §5.3.4).
func (p *proof) valid(k rrsetKey) error {
	if err, ok := p.checked[k]; ok {
		return err
	}
	exp, labels, err := p.vl.verify(p.sec.sets[k], p.sec.sigs[k], p.zk.zone, p.zk.keys, p.zk.tags)
	if err == nil && expanded(k.name, labels) {
		err = bogus(k.name, k.t, p.zk.zone, dns.ExtendedErrorCodeDNSBogus, "the record is signed as a wildcard expansion")
	}
	if err == nil && exp.Before(p.exp) {
		p.exp = exp
	}
	p.checked[k] = err
	return err
}

// fatal reports whether an error ends the proof at once rather than
// ruling out one record: a work limit or a failed query.
func fatal(err error) bool {
	var ve *ValidationError
	return err != nil && !errors.As(err, &ve)
}

// usesNSEC reports whether the zone denies with NSEC records in this
// section (else NSEC3 is tried).
func (p *proof) usesNSEC() bool {
	for _, k := range p.sec.order {
		if k.t == dns.TypeNSEC && isSubDomain(p.zk.zone, k.name) {
			return true
		}
	}
	return false
}

// missing is the error for a denial without the records to prove it.
func (p *proof) missing(name string, t uint16, what string) error {
	return bogus(name, t, p.zk.zone, dns.ExtendedErrorCodeNSECMissing, what)
}

// nxdomain proves that name does not exist and that no wildcard could
// have produced it.
func (p *proof) nxdomain(name string, t uint16) (Status, error) {
	if p.usesNSEC() {
		return p.nsecNXDomain(name, t)
	}
	return p.nsec3NXDomain(name, t)
}

// nodata proves that name exists without records of type t (directly, as
// an empty non-terminal, or through a wildcard), or, for DS, that name
// is an insecure delegation.
func (p *proof) nodata(name string, t uint16) (Status, error) {
	if p.usesNSEC() {
		return p.nsecNoData(name, t)
	}
	return p.nsec3NoData(name, t)
}

// wildcard proves that owner, answered from a wildcard whose closest
// encloser has labels labels, does not exist itself (RFC 4035 §5.3.4,
// RFC 5155 §8.8).
func (p *proof) wildcard(owner string, t uint16, labels int) (Status, error) {
	if p.usesNSEC() {
		return p.nsecWildcard(owner, t, labels)
	}
	return p.nsec3Wildcard(owner, t, labels)
}

// cut tells, for the DS query at child, what the zone proves: no DS at a
// delegation (insecure), no zone cut at child (an ordinary name or an empty
// non-terminal), or no such name at all.
func (p *proof) cut(child string) (*delegation, error) {
	if p.usesNSEC() {
		return p.nsecCut(child)
	}
	return p.nsec3Cut(child)
}
