package dane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// vlookup is the state of one validating lookup (one call of Lookup):
// its context, its work budget, the replies it received and the earliest
// expiry of the facts its current answer relies on.
type vlookup struct {
	r   *Resolver
	v   *Validator
	ctx context.Context
	now time.Time

	queries, checks, hashes int // work done, against the maxLookup* limits

	replies map[qkey]*dns.Msg
	servers map[qkey]string
	hashes3 map[hashKey]string

	exp time.Time // the earliest expiry of what the answer being validated used
}

type qkey struct {
	name  string
	qtype uint16
}

// queryError is an upstream query, made to validate an answer, that
// failed: the lookup is Indeterminate (or Bogus, when the upstream said
// so with an extended error).
type queryError struct {
	name  string
	qtype uint16
	f     *failure
}

// Error says which records validation needed and why it could not have them.
func (e *queryError) Error() string {
	msg := "validating needed the " + dns.TypeToString[e.qtype] + " records of " + displayName(e.name)
	if e.f.err != nil {
		msg += ": " + e.f.err.Error()
	}
	return msg
}

// Unwrap returns the failed query's cause.
func (e *queryError) Unwrap() error { return e.f.err }

// limitError reports a work limit reached.
func limitError(what string, limit int) error {
	return fmt.Errorf("%w: more than %d %s in one lookup", ErrValidationLimit, limit, what)
}

func newVlookup(ctx context.Context, r *Resolver) *vlookup {
	now := r.Validator.clock()
	return &vlookup{r: r, v: r.Validator, ctx: ctx, now: now, exp: now.Add(maxCacheTTL)}
}

// use lowers the expiry of the current answer to t.
func (vl *vlookup) use(t time.Time) {
	if t.Before(vl.exp) {
		vl.exp = t
	}
}

// charge counts one signature verification against the lookup's budget.
func (vl *vlookup) charge() error {
	if vl.checks >= maxLookupChecks {
		return limitError("signature verifications", maxLookupChecks)
	}
	vl.checks++
	return nil
}

// ask sends one query upstream (with CD and DO set, see Resolver.query),
// at most once per name and type in a lookup. A referral is an error: the
// upstream is not a recursive resolver.
func (vl *vlookup) ask(name string, qtype uint16) (*dns.Msg, string, error) {
	k := qkey{name, qtype}
	if m, ok := vl.replies[k]; ok {
		return m, vl.servers[k], nil
	}
	if vl.queries >= maxLookupQueries {
		return nil, "", limitError("queries", maxLookupQueries)
	}
	vl.queries++
	resp, f := vl.r.query(vl.ctx, name, qtype)
	if f != nil {
		return nil, "", &queryError{name: name, qtype: qtype, f: f}
	}
	m := resp.msg
	if len(m.Answer) == 0 && !hasSOA(m.Ns) && hasType(m.Ns, dns.TypeNS) {
		return nil, "", &queryError{name: name, qtype: qtype, f: &failure{server: resp.server, rcode: -1,
			err: fmt.Errorf("%s answered with a referral; it is not a recursive resolver", resp.server)}}
	}
	if vl.replies == nil {
		vl.replies, vl.servers = make(map[qkey]*dns.Msg), make(map[qkey]string)
	}
	vl.replies[k] = m
	vl.servers[k] = resp.server
	return m, resp.server, nil
}

// zoneKeys is what the chain of trust establishes about a zone.
type zoneKeys struct {
	zone    string        // the apex, a lower-case FQDN
	status  Status        // Secure or Insecure
	keys    []*dns.DNSKEY // Secure: the validated keys that may sign RRsets
	tags    []uint16      // their key tags
	expires time.Time
	why     string // Insecure: why
}

// cutKind is what a secure zone proves about a name below it.
type cutKind uint8

const (
	cutNone     cutKind = iota // the name is in the zone: not a zone cut
	cutSecure                  // a delegation with usable DS records
	cutInsecure                // a delegation without usable DS records, or possibly one (NSEC3 opt-out)
	cutAbsent                  // the name does not exist: no zone cut at or below it
)

// delegation is a validated fact about a name from its parent zone.
type delegation struct {
	kind    cutKind
	ds      []*dns.DS // cutSecure: the usable DS records
	expires time.Time
	why     string
}

// insecureZone returns an Insecure zoneKeys.
func (vl *vlookup) insecureZone(zone, why string, expires time.Time) *zoneKeys {
	return &zoneKeys{zone: zone, status: Insecure, expires: expires, why: why}
}

// zoneFor follows the chain of trust from the closest trust anchor at or
// above name down to name, one label at a time, and returns the deepest
// zone it reaches: a secure zone with its validated keys, which holds
// name (or is name's own zone, when name is a zone apex), or an Insecure
// result when an insecure delegation, an unsupported algorithm or the lack
// of any trust anchor lies at or above name.
func (vl *vlookup) zoneFor(name string) (*zoneKeys, error) {
	anchor := vl.v.anchorFor(name)
	if anchor == "" {
		return vl.insecureZone(".", "no trust anchor covers "+displayName(name), vl.now.Add(maxCacheTTL)), nil
	}
	zk, err := vl.anchorKeys(anchor)
	if err != nil || zk.status != Secure {
		return zk, err
	}
	for _, child := range pathBelow(anchor, name) {
		d, err := vl.delegationAt(zk, child)
		if err != nil {
			return nil, err
		}
		switch d.kind {
		case cutNone:
			continue
		case cutAbsent:
			return zk, nil
		case cutInsecure:
			return vl.insecureZone(child, d.why, d.expires), nil
		}
		zk, err = vl.childKeys(child, d)
		if err != nil || zk.status != Secure {
			return zk, err
		}
	}
	return zk, nil
}

// keys returns the cached zoneKeys of zone, or computes and caches them.
func (vl *vlookup) keys(zone string, compute func() (*zoneKeys, error)) (*zoneKeys, error) {
	v, err := vl.v.cache.do(vl.ctx, cacheKey{zone, dns.TypeDNSKEY, kindKeys}, vl.v.clock, func() (any, time.Time, error) {
		zk, err := compute()
		if err != nil {
			return nil, time.Time{}, err
		}
		return zk, zk.expires, nil
	})
	if err != nil {
		return nil, err
	}
	zk := v.(*zoneKeys)
	vl.use(zk.expires)
	return zk, nil
}

// anchorKeys returns the keys of a zone with a trust anchor.
func (vl *vlookup) anchorKeys(zone string) (*zoneKeys, error) {
	return vl.keys(zone, func() (*zoneKeys, error) {
		set := vl.v.anchors[zone]
		ds := usableDS(set.ds)
		var keys []*dns.DNSKEY
		for _, k := range set.keys {
			if zoneKeyUsable(k) {
				keys = append(keys, k)
			}
		}
		if len(ds) == 0 && len(keys) == 0 {
			return vl.insecureZone(zone, "no trust anchor of "+displayName(zone)+" has a supported algorithm and digest type", vl.now.Add(maxCacheTTL)), nil
		}
		return vl.fetchKeys(zone, func(k *dns.DNSKEY) bool {
			for _, a := range keys {
				if sameKey(a, k) {
					return true
				}
			}
			for _, d := range ds {
				if dsMatchesKey(d, k) {
					return true
				}
			}
			return false
		}, "trust anchor", vl.now.Add(maxCacheTTL))
	})
}

// childKeys returns the keys of a securely delegated zone.
func (vl *vlookup) childKeys(zone string, d *delegation) (*zoneKeys, error) {
	return vl.keys(zone, func() (*zoneKeys, error) {
		return vl.fetchKeys(zone, func(k *dns.DNSKEY) bool {
			for _, ds := range d.ds {
				if dsMatchesKey(ds, k) {
					return true
				}
			}
			return false
		}, "DS record", d.expires)
	})
}

// fetchKeys asks for the DNSKEY RRset of zone and validates it: a key
// that match accepts (one named by a DS record or a trust anchor) must
// have signed it (RFC 4035 §5.2). notAfter bounds the result's lifetime
// by that of what authenticated the entry keys.
func (vl *vlookup) fetchKeys(zone string, match func(*dns.DNSKEY) bool, by string, notAfter time.Time) (*zoneKeys, error) {
	m, _, err := vl.ask(zone, dns.TypeDNSKEY)
	if err != nil {
		return nil, err
	}
	ans := groupRRs(m.Answer)
	k := rrsetKey{zone, dns.TypeDNSKEY}
	set := ans.sets[k]
	if len(set) == 0 {
		return nil, bogus(zone, dns.TypeDNSKEY, zone, dns.ExtendedErrorCodeDNSKEYMissing,
			"the zone has no DNSKEY records, though a "+by+" says it is signed")
	}
	var entry []*dns.DNSKEY
	var usable []*dns.DNSKEY
	for _, rr := range set {
		key, ok := rr.(*dns.DNSKEY)
		if !ok {
			continue
		}
		if key.Flags&dns.ZONE != 0 && key.Flags&dns.REVOKE == 0 && key.Protocol == 3 && match(key) {
			entry = append(entry, key)
		}
		if zoneKeyUsable(key) {
			usable = append(usable, key)
		}
	}
	if len(entry) == 0 {
		return nil, bogus(zone, dns.TypeDNSKEY, zone, dns.ExtendedErrorCodeDNSKEYMissing,
			fmt.Sprintf("none of the %d DNSKEY records matches a %s", len(set), by))
	}
	exp, labels, err := vl.verify(set, ans.sigs[k], zone, entry, tagsOf(entry))
	if err != nil {
		return nil, err
	}
	if expanded(zone, labels) {
		return nil, bogus(zone, dns.TypeDNSKEY, zone, dns.ExtendedErrorCodeDNSBogus, "the DNSKEY RRset is signed as a wildcard expansion")
	}
	if notAfter.Before(exp) {
		exp = notAfter
	}
	return &zoneKeys{zone: zone, status: Secure, keys: usable, tags: tagsOf(usable), expires: exp}, nil
}

func tagsOf(keys []*dns.DNSKEY) []uint16 {
	out := make([]uint16, len(keys))
	for i, k := range keys {
		out[i] = k.KeyTag()
	}
	return out
}

// verify checks that one of sigs, made by a key among keys of zone, covers
// rrset and is within its validity period (RFC 4035 §5.3). It returns
// when the verified RRset expires (its TTL, or the signature's expiration
// if that comes first) and the signature's label count, which tells a
// wildcard expansion. The work is bounded by maxRRsetChecks, maxKeysPerTag
// and the lookup's budget.
func (vl *vlookup) verify(rrset []dns.RR, sigs []*dns.RRSIG, zone string, keys []*dns.DNSKEY, tags []uint16) (time.Time, int, error) {
	h := rrset[0].Header()
	owner, typ := dns.CanonicalName(h.Name), h.Rrtype
	ownerLabels := dns.CountLabel(owner)
	code, reason := uint16(dns.ExtendedErrorCodeRRSIGsMissing), "no signature by a key of the zone"
	tries := 0
	for _, sig := range sigs {
		if !sameName(sig.SignerName, zone) || !algorithmSupported(sig.Algorithm) || !isSubDomain(zone, owner) {
			continue
		}
		if int(sig.Labels) > ownerLabels {
			code, reason = dns.ExtendedErrorCodeDNSBogus, "a signature claims more labels than the owner name has"
			continue
		}
		exp, c, why := sigWindow(sig, vl.now)
		if c != 0 {
			code, reason = c, why
			continue
		}
		n := 0
		for i, k := range keys {
			if tags[i] != sig.KeyTag || k.Algorithm != sig.Algorithm {
				continue
			}
			if n == maxKeysPerTag {
				break
			}
			n++
			if tries == maxRRsetChecks {
				return time.Time{}, 0, bogus(owner, typ, zone, dns.ExtendedErrorCodeDNSBogus,
					fmt.Sprintf("no valid signature among the first %d tried", maxRRsetChecks))
			}
			tries++
			if err := vl.charge(); err != nil {
				return time.Time{}, 0, err
			}
			if sig.Verify(k, rrset) == nil {
				ttl := sig.OrigTtl
				for _, rr := range rrset {
					ttl = min(ttl, rr.Header().Ttl)
				}
				if t := vl.now.Add(time.Duration(ttl) * time.Second); t.Before(exp) {
					exp = t
				}
				return exp, int(sig.Labels), nil
			}
			code, reason = dns.ExtendedErrorCodeDNSBogus, fmt.Sprintf("the signature by key %d does not verify", sig.KeyTag)
		}
		if n == 0 && code == dns.ExtendedErrorCodeRRSIGsMissing {
			code, reason = dns.ExtendedErrorCodeDNSKEYMissing, fmt.Sprintf("signed by key %d, which is not among the keys allowed to sign it", sig.KeyTag)
		}
	}
	return time.Time{}, 0, bogus(owner, typ, zone, code, reason)
}

// delegationAt returns what the secure zone parent proves about child, the
// next name below it on the way down: a secure or insecure delegation, no
// cut, or a name that does not exist. It asks for the DS RRset of child,
// which the parent zone answers (RFC 4035 §3.1.4.1).
func (vl *vlookup) delegationAt(parent *zoneKeys, child string) (*delegation, error) {
	v, err := vl.v.cache.do(vl.ctx, cacheKey{child, dns.TypeDS, kindDeleg}, vl.v.clock, func() (any, time.Time, error) {
		d, err := vl.proveDelegation(parent, child)
		if err != nil {
			return nil, time.Time{}, err
		}
		if parent.expires.Before(d.expires) {
			d.expires = parent.expires
		}
		return d, d.expires, nil
	})
	if err != nil {
		return nil, err
	}
	d := v.(*delegation)
	vl.use(d.expires)
	return d, nil
}

func (vl *vlookup) proveDelegation(parent *zoneKeys, child string) (*delegation, error) {
	m, _, err := vl.ask(child, dns.TypeDS)
	if err != nil {
		return nil, err
	}
	ans := groupRRs(m.Answer)
	if set := ans.sets[rrsetKey{child, dns.TypeDS}]; len(set) > 0 {
		exp, labels, err := vl.verify(set, ans.sigs[rrsetKey{child, dns.TypeDS}], parent.zone, parent.keys, parent.tags)
		if err != nil {
			return nil, err
		}
		if expanded(child, labels) {
			return nil, bogus(child, dns.TypeDS, parent.zone, dns.ExtendedErrorCodeDNSBogus, "the DS RRset is signed as a wildcard expansion")
		}
		var all []*dns.DS
		for _, rr := range set {
			if ds, ok := rr.(*dns.DS); ok {
				all = append(all, ds)
			}
		}
		if u := usableDS(all); len(u) > 0 {
			return &delegation{kind: cutSecure, ds: u, expires: exp}, nil
		}
		return &delegation{kind: cutInsecure, expires: exp,
			why: "the DS records of " + displayName(child) + " name only unsupported algorithms or digest types (RFC 4035 §5.2)"}, nil
	}
	if set := ans.sets[rrsetKey{child, dns.TypeCNAME}]; len(set) > 0 {
		// An alias is not a zone cut; its signature says it belongs to
		// the parent zone.
		exp, _, err := vl.verify(set, ans.sigs[rrsetKey{child, dns.TypeCNAME}], parent.zone, parent.keys, parent.tags)
		if err != nil {
			return nil, err
		}
		return &delegation{kind: cutNone, expires: exp}, nil
	}
	p := vl.newProof(parent, groupRRs(m.Ns))
	d, err := p.cut(child)
	if err != nil {
		return nil, err
	}
	d.expires = p.expires(vl.now.Add(maxCacheTTL))
	return d, nil
}

// statusOf returns the status an error from validation stands for.
func statusOf(err error) Status {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return Bogus
	}
	var qe *queryError
	if errors.As(err, &qe) && qe.f.bogus {
		return Bogus
	}
	return Indeterminate
}
