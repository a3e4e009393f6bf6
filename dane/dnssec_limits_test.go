package dane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/signedzone"
)

// keyTag computes the RFC 4034 Appendix B key tag of DNSKEY RDATA.
func keyTag(rdata []byte) uint16 {
	var acc uint32
	for i, b := range rdata {
		if i&1 == 0 {
			acc += uint32(b) << 8
		} else {
			acc += uint32(b)
		}
	}
	acc += acc >> 16 & 0xffff
	return uint16(acc)
}

// collidingKey returns a DNSKEY record holding garbage of a valid length
// for alg (not a usable key) whose key tag is tag.
func collidingKey(t *testing.T, zone string, alg uint8, flags uint16, tag uint16) *dns.DNSKEY {
	t.Helper()
	pub := make([]byte, 64)
	rand.Read(pub)
	rdata := append([]byte{byte(flags >> 8), byte(flags), 3, alg}, pub...)
	for v := 0; v < 1<<16; v++ {
		rdata[len(rdata)-2], rdata[len(rdata)-1] = byte(v>>8), byte(v)
		if keyTag(rdata) == tag {
			k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
				Flags: flags, Protocol: 3, Algorithm: alg, PublicKey: base64.StdEncoding.EncodeToString(rdata[4:])}
			if k.KeyTag() != tag {
				t.Fatalf("key tag %d, want %d", k.KeyTag(), tag)
			}
			return k
		}
	}
	t.Fatal("no colliding key")
	return nil
}

// KeyTrap (CVE-2023-50387): many signatures with a key's tag over one
// RRset, and many keys sharing the signing key's tag in a validly signed
// DNSKEY set. Validation stops at its bounds, fails closed, and the work
// stays bounded.
func TestKeyTrap(t *testing.T) {
	t.Run("many signatures", func(t *testing.T) {
		z := newZones(t, dns.ECDSAP256SHA256)
		srv := z.build(t)
		zsk := z.ex.ZSKs[0]
		rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
			var junk []dns.RR
			for _, rr := range m.Answer {
				if s, ok := rr.(*dns.RRSIG); ok {
					for range 200 {
						c := dns.Copy(s).(*dns.RRSIG)
						sig := make([]byte, 64)
						rand.Read(sig)
						c.Signature = base64.StdEncoding.EncodeToString(sig)
						c.KeyTag = zsk.Tag()
						junk = append(junk, c)
					}
				}
			}
			m.Answer = append(junk, m.Answer...) // the genuine signature comes last
			return m
		})
		r := validatingResolver(srv.Addr, z.anchors())
		_, err, st := lookupWithStats(t, r, "_25._tcp.mx.example.com", dns.TypeTLSA)
		if !errors.Is(err, ErrBogus) {
			t.Errorf("err = %v, want bogus", err)
		}
		// The chain of trust takes one verification per RRset (5
		// RRsets), the answer at most maxRRsetChecks; then the validator
		// walks down to the owner (3 denials of a zone cut, one
		// verification each) to see whether an insecure delegation
		// explains the bad signatures.
		if want := 5 + maxRRsetChecks + 3; st.checks > want {
			t.Errorf("%d signature verifications, want at most %d", st.checks, want)
		}
	})
	t.Run("colliding keys", func(t *testing.T) {
		z := newZones(t, dns.ECDSAP256SHA256)
		zsk := z.ex.ZSKs[0]
		for range 50 {
			z.ex.ExtraKeys = append(z.ex.ExtraKeys, collidingKey(t, "example.com.", dns.ECDSAP256SHA256, 256, zsk.Tag()))
		}
		srv := z.build(t)
		r := validatingResolver(srv.Addr, z.anchors())
		_, err, st := lookupWithStats(t, r, "_25._tcp.mx.example.com", dns.TypeTLSA)
		if !errors.Is(err, ErrBogus) {
			t.Errorf("err = %v, want bogus: the genuine key comes after %d colliding ones", err, maxKeysPerTag)
		}
		// The chain: 5; the answer: maxKeysPerTag; the first denial on
		// the walk to the owner, signed by the same key: maxKeysPerTag.
		if want := 5 + 2*maxKeysPerTag; st.checks > want {
			t.Errorf("%d signature verifications, want at most %d", st.checks, want)
		}
	})
	t.Run("a few colliding keys still validate", func(t *testing.T) {
		z := newZones(t, dns.ECDSAP256SHA256)
		zsk := z.ex.ZSKs[0]
		for range maxKeysPerTag - 1 {
			z.ex.ExtraKeys = append(z.ex.ExtraKeys, collidingKey(t, "example.com.", dns.ECDSAP256SHA256, 256, zsk.Tag()))
		}
		srv := z.build(t)
		r := validatingResolver(srv.Addr, z.anchors())
		a, err, _ := lookupWithStats(t, r, "_25._tcp.mx.example.com", dns.TypeTLSA)
		if err != nil || a.Status != Secure {
			t.Errorf("%+v, %v; want secure", a, err)
		}
	})
}

// CVE-2023-50868: NSEC3 hashing is bounded per lookup, and above the
// iteration limit nothing is hashed at all.
func TestNSEC3HashLimits(t *testing.T) {
	deep := strings.Repeat("a.", 118) + "example.com"
	for _, tc := range []struct {
		name       string
		iterations uint16
		qname      string
		status     Status
		maxHashes  int
	}{
		{"ordinary name", maxNSEC3Iterations, "_25._tcp.nowhere.example.com", Secure, 6},
		{"above the iteration limit: insecure, no hash", maxNSEC3Iterations + 1, "_25._tcp.nowhere.example.com", Insecure, 0},
		{"very deep name: hash limit", 0, deep, Indeterminate, maxLookupHashes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := newZones(t, dns.ECDSAP256SHA256)
			z.exNSEC3 = &signedzone.NSEC3Params{Iterations: tc.iterations, Salt: "01"}
			srv := z.build(t)
			r := validatingResolver(srv.Addr, z.anchors())
			a, err, st := lookupWithStats(t, r, tc.qname, dns.TypeTLSA)
			if st.hashes > tc.maxHashes {
				t.Errorf("%d NSEC3 hashes, want at most %d", st.hashes, tc.maxHashes)
			}
			if tc.status == Indeterminate {
				if !errors.Is(err, ErrValidationLimit) || !errors.Is(err, ErrLookup) {
					t.Errorf("err = %v, want the validation limit", err)
				}
				return
			}
			if err != nil || a.Status != tc.status || !a.NXDomain {
				t.Errorf("%+v, %v; want %v NXDOMAIN", a, err, tc.status)
			}
		})
	}
}

// The number of queries one lookup sends is bounded: an unsigned answer
// deep in a signed zone makes the validator walk every label looking for
// an insecure delegation, and it stops at the limit.
func TestQueryLimit(t *testing.T) {
	deep := strings.Repeat("a.", 70) + "example.com."
	z := newZones(t, dns.ECDSAP256SHA256)
	z.ex.MustAdd(deep + " A 192.0.2.99")
	srv := z.build(t)
	rewriteFor(srv, deep, dns.TypeA, func(m *dns.Msg) *dns.Msg {
		m.Answer = without(m.Answer, isType(dns.TypeRRSIG))
		return m
	})
	r := validatingResolver(srv.Addr, z.anchors())
	_, err, st := lookupWithStats(t, r, deep, dns.TypeA)
	if !errors.Is(err, ErrValidationLimit) || !errors.Is(err, ErrLookup) {
		t.Errorf("err = %v, want the validation limit", err)
	}
	if st.queries > maxLookupQueries || srv.Count("", 0) > maxLookupQueries {
		t.Errorf("%d queries (%d received), want at most %d", st.queries, srv.Count("", 0), maxLookupQueries)
	}
}

var (
	bigKeysOnce sync.Once
	bigKeys     []*signedzone.Key
	bigKeysErr  error
)

// A DNSKEY RRset larger than a UDP answer: the reply is truncated and the
// query is repeated over TCP, where it validates.
func TestLargeDNSKEYOverTCP(t *testing.T) {
	bigKeysOnce.Do(func() {
		for range 4 {
			k, err := signedzone.NewKeyBits("sub.example.com.", dns.RSASHA256, 257, 2048)
			if err != nil {
				bigKeysErr = err
				return
			}
			bigKeys = append(bigKeys, k)
		}
	})
	if bigKeysErr != nil {
		t.Fatal(bigKeysErr)
	}
	z := newZones(t, dns.ECDSAP256SHA256)
	z.sub.KSKs = bigKeys
	srv := z.build(t)
	r := validatingResolver(srv.Addr, z.anchors())
	a, err := r.Lookup(context.Background(), "mx.sub.example.com", dns.TypeA)
	if err != nil || a.Status != Secure {
		t.Fatalf("%+v, %v; want secure", a, err)
	}
	m := srv.Answer(func() *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion("sub.example.com.", dns.TypeDNSKEY)
		q.SetEdns0(ednsUDPSize, true)
		return q
	}())
	if size := m.Len(); size <= ednsUDPSize {
		t.Fatalf("the DNSKEY answer is %d bytes, not larger than %d", size, ednsUDPSize)
	}
	var nets []string
	for _, q := range srv.Queries() {
		if q.Name == "sub.example.com." && q.Type == dns.TypeDNSKEY && q.Net != "" {
			nets = append(nets, q.Net)
		}
	}
	if strings.Join(nets, ",") != "udp,tcp" {
		t.Errorf("DNSKEY queries over %v, want UDP then TCP", nets)
	}
}
