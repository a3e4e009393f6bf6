package signedzone

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// NSEC3Params makes a zone deny existence with NSEC3 (RFC 5155) instead
// of NSEC.
type NSEC3Params struct {
	Iterations uint16
	Salt       string // hex, "" for none
	// OptOut leaves unsigned delegations out of the chain and sets the
	// opt-out flag on every NSEC3 record (RFC 5155 §6).
	OptOut bool
}

// Zone is one zone: its records, its keys and how it denies existence.
// Add records, Delegate children, then Sign (New does it). After signing,
// records and signatures can be changed to break the zone on purpose.
// A Zone is safe for concurrent use once signed.
type Zone struct {
	// Origin is the apex, a lower-case FQDN.
	Origin string
	// KSKs sign the DNSKEY RRset; ZSKs sign everything else (the KSKs do
	// when there is no ZSK). A zone without keys is unsigned.
	KSKs, ZSKs []*Key
	// NSEC3, when set, makes the zone use NSEC3.
	NSEC3 *NSEC3Params
	// Inception and Expiration bound every signature; the defaults are an
	// hour ago and thirty days from Sign.
	Inception, Expiration time.Time
	// ExtraKeys are published in the DNSKEY RRset, ahead of the zone's
	// own keys, without signing anything: keys being rolled, or keys
	// crafted to collide with a real key's tag.
	ExtraKeys []*dns.DNSKEY
	// TTL is the TTL of the DS, NS and denial records the zone makes;
	// default 300. Records added without a TTL get 3600.
	TTL uint32

	mu     sync.Mutex
	nodes  map[string]map[uint16][]dns.RR // owner -> type -> RRset (RRSIGs not included)
	sigs   map[string]map[uint16][]*dns.RRSIG
	nsec3  map[string]*dns.NSEC3 // hashed owner -> record
	hashes []string              // sorted hashed owner names (FQDN, lower case)
	signed bool
}

// NewZone returns an empty zone with an SOA and NS record at origin. Keys
// flagged 257 become KSKs, others ZSKs.
func NewZone(origin string, keys ...*Key) *Zone {
	origin = dns.CanonicalName(origin)
	z := &Zone{Origin: origin, nodes: map[string]map[uint16][]dns.RR{}, sigs: map[string]map[uint16][]*dns.RRSIG{}}
	for _, k := range keys {
		if k.DNSKEY.Flags&dns.SEP != 0 {
			z.KSKs = append(z.KSKs, k)
		} else {
			z.ZSKs = append(z.ZSKs, k)
		}
	}
	ns := "ns." + origin
	if origin == "." {
		ns = "ns.root-servers.test."
	}
	z.MustAdd(
		fmt.Sprintf("%s 300 IN SOA %s hostmaster.%s 1 3600 600 86400 300", origin, ns, strings.TrimPrefix(origin, ".")),
		fmt.Sprintf("%s 300 IN NS %s", origin, ns),
	)
	return z
}

// Add parses records in presentation format (absolute names; TTL 3600
// unless given) and adds them. Records outside the zone are an error.
func (z *Zone) Add(records ...string) error {
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return fmt.Errorf("signedzone: %q: %w", s, err)
		}
		if rr == nil {
			return fmt.Errorf("signedzone: %q is empty", s)
		}
		if err := z.AddRR(rr); err != nil {
			return err
		}
	}
	return nil
}

// MustAdd is Add for test set-up; it panics on error.
func (z *Zone) MustAdd(records ...string) {
	if err := z.Add(records...); err != nil {
		panic(err)
	}
}

func (z *Zone) ttl() uint32 {
	if z.TTL == 0 {
		return 300
	}
	return z.TTL
}

// AddRR adds records.
func (z *Zone) AddRR(rrs ...dns.RR) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		if h.Class == 0 {
			h.Class = dns.ClassINET
		}
		if !dns.IsSubDomain(z.Origin, h.Name) {
			return fmt.Errorf("signedzone: %s is not in zone %s", h.Name, z.Origin)
		}
		n := z.nodes[h.Name]
		if n == nil {
			n = map[uint16][]dns.RR{}
			z.nodes[h.Name] = n
		}
		n[h.Rrtype] = append(n[h.Rrtype], rr)
	}
	return nil
}

// Remove deletes the RRset of type t at name (every type when t is 0),
// with its signatures. Denial records are not recomputed: call Sign again
// for that.
func (z *Zone) Remove(name string, t uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = dns.CanonicalName(name)
	if t == 0 {
		delete(z.nodes, name)
		delete(z.sigs, name)
		return
	}
	delete(z.nodes[name], t)
	delete(z.sigs[name], t)
	if len(z.nodes[name]) == 0 {
		delete(z.nodes, name)
	}
}

// DS returns the DS records of the zone's KSKs with digest type digest
// (dns.SHA256, dns.SHA384…).
func (z *Zone) DS(digest uint8) []dns.RR {
	var out []dns.RR
	for _, k := range z.KSKs {
		ds := k.DNSKEY.ToDS(digest)
		if ds != nil {
			ds.Hdr.Ttl = z.ttl()
			out = append(out, ds)
		}
	}
	return out
}

// Delegate adds child's NS records to z and, when digest is not 0 and the
// child is signed, the DS records of the child's KSKs with that digest
// type. With digest 0 the delegation is insecure.
func (z *Zone) Delegate(child *Zone, digest uint8) {
	ns := fmt.Sprintf("%s %d IN NS ns.%s", child.Origin, z.ttl(), child.Origin)
	z.MustAdd(ns)
	if digest != 0 {
		if err := z.AddRR(child.DS(digest)...); err != nil {
			panic(err)
		}
	}
}

// isCut reports whether name is a delegation point: NS records below the
// apex. z.mu must be held.
func (z *Zone) isCut(name string) bool {
	if name == z.Origin {
		return false
	}
	_, ok := z.nodes[name][dns.TypeNS]
	return ok
}

// cutAbove returns the delegation point at or above name (below the apex),
// or "". z.mu must be held.
func (z *Zone) cutAbove(name string) string {
	for n := name; n != z.Origin && dns.IsSubDomain(z.Origin, n); n = parent(n) {
		if z.isCut(n) {
			return n
		}
	}
	return ""
}

// authoritative reports whether the zone holds authoritative data at name:
// not below a delegation point (glue). z.mu must be held.
func (z *Zone) authoritative(name string) bool {
	c := z.cutAbove(name)
	return c == "" || c == name
}

func parent(name string) string {
	if name == "." {
		return "."
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// signers returns the keys that sign RRsets of type t.
func (z *Zone) signers(t uint16) []*Key {
	if t == dns.TypeDNSKEY || len(z.ZSKs) == 0 {
		return z.KSKs
	}
	return z.ZSKs
}

func (z *Zone) window() (uint32, uint32) {
	inc, exp := z.Inception, z.Expiration
	if inc.IsZero() {
		inc = time.Now().Add(-time.Hour)
	}
	if exp.IsZero() {
		exp = time.Now().Add(30 * 24 * time.Hour)
	}
	return uint32(inc.Unix()), uint32(exp.Unix())
}

// Sign publishes the keys, builds the NSEC or NSEC3 chain and signs every
// authoritative RRset, replacing earlier signatures. An unsigned zone (no
// keys) gets neither.
func (z *Zone) Sign() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.signed = true
	for name, n := range z.nodes {
		delete(n, dns.TypeNSEC)
		delete(n, dns.TypeDNSKEY)
		if len(n) == 0 {
			delete(z.nodes, name)
		}
	}
	z.sigs = map[string]map[uint16][]*dns.RRSIG{}
	z.nsec3, z.hashes = nil, nil
	if len(z.KSKs) == 0 {
		return nil
	}
	apex := z.nodes[z.Origin]
	for _, k := range z.ExtraKeys {
		apex[dns.TypeDNSKEY] = append(apex[dns.TypeDNSKEY], dns.Copy(k))
	}
	for _, k := range append(append([]*Key(nil), z.KSKs...), z.ZSKs...) {
		apex[dns.TypeDNSKEY] = append(apex[dns.TypeDNSKEY], dns.Copy(k.DNSKEY))
	}
	if z.NSEC3 != nil {
		z.buildNSEC3()
	} else {
		z.buildNSEC()
	}
	for name, n := range z.nodes {
		if !z.authoritative(name) {
			continue
		}
		for t, set := range n {
			if z.isCut(name) && t != dns.TypeDS && t != dns.TypeNSEC {
				continue // delegation NS records are not signed
			}
			if err := z.signLocked(name, t, set, nil); err != nil {
				return err
			}
		}
	}
	for h, rr := range z.nsec3 {
		if err := z.signLocked(h, dns.TypeNSEC3, []dns.RR{rr}, nil); err != nil {
			return err
		}
	}
	return nil
}

// MustSign is Sign for test set-up; it panics on error.
func (z *Zone) MustSign() {
	if err := z.Sign(); err != nil {
		panic(err)
	}
}

// signLocked signs one RRset with every key that signs its type, after
// letting mod change each RRSIG's fields (inception, key tag…) before the
// signature is computed. z.mu must be held.
func (z *Zone) signLocked(name string, t uint16, set []dns.RR, mod func(*dns.RRSIG)) error {
	inc, exp := z.window()
	var sigs []*dns.RRSIG
	for _, k := range z.signers(t) {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Ttl: set[0].Header().Ttl},
			Algorithm:  k.DNSKEY.Algorithm,
			KeyTag:     k.Tag(),
			SignerName: z.Origin,
			Inception:  inc,
			Expiration: exp,
			OrigTtl:    set[0].Header().Ttl,
		}
		if mod != nil {
			mod(sig)
		}
		if err := sig.Sign(k.Signer, set); err != nil {
			return fmt.Errorf("signedzone: signing %s %s: %w", name, dns.TypeToString[t], err)
		}
		sig.Hdr.Ttl = set[0].Header().Ttl
		sigs = append(sigs, sig)
	}
	if z.sigs[name] == nil {
		z.sigs[name] = map[uint16][]*dns.RRSIG{}
	}
	z.sigs[name][t] = sigs
	return nil
}

// Resign signs the RRset of type t at name again, letting mod change each
// RRSIG's fields first (an expired or future validity window, another key
// tag or signer name…). With keys set, those keys sign instead of the
// zone's.
func (z *Zone) Resign(name string, t uint16, mod func(*dns.RRSIG), keys ...*Key) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = dns.CanonicalName(name)
	set := z.rrsetLocked(name, t)
	if len(set) == 0 {
		return fmt.Errorf("signedzone: no %s records at %s", dns.TypeToString[t], name)
	}
	if len(keys) == 0 {
		return z.signLocked(name, t, set, mod)
	}
	saved := z.KSKs
	savedZ := z.ZSKs
	z.KSKs, z.ZSKs = keys, nil
	err := z.signLocked(name, t, set, mod)
	z.KSKs, z.ZSKs = saved, savedZ
	return err
}

// SetSigs replaces the signatures over the RRset of type t at name.
func (z *Zone) SetSigs(name string, t uint16, sigs []*dns.RRSIG) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = dns.CanonicalName(name)
	if z.sigs[name] == nil {
		z.sigs[name] = map[uint16][]*dns.RRSIG{}
	}
	z.sigs[name][t] = sigs
}

// Sigs returns copies of the signatures over the RRset of type t at name.
func (z *Zone) Sigs(name string, t uint16) []*dns.RRSIG {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []*dns.RRSIG
	for _, s := range z.sigs[dns.CanonicalName(name)][t] {
		out = append(out, dns.Copy(s).(*dns.RRSIG))
	}
	return out
}

// RRset returns copies of the records of type t at name (NSEC3 records by
// their hashed owner name).
func (z *Zone) RRset(name string, t uint16) []dns.RR {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []dns.RR
	for _, rr := range z.rrsetLocked(dns.CanonicalName(name), t) {
		out = append(out, dns.Copy(rr))
	}
	return out
}

func (z *Zone) rrsetLocked(name string, t uint16) []dns.RR {
	if t == dns.TypeNSEC3 {
		if r, ok := z.nsec3[name]; ok {
			return []dns.RR{r}
		}
		return nil
	}
	return z.nodes[name][t]
}

// Replace swaps the records of type t at name for rrs, keeping the old
// signatures (which then no longer match, unless Resign is called).
func (z *Zone) Replace(name string, t uint16, rrs ...dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = dns.CanonicalName(name)
	if t == dns.TypeNSEC3 {
		if len(rrs) > 0 {
			z.nsec3[name] = rrs[0].(*dns.NSEC3)
		}
		return
	}
	if z.nodes[name] == nil {
		z.nodes[name] = map[uint16][]dns.RR{}
	}
	z.nodes[name][t] = rrs
}

// names returns the authoritative owner names (delegation points
// included, glue excluded) in canonical order. z.mu must be held.
func (z *Zone) names() []string {
	var out []string
	for name := range z.nodes {
		if z.authoritative(name) {
			out = append(out, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return canonicalLess(out[i], out[j]) })
	return out
}

// bitmap returns the types at a node for its NSEC or NSEC3 record.
func (z *Zone) bitmap(name string, extra ...uint16) []uint16 {
	var ts []uint16
	for t := range z.nodes[name] {
		ts = append(ts, t)
	}
	signed := !z.isCut(name) || z.nodes[name][dns.TypeDS] != nil
	if signed && len(z.nodes[name]) > 0 {
		ts = append(ts, dns.TypeRRSIG)
	}
	ts = append(ts, extra...)
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

// buildNSEC links the authoritative names in canonical order.
func (z *Zone) buildNSEC() {
	names := z.names()
	soa := z.nodes[z.Origin][dns.TypeSOA][0].(*dns.SOA)
	for i, name := range names {
		next := names[(i+1)%len(names)]
		rr := &dns.NSEC{
			Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: soa.Minttl},
			NextDomain: next,
			TypeBitMap: z.bitmap(name, dns.TypeNSEC, dns.TypeRRSIG),
		}
		rr.TypeBitMap = dedup(rr.TypeBitMap)
		z.nodes[name][dns.TypeNSEC] = []dns.RR{rr}
	}
}

// buildNSEC3 hashes the authoritative names and the empty non-terminals
// above them; with opt-out, unsigned delegations are left out.
func (z *Zone) buildNSEC3() {
	p := z.NSEC3
	soa := z.nodes[z.Origin][dns.TypeSOA][0].(*dns.SOA)
	owners := map[string]bool{}
	for _, name := range z.names() {
		if p.OptOut && z.isCut(name) && z.nodes[name][dns.TypeDS] == nil {
			continue
		}
		for n := name; dns.IsSubDomain(z.Origin, n); n = parent(n) {
			owners[n] = true
			if n == z.Origin {
				break
			}
		}
	}
	type entry struct {
		hash string
		name string
	}
	var es []entry
	for n := range owners {
		es = append(es, entry{strings.ToLower(dns.HashName(n, dns.SHA1, p.Iterations, p.Salt)), n})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].hash < es[j].hash })
	z.nsec3 = map[string]*dns.NSEC3{}
	var flags uint8
	if p.OptOut {
		flags = 1
	}
	for i, e := range es {
		next := es[(i+1)%len(es)].hash
		owner := e.hash + "." + z.Origin
		if z.Origin == "." {
			owner = e.hash + "."
		}
		var types []uint16
		if len(z.nodes[e.name]) > 0 {
			types = z.bitmap(e.name)
		}
		rr := &dns.NSEC3{
			Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: soa.Minttl},
			Hash:       dns.SHA1,
			Flags:      flags,
			Iterations: p.Iterations,
			SaltLength: uint8(len(p.Salt) / 2),
			Salt:       p.Salt,
			HashLength: 20,
			NextDomain: strings.ToUpper(next),
			TypeBitMap: dedup(types),
		}
		z.nsec3[owner] = rr
		z.hashes = append(z.hashes, owner)
	}
}

func dedup(ts []uint16) []uint16 {
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	out := ts[:0]
	for i, t := range ts {
		if i == 0 || t != ts[i-1] {
			out = append(out, t)
		}
	}
	return out
}

func toBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
