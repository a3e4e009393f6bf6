package dane

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Validator checks DNSSEC signatures inside the library, from trust
// anchors down to every answer, so that a Resolver can tell secure from
// insecure and bogus answers through any recursive resolver, including
// one that does not validate, strips the AD bit or sits across an
// untrusted network. Set it as Resolver.Validator to switch the Resolver to
// validating mode; see "Validating mode" in the package documentation.
//
// The zero value validates from the root zone's trust anchors
// (RootTrustAnchors). A Validator holds the cache of validated keys,
// delegations and answers: share one between Resolvers and goroutines (it
// is safe for concurrent use) so that each zone's keys are validated once.
// Its fields are read at first use and must not be changed afterwards.
type Validator struct {
	// TrustAnchors are the DS or DNSKEY records that validation starts
	// from; each is a trust anchor for its owner zone, and a name is
	// validated from the closest anchor at or above it. Nil means
	// RootTrustAnchors(). Names under no anchor are Insecure. Anchors for
	// private or test zones can be given alongside the root's, or alone;
	// ParseTrustAnchorsXML reads the RFC 7958 file IANA publishes.
	TrustAnchors []dns.RR

	// CacheSize bounds the number of entries in the cache (validated DNSKEY
	// sets, delegations and answers). Zero means DefaultCacheSize; a
	// negative value disables the cache, so that every lookup validates
	// from the trust anchors again.
	CacheSize int

	once    sync.Once
	anchors map[string]*anchorSet // owner zone (lower-case FQDN) -> its anchors
	initErr error
	cache   *cache

	// now is the clock; nil means time.Now. Tests set it.
	now func() time.Time
	// statsHook, when set, is told the work each lookup did. Tests set
	// it to check the limits.
	statsHook func(queries, checks, hashes int)
}

// DefaultCacheSize is the number of cache entries a Validator keeps when
// CacheSize is zero. An entry is one validated DNSKEY set, delegation or
// answer, a few hundred bytes to a few kilobytes, so the cache stays in
// the low megabytes; a sender delivering to ten thousand domains keeps
// their MX, address and TLSA answers and the keys of the zones above them.
const DefaultCacheSize = 10000

// Limits on the work one lookup may cause, so that a hostile zone or
// upstream cannot make validation expensive. A lookup that reaches one
// fails with ErrLookup and ErrValidationLimit (Indeterminate, never Bogus
// or Insecure).
const (
	// maxClockSkew is how far outside its inception/expiration window a
	// signature is still accepted, for hosts whose clock is slightly
	// wrong. An hour is Unbound's minimum skew; a clock further off
	// breaks certificate validation too, and replaying a signature in the
	// hour after it expired buys an attacker nothing that replaying it the
	// hour before did not.
	maxClockSkew = time.Hour

	// maxRRsetChecks bounds the signature verifications tried for one
	// RRset (each RRSIG against each key with its key tag and
	// algorithm). A zone needs one; two during an algorithm rollover, and
	// a few more when key tags collide. KeyTrap (CVE-2023-50387) made
	// validators try every key against every signature: thousands per
	// answer.
	maxRRsetChecks = 8

	// maxKeysPerTag bounds the keys tried for one signature when several
	// keys in a DNSKEY set share its key tag and algorithm. Honest
	// collisions are rare (key tags are 16 bits); a set built to collide
	// is the KeyTrap attack.
	maxKeysPerTag = 4

	// maxLookupChecks bounds signature verifications per lookup (one
	// call of Lookup or its wrappers, CNAMEs included). A cold lookup of
	// a name four zones below the root needs about ten (DNSKEY and DS per
	// zone, the answer, a denial); 100 leaves room for CNAME chains
	// across cold zones while capping a hostile answer at about 100
	// RSA-4096 verifications, tens of milliseconds.
	maxLookupChecks = 100

	// maxNSEC3Iterations is the highest NSEC3 iteration count whose
	// proofs are used. RFC 9276 §3.1 requires 0 from zones, §3.2 lets
	// validators treat higher counts as insecure, and its Appendix A
	// found 100 interoperable. Above it, a validly signed NSEC3 proof
	// makes the answer Insecure (RFC 9276 §3.2), and no hash is computed.
	maxNSEC3Iterations = 100

	// maxLookupHashes bounds NSEC3 hash computations per lookup
	// (CVE-2023-50868: a closest-encloser proof for a long name hashes
	// every ancestor). A proof for a name of n labels needs at most n+1;
	// mail names have fewer than ten.
	maxLookupHashes = 100

	// maxLookupQueries bounds the queries one lookup sends upstream. A
	// cold lookup needs a DS and a DNSKEY query per zone cut from the
	// anchor, a DS query per label that is not a cut, and the answer:
	// about 12 for "_25._tcp.mx.example.com" from the root. 64 covers a
	// CNAME chain through a few cold zones.
	maxLookupQueries = 64

	// maxSigners bounds the distinct signer names whose zones are
	// examined for one RRset; an honest RRset has one signer.
	maxSigners = 2

	// maxCacheTTL caps how long a validated entry is kept, whatever its
	// TTL and signatures allow: a day, Unbound's default cache-max-ttl.
	maxCacheTTL = 24 * time.Hour

	// bogusTTL is how long a bogus answer is remembered. RFC 9520 §3.2
	// asks resolvers to cache resolution failures for at least a second,
	// so that a broken or attacked zone does not turn every lookup (every
	// recipient of a message) into a full validation and a burst of
	// queries; five seconds, so that a repaired zone is seen soon.
	// Failed queries (Indeterminate) are not remembered: they are often
	// transient.
	bogusTTL = 5 * time.Second
)

// anchorSet is the trust anchors of one zone.
type anchorSet struct {
	ds   []*dns.DS
	keys []*dns.DNSKEY
}

// init reads the configuration once.
func (v *Validator) init() error {
	v.once.Do(func() {
		anchors := v.TrustAnchors
		if anchors == nil {
			anchors = RootTrustAnchors()
		}
		v.anchors = make(map[string]*anchorSet)
		for _, rr := range anchors {
			if rr == nil {
				continue
			}
			h := rr.Header()
			if h.Class != dns.ClassINET && h.Class != 0 {
				v.initErr = fmt.Errorf("trust anchor %q is not of class IN", rr.String())
				return
			}
			zone := dns.CanonicalName(h.Name)
			set := v.anchors[zone]
			if set == nil {
				set = &anchorSet{}
				v.anchors[zone] = set
			}
			switch a := rr.(type) {
			case *dns.DS:
				c := *a
				c.Hdr.Name = zone
				set.ds = append(set.ds, &c)
			case *dns.DNSKEY:
				c := *a
				c.Hdr.Name = zone
				set.keys = append(set.keys, &c)
			default:
				v.initErr = fmt.Errorf("trust anchor %q is neither a DS nor a DNSKEY record", rr.String())
				return
			}
		}
		if len(v.anchors) == 0 {
			v.initErr = fmt.Errorf("no trust anchors")
			return
		}
		size := v.CacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		v.cache = newCache(size)
	})
	return v.initErr
}

// clock returns the current time.
func (v *Validator) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

// anchorFor returns the zone of the closest trust anchor at or above name
// (a lower-case FQDN), or "" when no anchor covers it.
func (v *Validator) anchorFor(name string) string {
	for n := name; ; {
		if _, ok := v.anchors[n]; ok {
			return n
		}
		if n == "." {
			return ""
		}
		n = parentName(n)
	}
}

// parentName returns the name one label shorter than name (a lower-case
// FQDN); the parent of the root is the root.
func parentName(name string) string {
	if name == "." {
		return "."
	}
	i, end := dns.NextLabel(name, 0)
	if end || i >= len(name) {
		return "."
	}
	return name[i:]
}

// pathBelow returns the names between zone (exclusive) and name
// (inclusive), from the one just below zone down to name. name must be at
// or below zone.
func pathBelow(zone, name string) []string {
	var out []string
	for n := name; n != zone && n != "."; n = parentName(n) {
		out = append(out, n)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// isSubDomain reports whether child is parent or below it (lower-case
// FQDNs or not; the comparison is label-wise and case-insensitive).
func isSubDomain(parent, child string) bool {
	return dns.IsSubDomain(parent, child)
}

// sameName reports whether two names are equal, ignoring case.
func sameName(a, b string) bool {
	return strings.EqualFold(dns.Fqdn(a), dns.Fqdn(b))
}
