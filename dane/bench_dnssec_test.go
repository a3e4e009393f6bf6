package dane

import (
	"context"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/signedzone"
)

var (
	benchRootOnce sync.Once
	benchRootKey  *signedzone.Key
	benchRootErr  error
)

// benchServer serves a hierarchy shaped like the Internet's: a root signed
// with a 2048-bit RSASHA256 key (as the real root is), com and example.com
// with ECDSAP256SHA256, NSEC denial.
func benchServer(b *testing.B) (*signedzone.Server, []dns.RR) {
	b.Helper()
	benchRootOnce.Do(func() {
		benchRootKey, benchRootErr = signedzone.NewKeyBits(".", dns.RSASHA256, 257, 2048)
	})
	if benchRootErr != nil {
		b.Fatal(benchRootErr)
	}
	z := newZones(b, dns.ECDSAP256SHA256)
	z.root.KSKs = []*signedzone.Key{benchRootKey}
	z.root.ZSKs = nil
	return z.build(b), z.anchors()
}

// deliveryLookups runs what delivery to example.com needs: the MX RRset,
// the MX host's addresses and its TLSA records, with the RFC 7672
// decision.
func deliveryLookups(b *testing.B, r *Resolver) {
	ctx := context.Background()
	mx, err := r.LookupMX(ctx, "example.com")
	if err != nil || mx.Status != Secure {
		b.Fatalf("MX: %v %v", mx, err)
	}
	addrs, err := r.LookupIP(ctx, mx.MX[0].Host)
	if err != nil || addrs.Status != Secure {
		b.Fatalf("addresses: %v %v", addrs, err)
	}
	h, err := r.LookupHostTLSA(ctx, addrs, 25)
	if err != nil || h.Decision != DANERequired {
		b.Fatalf("TLSA: %v %v", h, err)
	}
}

// BenchmarkValidateCold validates MX + A/AAAA + TLSA for a domain from the
// root with an empty cache each time, through a non-validating resolver on
// loopback: the time and the queries a first delivery to a domain costs.
func BenchmarkValidateCold(b *testing.B) {
	srv, anchors := benchServer(b)
	b.ReportAllocs()
	srv.ResetLog()
	b.ResetTimer()
	for range b.N {
		deliveryLookups(b, validatingResolver(srv.Addr, anchors))
	}
	b.StopTimer()
	b.ReportMetric(float64(srv.Count("", 0))/float64(b.N), "queries/op")
}

// BenchmarkValidateCached repeats the same lookups with a warm cache: what
// each further delivery to the domain costs. It makes no query.
func BenchmarkValidateCached(b *testing.B) {
	srv, anchors := benchServer(b)
	r := validatingResolver(srv.Addr, anchors)
	deliveryLookups(b, r)
	b.ReportAllocs()
	srv.ResetLog()
	b.ResetTimer()
	for range b.N {
		deliveryLookups(b, r)
	}
	b.StopTimer()
	b.ReportMetric(float64(srv.Count("", 0))/float64(b.N), "queries/op")
}
