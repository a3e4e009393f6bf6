package dane

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/signedzone"
)

// tlsaData is the DANE-EE record every test host publishes.
const tlsaData = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"

// testZones is a hierarchy of zones under a test root, as the Internet
// has it: ". -> com. -> example.com.", with a second domain other.com, an
// unsigned child insecure.example.com (no DS), a signed child without DS
// in its parent (island.example.com) and a securely delegated child
// sub.example.com. Tests change them before they are signed and served.
type testZones struct {
	root, com, ex, other, insecure, island, sub *signedzone.Zone
	// exNSEC3, when set before build, makes example.com use NSEC3.
	exNSEC3 *signedzone.NSEC3Params
	// digest is the DS digest type of every delegation (default SHA-256).
	digest uint8
}

// key returns a cached key for zone, failing the test on error.
func key(t testing.TB, zone string, alg uint8, flags uint16) *signedzone.Key {
	t.Helper()
	k, err := signedzone.CachedKey(zone, alg, flags)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newZones returns the hierarchy's zones filled with records, not yet
// delegated nor signed, with keys of algorithm alg (a KSK and a ZSK for
// the root and example.com, a single key elsewhere).
func newZones(t testing.TB, alg uint8) *testZones {
	t.Helper()
	z := &testZones{digest: dns.SHA256}
	z.root = signedzone.NewZone(".", key(t, ".", alg, 257), key(t, ".", alg, 256))
	z.com = signedzone.NewZone("com.", key(t, "com.", alg, 257))
	z.ex = signedzone.NewZone("example.com.", key(t, "example.com.", alg, 257), key(t, "example.com.", alg, 256))
	z.other = signedzone.NewZone("other.com.", key(t, "other.com.", alg, 257))
	z.insecure = signedzone.NewZone("insecure.example.com.")
	z.island = signedzone.NewZone("island.example.com.", key(t, "island.example.com.", alg, 257))
	z.sub = signedzone.NewZone("sub.example.com.", key(t, "sub.example.com.", alg, 257))
	z.ex.MustAdd(
		"example.com. MX 10 mx.example.com.",
		"example.com. TXT \"v=spf1 -all\"",
		"mx.example.com. A 192.0.2.1",
		"mx.example.com. AAAA 2001:db8::1",
		"_25._tcp.mx.example.com. TLSA "+tlsaData,
		"alias.example.com. CNAME mx.example.com.",
		"toother.example.com. CNAME mx.other.com.",
		"toinsecure.example.com. CNAME mx.insecure.example.com.",
		"*.wild.example.com. A 192.0.2.9",
		"*.wild.example.com. TXT \"wild\"",
		"a.b.ent.example.com. A 192.0.2.10",
		"dn.example.com. DNAME other.com.",
	)
	z.other.MustAdd(
		"mx.other.com. A 192.0.2.20",
		"_25._tcp.mx.other.com. TLSA "+tlsaData,
	)
	z.insecure.MustAdd(
		"mx.insecure.example.com. A 192.0.2.30",
		"_25._tcp.mx.insecure.example.com. TLSA "+tlsaData,
	)
	z.island.MustAdd("mx.island.example.com. A 192.0.2.40")
	z.sub.MustAdd("mx.sub.example.com. A 192.0.2.50")
	return z
}

// build delegates and signs every zone, children first, and serves them.
func (z *testZones) build(t testing.TB) *signedzone.Server {
	t.Helper()
	if z.exNSEC3 != nil {
		z.ex.NSEC3 = z.exNSEC3
	}
	z.ex.Delegate(z.insecure, 0)
	z.ex.Delegate(z.island, 0)
	z.ex.Delegate(z.sub, z.digest)
	for _, c := range []*signedzone.Zone{z.insecure, z.island, z.sub, z.other} {
		if err := c.Sign(); err != nil {
			t.Fatal(err)
		}
	}
	z.ex.MustSign()
	z.com.Delegate(z.ex, z.digest)
	z.com.Delegate(z.other, z.digest)
	z.com.MustSign()
	z.root.Delegate(z.com, z.digest)
	z.root.MustSign()
	return signedzone.New(t, z.root, z.com, z.ex, z.other, z.insecure, z.island, z.sub)
}

// anchors returns the test root's DS records: the trust anchor.
func (z *testZones) anchors() []dns.RR { return z.root.DS(dns.SHA256) }

// validatingResolver returns a Resolver in validating mode that asks only
// addr, anchored at the test root. Timeouts are generous: no test relies
// on them.
func validatingResolver(addr string, anchors []dns.RR) *Resolver {
	return &Resolver{Servers: []string{addr}, Timeout: 10 * time.Second, Attempts: 1,
		Validator: &Validator{TrustAnchors: anchors}}
}

// lookupStats runs one Lookup and returns the work it did.
type lookupStats struct {
	queries, checks, hashes int
}

// lookupWithStats runs r.Lookup and reports the work the lookup did.
func lookupWithStats(t testing.TB, r *Resolver, name string, qtype uint16) (*Answer, error, lookupStats) {
	t.Helper()
	var st lookupStats
	r.Validator.init()
	r.Validator.statsHook = func(q, c, h int) { st = lookupStats{q, c, h} }
	a, err := r.Lookup(context.Background(), name, qtype)
	return a, err, st
}
