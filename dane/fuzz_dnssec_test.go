package dane

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/signedzone"
)

// The fuzz target's world: zones signed with deterministic Ed25519 keys
// and fixed validity times, so that the replies in the seed corpus are
// the same in every run, and a clock fixed inside that validity.
var (
	fuzzInception  = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzExpiration = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzNow        = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

type fuzzQuery struct {
	name string
	t    uint16
}

// fuzzQueries are the lookups the fuzz target runs, one per input.
var fuzzQueries = []fuzzQuery{
	{"example.com", dns.TypeMX},
	{"_25._tcp.mx.example.com", dns.TypeTLSA},
	{"nowhere.example.com", dns.TypeA},
	{"host.wild.example.com", dns.TypeA},
	{"b.ent.example.com", dns.TypeA},
	{"mx.insecure.example.com", dns.TypeA},
	{"toother.example.com", dns.TypeA},
	{"mx.dn.example.com", dns.TypeA},
	{"_25._tcp.mx.other.com", dns.TypeTLSA},
	{"nowhere.other.com", dns.TypeA},
	{"mx.example.com", dns.TypeTXT},
}

// fuzzTruth is what an honest upstream gives for a query.
type fuzzTruth struct {
	status    Status
	nx        bool
	canonical string
	records   []string
}

type fuzzWorld struct {
	honest  *signedzone.Server
	anchors []dns.RR
	truth   []fuzzTruth
}

var (
	fuzzOnce sync.Once
	fuzzW    *fuzzWorld
	fuzzErr  error
)

func fuzzZone(origin string, seed byte) *signedzone.Zone {
	z := signedzone.NewZone(origin, signedzone.SeedKey(origin, seed, 257), signedzone.SeedKey(origin, seed+100, 256))
	z.Inception, z.Expiration = fuzzInception, fuzzExpiration
	return z
}

func buildFuzzWorld() (*fuzzWorld, error) {
	root, com := fuzzZone(".", 1), fuzzZone("com.", 2)
	ex, other := fuzzZone("example.com.", 3), fuzzZone("other.com.", 4)
	other.NSEC3 = &signedzone.NSEC3Params{Iterations: 1, Salt: "beef", OptOut: true}
	insecure := signedzone.NewZone("insecure.example.com.")
	ex.MustAdd(
		"example.com. MX 10 mx.example.com.",
		"mx.example.com. A 192.0.2.1",
		"_25._tcp.mx.example.com. TLSA "+tlsaData,
		"toother.example.com. CNAME mx.other.com.",
		"*.wild.example.com. A 192.0.2.9",
		"a.b.ent.example.com. A 192.0.2.10",
		"dn.example.com. DNAME other.com.",
	)
	other.MustAdd("mx.other.com. A 192.0.2.20", "_25._tcp.mx.other.com. TLSA "+tlsaData)
	insecure.MustAdd("mx.insecure.example.com. A 192.0.2.30")
	ex.Delegate(insecure, 0)
	for _, z := range []*signedzone.Zone{insecure, other, ex} {
		if err := z.Sign(); err != nil {
			return nil, err
		}
	}
	com.Delegate(ex, dns.SHA256)
	com.Delegate(other, dns.SHA256)
	if err := com.Sign(); err != nil {
		return nil, err
	}
	root.Delegate(com, dns.SHA256)
	if err := root.Sign(); err != nil {
		return nil, err
	}
	honest, err := signedzone.NewHandler(root, com, ex, other, insecure)
	if err != nil {
		return nil, err
	}
	w := &fuzzWorld{honest: honest, anchors: root.DS(dns.SHA256)}
	for _, q := range fuzzQueries {
		r := w.resolver(func(_ int, m *dns.Msg) (*dns.Msg, error) { return honest.Answer(m), nil })
		a, err := r.Lookup(context.Background(), q.name, q.t)
		if err != nil {
			return nil, fmt.Errorf("honest lookup %s %s: %w", q.name, dns.TypeToString[q.t], err)
		}
		w.truth = append(w.truth, fuzzTruth{a.Status, a.NXDomain, a.Canonical, recordStrings(a.Records)})
	}
	return w, nil
}

// resolver returns a validating Resolver whose every exchange goes to f,
// numbered from 0.
func (w *fuzzWorld) resolver(f func(n int, m *dns.Msg) (*dns.Msg, error)) *Resolver {
	n := 0
	var mu sync.Mutex
	return &Resolver{
		Servers: []string{"192.0.2.53"}, Attempts: 1, Timeout: time.Second,
		Validator: &Validator{TrustAnchors: w.anchors, now: func() time.Time { return fuzzNow }},
		exchangeFn: func(_ context.Context, _ netip.AddrPort, m *dns.Msg) (*dns.Msg, error) {
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			return f(i, m)
		},
	}
}

// recordStrings returns records in presentation form without TTLs,
// sorted.
func recordStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, strings.ToLower(c.String()))
	}
	slices.Sort(out)
	return out
}

// fuzzSeedReply returns the honest reply to the which-th exchange of the
// lookup qsel, packed.
func fuzzSeedReply(w *fuzzWorld, qsel, which int) ([]byte, bool) {
	var packed []byte
	r := w.resolver(func(n int, m *dns.Msg) (*dns.Msg, error) {
		resp := w.honest.Answer(m)
		if n == which {
			packed, _ = resp.Pack()
		}
		return resp, nil
	})
	q := fuzzQueries[qsel]
	r.Lookup(context.Background(), q.name, q.t)
	return packed, packed != nil
}

// FuzzValidateReplies gives one reply of a validating lookup (the which-th
// exchange: a DNSKEY, DS or the answer itself) arbitrary bytes, while an
// honest non-validating upstream gives the others. Whatever the reply,
// validation must not panic, must stay within its work limits, and must
// never call an answer Secure unless it is exactly what the signed zones
// hold: a Secure answer has the records, the denial and the canonical name
// of the honest one.
func FuzzValidateReplies(f *testing.F) {
	fuzzOnce.Do(func() { fuzzW, fuzzErr = buildFuzzWorld() })
	if fuzzErr != nil {
		f.Fatal(fuzzErr)
	}
	w := fuzzW
	for qsel := range fuzzQueries {
		for which := range 12 {
			if b, ok := fuzzSeedReply(w, qsel, which); ok && (which%3 == 0 || qsel%4 == 0) {
				f.Add(uint8(which), uint8(qsel), b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which, qsel uint8, reply []byte) {
		q := fuzzQueries[int(qsel)%len(fuzzQueries)]
		truth := w.truth[int(qsel)%len(fuzzQueries)]
		r := w.resolver(func(n int, m *dns.Msg) (*dns.Msg, error) {
			if n != int(which%16) {
				return w.honest.Answer(m), nil
			}
			resp := new(dns.Msg)
			if err := resp.Unpack(reply); err != nil {
				return nil, err
			}
			resp.Id, resp.Response = m.Id, true
			return resp, nil
		})
		var st lookupStats
		r.Validator.statsHook = func(q, c, h int) { st = lookupStats{q, c, h} }
		a, err := r.Lookup(context.Background(), q.name, q.t)
		if st.queries > maxLookupQueries || st.checks > maxLookupChecks || st.hashes > maxLookupHashes {
			t.Fatalf("work %+v beyond the limits", st)
		}
		if err != nil || a.Status != Secure {
			return
		}
		got := fuzzTruth{a.Status, a.NXDomain, a.Canonical, recordStrings(a.Records)}
		if truth.status != Secure || got.nx != truth.nx || got.canonical != truth.canonical || !slices.Equal(got.records, truth.records) {
			t.Fatalf("%s %s: secure answer %+v, but the zones say %+v", q.name, dns.TypeToString[q.t], got, truth)
		}
	})
}

// The honest world validates as designed: the fuzz oracle rests on it.
func TestFuzzWorld(t *testing.T) {
	fuzzOnce.Do(func() { fuzzW, fuzzErr = buildFuzzWorld() })
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	want := []Status{Secure, Secure, Secure, Secure, Secure, Insecure, Secure, Secure, Secure, Insecure, Secure}
	for i, tr := range fuzzW.truth {
		if tr.status != want[i] {
			t.Errorf("%v: %v, want %v", fuzzQueries[i], tr.status, want[i])
		}
	}
}
