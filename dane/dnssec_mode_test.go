package dane

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

// STD-64, STD-65: in validating mode every query carries DO and CD, the
// AD bit and the upstream's trust mean nothing, and a non-validating,
// untrusted upstream gives secure answers when the signatures are good.
func TestValidatingModeUpstreams(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	ctx := context.Background()

	r := validatingResolver(srv.Addr, z.anchors())
	r.loopbackUntrusted = true
	a, err := r.Lookup(ctx, "_25._tcp.mx.example.com", dns.TypeTLSA)
	if err != nil || a.Status != Secure {
		t.Fatalf("through an untrusted, non-validating upstream: %+v, %v; want secure", a, err)
	}
	for _, q := range srv.Queries() {
		if !q.DO || !q.CD {
			t.Errorf("query %+v without DO or CD", q)
		}
	}

	// An upstream that sets AD on unsigned data: the validator finds no
	// keys for the signed root and calls it bogus, never secure.
	liar := dnstest.New(t)
	liar.SetDefault(dnstest.Rule{Mode: dnstest.Secure})
	liar.MustAdd("_25._tcp.mx.example.com. TLSA " + tlsaData)
	r = validatingResolver(liar.Addr, z.anchors())
	if _, err := r.Lookup(ctx, "_25._tcp.mx.example.com", dns.TypeTLSA); !errors.Is(err, ErrBogus) {
		t.Errorf("unsigned data with AD: %v, want bogus", err)
	}

	// With the built-in root anchors, the test root's keys are not
	// trusted: its zones are bogus.
	r = validatingResolver(srv.Addr, nil)
	if _, err := r.Lookup(ctx, "example.com", dns.TypeMX); !errors.Is(err, ErrBogus) {
		t.Errorf("a zone under another root with the built-in anchors: %v, want bogus", err)
	}
}

// Trust anchors as DNSKEY records, anchors for a zone below the root, and
// an anchored island under an insecure delegation.
func TestTrustAnchorKinds(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	ctx := context.Background()
	rootKSK := z.root.KSKs[0].DNSKEY
	islandDS := z.island.DS(dns.SHA256)
	tests := []struct {
		name    string
		anchors []dns.RR
		qname   string
		status  Status
	}{
		{"root DNSKEY as anchor", []dns.RR{rootKSK}, "_25._tcp.mx.example.com", Secure},
		{"anchor at example.com", z.ex.DS(dns.SHA256), "_25._tcp.mx.example.com", Secure},
		{"a name under no anchor", z.ex.DS(dns.SHA256), "mx.other.com", Insecure},
		{"island without DS, anchored itself", append(z.anchors(), islandDS...), "mx.island.example.com", Secure},
		{"island without DS, root anchor only", z.anchors(), "mx.island.example.com", Insecure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := validatingResolver(srv.Addr, tc.anchors)
			a, err := r.Lookup(ctx, tc.qname, dns.TypeA)
			if tc.qname[0] == '_' {
				a, err = r.Lookup(ctx, tc.qname, dns.TypeTLSA)
			}
			if err != nil || a.Status != tc.status {
				t.Errorf("%+v, %v; want %v", a, err, tc.status)
			}
		})
	}

	bad := validatingResolver(srv.Addr, []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeA, Class: dns.ClassINET}}})
	if _, err := bad.Lookup(ctx, "example.com", dns.TypeMX); !errors.Is(err, ErrLookup) {
		t.Errorf("an A record as trust anchor: %v, want a lookup error", err)
	}
}

// STD-69, STD-71, STD-72, STD-74: the RFC 7672 decisions come out of
// validating mode unchanged.
func TestValidatingHostTLSA(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	resign(t, z.other, "_25._tcp.mx.other.com.", dns.TypeTLSA, func(s *dns.RRSIG) { s.KeyTag++ })
	r := validatingResolver(srv.Addr, z.anchors())
	ctx := context.Background()
	for _, tc := range []struct {
		host     string
		decision Decision
		err      error
	}{
		{"mx.example.com", DANERequired, nil},
		{"alias.example.com", DANERequired, nil},
		{"mx.insecure.example.com", NoDANE, nil},
		{"toinsecure.example.com", NoDANE, nil},
		{"mx.sub.example.com", NoDANE, nil},
		{"mx.other.com", HostUnusable, ErrBogus},
	} {
		addrs, err := r.LookupIP(ctx, tc.host)
		if err != nil {
			t.Errorf("LookupIP(%s): %v", tc.host, err)
			continue
		}
		h, err := r.LookupHostTLSA(ctx, addrs, 25)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || h.Decision != tc.decision {
			t.Errorf("%s: %v, %v; want %v, %v", tc.host, h.Decision, err, tc.decision, tc.err)
		}
	}
}

// A signature claiming a signer above the closest trust anchor of the
// records is refused: otherwise a forged signature naming an unanchored
// ancestor would make the records of an anchored zone look insecure.
func TestSignerAboveAnchorRefused(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	srv := z.build(t)
	rewriteFor(srv, "mx.island.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
		for _, rr := range m.Answer {
			if s, ok := rr.(*dns.RRSIG); ok {
				s.SignerName = "example.com."
			}
		}
		return m
	})
	r := validatingResolver(srv.Addr, z.island.DS(dns.SHA256))
	if _, err := r.Lookup(context.Background(), "mx.island.example.com", dns.TypeA); !errors.Is(err, ErrBogus) {
		t.Errorf("err = %v, want bogus", err)
	}
}
