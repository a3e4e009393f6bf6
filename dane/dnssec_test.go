package dane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/signedzone"
)

// rewriteFor applies f to the replies to queries for name and type t.
func rewriteFor(srv *signedzone.Server, name string, t uint16, f func(m *dns.Msg) *dns.Msg) {
	srv.SetRewrite(func(q signedzone.Query, m *dns.Msg) *dns.Msg {
		if q.Name == dns.CanonicalName(name) && q.Type == t {
			return f(m)
		}
		return m
	})
}

// without returns rrs without the records for which drop is true.
func without(rrs []dns.RR, drop func(dns.RR) bool) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if !drop(rr) {
			out = append(out, rr)
		}
	}
	return out
}

func isType(ts ...uint16) func(dns.RR) bool {
	return func(rr dns.RR) bool {
		for _, t := range ts {
			if rr.Header().Rrtype == t {
				return true
			}
		}
		return false
	}
}

// resign signs an RRset of a zone again with changed RRSIG fields.
func resign(t *testing.T, z *signedzone.Zone, name string, qt uint16, mod func(*dns.RRSIG), keys ...*signedzone.Key) {
	t.Helper()
	if err := z.Resign(name, qt, mod, keys...); err != nil {
		t.Fatal(err)
	}
}

func window(inception, expiration time.Duration) func(*dns.RRSIG) {
	now := time.Now()
	return func(s *dns.RRSIG) {
		s.Inception = uint32(now.Add(inception).Unix())
		s.Expiration = uint32(now.Add(expiration).Unix())
	}
}

// dnssecCase is one validation scenario: zones built and possibly broken,
// one lookup, the expected outcome.
type dnssecCase struct {
	name    string
	alg     uint8                                                    // default ECDSAP256SHA256
	setup   func(t *testing.T, z *testZones)                         // before signing
	tamper  func(t *testing.T, z *testZones, srv *signedzone.Server) // after serving
	qname   string                                                   //
	qtype   uint16                                                   //
	status  Status                                                   // of the answer, or of the error
	nx      bool                                                     // NXDOMAIN expected
	records int                                                      // records expected (secure or insecure answers)
	code    uint16                                                   // Bogus: the ValidationError's RFC 8914 code, 0 to skip
	check   func(t *testing.T, a *Answer, srv *signedzone.Server)    // extra checks on an answer
}

func runDNSSECCases(t *testing.T, cases []dnssecCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alg := tc.alg
			if alg == 0 {
				alg = dns.ECDSAP256SHA256
			}
			z := newZones(t, alg)
			if tc.setup != nil {
				tc.setup(t, z)
			}
			srv := z.build(t)
			if tc.tamper != nil {
				tc.tamper(t, z, srv)
			}
			r := validatingResolver(srv.Addr, z.anchors())
			a, err, stats := lookupWithStats(t, r, tc.qname, tc.qtype)
			if stats.queries > maxLookupQueries || stats.checks > maxLookupChecks || stats.hashes > maxLookupHashes {
				t.Errorf("work %+v beyond the limits", stats)
			}
			switch tc.status {
			case Secure, Insecure:
				if err != nil {
					t.Fatalf("Lookup(%s, %s): %v; want a %v answer", tc.qname, dns.TypeToString[tc.qtype], err, tc.status)
				}
				if a.Status != tc.status || a.NXDomain != tc.nx || len(a.Records) != tc.records {
					t.Errorf("got %v, NXDOMAIN %v, %d records; want %v, %v, %d", a.Status, a.NXDomain, len(a.Records), tc.status, tc.nx, tc.records)
				}
				if tc.check != nil {
					tc.check(t, a, srv)
				}
			default:
				var le *LookupError
				if !errors.As(err, &le) || le.Status != tc.status {
					t.Fatalf("Lookup(%s, %s) = %+v, %v; want a %v *LookupError", tc.qname, dns.TypeToString[tc.qtype], a, err, tc.status)
				}
				want := ErrLookup
				if tc.status == Bogus {
					want = ErrBogus
				}
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
				var ve *ValidationError
				if tc.status == Bogus && tc.code != 0 && (!errors.As(err, &ve) || ve.Code != tc.code) {
					t.Errorf("error %v: want a *ValidationError with code %d", err, tc.code)
				}
				if le.ReportResultType() != rfc8460.DNSSECInvalid {
					t.Errorf("ReportResultType() = %q", le.ReportResultType())
				}
				t.Logf("%v", err)
			}
		})
	}
}

// STD-65, STD-70: positive and negative answers that validate, and those
// the chain of trust proves insecure, in validating mode.
func TestValidateProofs(t *testing.T) {
	nsec3 := func(optOut bool, iterations uint16) func(*testing.T, *testZones) {
		return func(_ *testing.T, z *testZones) {
			z.exNSEC3 = &signedzone.NSEC3Params{Iterations: iterations, Salt: "aabbccdd", OptOut: optOut}
		}
	}
	cases := []dnssecCase{
		{name: "MX", qname: "example.com", qtype: dns.TypeMX, status: Secure, records: 1},
		{name: "A", qname: "mx.example.com", qtype: dns.TypeA, status: Secure, records: 1},
		{name: "TLSA", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Secure, records: 1},
		{name: "NXDOMAIN/NSEC", qname: "nowhere.example.com", qtype: dns.TypeA, status: Secure, nx: true},
		{name: "NXDOMAIN below a name/NSEC", qname: "_25._tcp.nowhere.example.com", qtype: dns.TypeTLSA, status: Secure, nx: true},
		{name: "NODATA/NSEC", qname: "mx.example.com", qtype: dns.TypeTXT, status: Secure},
		{name: "NODATA TLSA/NSEC", qname: "_25._tcp.alias.example.com", qtype: dns.TypeTLSA, status: Secure, nx: true},
		{name: "empty non-terminal/NSEC", qname: "b.ent.example.com", qtype: dns.TypeA, status: Secure},
		{name: "wildcard/NSEC", qname: "host.wild.example.com", qtype: dns.TypeA, status: Secure, records: 1},
		{name: "wildcard deeper/NSEC", qname: "a.b.wild.example.com", qtype: dns.TypeTXT, status: Secure, records: 1},
		{name: "wildcard NODATA/NSEC", qname: "host.wild.example.com", qtype: dns.TypeMX, status: Secure},
		{name: "NXDOMAIN/NSEC3", setup: nsec3(false, 0), qname: "nowhere.example.com", qtype: dns.TypeA, status: Secure, nx: true},
		{name: "NXDOMAIN deep/NSEC3", setup: nsec3(false, 5), qname: "_25._tcp.nowhere.example.com", qtype: dns.TypeTLSA, status: Secure, nx: true},
		{name: "NODATA/NSEC3", setup: nsec3(false, 0), qname: "mx.example.com", qtype: dns.TypeTXT, status: Secure},
		{name: "empty non-terminal/NSEC3", setup: nsec3(false, 0), qname: "b.ent.example.com", qtype: dns.TypeA, status: Secure},
		{name: "wildcard/NSEC3", setup: nsec3(false, 0), qname: "host.wild.example.com", qtype: dns.TypeA, status: Secure, records: 1},
		{name: "wildcard NODATA/NSEC3", setup: nsec3(false, 0), qname: "host.wild.example.com", qtype: dns.TypeMX, status: Secure},
		{name: "A/NSEC3", setup: nsec3(false, 0), qname: "mx.example.com", qtype: dns.TypeA, status: Secure, records: 1},
		// An opt-out span may hide an unsigned delegation: the name's
		// non-existence is not proven (RFC 5155 §6).
		{name: "NXDOMAIN in an opt-out span/NSEC3", setup: nsec3(true, 0), qname: "nowhere.example.com", qtype: dns.TypeA, status: Insecure, nx: true},
		{name: "NSEC3 iterations above the limit", setup: nsec3(false, maxNSEC3Iterations+1), qname: "nowhere.example.com", qtype: dns.TypeA, status: Insecure, nx: true},
		{name: "NSEC3 iterations at the limit", setup: nsec3(false, maxNSEC3Iterations), qname: "nowhere.example.com", qtype: dns.TypeA, status: Secure, nx: true},

		// Insecure delegations, proven by the absence of DS.
		{name: "insecure delegation/NSEC", qname: "mx.insecure.example.com", qtype: dns.TypeA, status: Insecure, records: 1},
		{name: "insecure TLSA/NSEC", qname: "_25._tcp.mx.insecure.example.com", qtype: dns.TypeTLSA, status: Insecure, records: 1},
		{name: "insecure NXDOMAIN", qname: "nowhere.insecure.example.com", qtype: dns.TypeA, status: Insecure, nx: true},
		{name: "insecure delegation/NSEC3", setup: nsec3(false, 0), qname: "mx.insecure.example.com", qtype: dns.TypeA, status: Insecure, records: 1},
		{name: "insecure delegation in an opt-out span/NSEC3", setup: nsec3(true, 0), qname: "_25._tcp.mx.insecure.example.com", qtype: dns.TypeTLSA, status: Insecure, records: 1},
		{name: "no DS for the insecure delegation, proven", qname: "insecure.example.com", qtype: dns.TypeDS, status: Secure},
		{name: "signed child without DS in its parent (an island)", qname: "mx.island.example.com", qtype: dns.TypeA, status: Insecure, records: 1},
		{name: "securely delegated child", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Secure, records: 1},
		{name: "securely delegated child/NSEC3 parent", setup: nsec3(true, 0), qname: "mx.sub.example.com", qtype: dns.TypeA, status: Secure, records: 1},

		// CNAME and DNAME chains across zones.
		{name: "CNAME in the zone", qname: "alias.example.com", qtype: dns.TypeA, status: Secure, records: 1,
			check: func(t *testing.T, a *Answer, _ *signedzone.Server) {
				if a.Canonical != "mx.example.com" || len(a.CNAMEs) != 1 || a.CNAMEs[0].Status != Secure {
					t.Errorf("chain %+v canonical %s", a.CNAMEs, a.Canonical)
				}
			}},
		{name: "CNAME to another signed zone", qname: "toother.example.com", qtype: dns.TypeA, status: Secure, records: 1,
			check: func(t *testing.T, a *Answer, _ *signedzone.Server) {
				if a.Canonical != "mx.other.com" {
					t.Errorf("canonical %s", a.Canonical)
				}
			}},
		{name: "CNAME to another zone, TLSA", qname: "_25._tcp.toother.example.com", qtype: dns.TypeTLSA, status: Secure, nx: true},
		{name: "CNAME into an insecure zone", qname: "toinsecure.example.com", qtype: dns.TypeA, status: Insecure, records: 1},
		{name: "DNAME to another zone", qname: "mx.dn.example.com", qtype: dns.TypeA, status: Secure, records: 1,
			check: func(t *testing.T, a *Answer, _ *signedzone.Server) {
				if a.Canonical != "mx.other.com" || len(a.CNAMEs) != 1 {
					t.Errorf("chain %+v canonical %s", a.CNAMEs, a.Canonical)
				}
			}},
		{name: "DNAME to a name that does not exist", qname: "nowhere.dn.example.com", qtype: dns.TypeA, status: Secure, nx: true},
		{name: "NXDOMAIN from the root", qname: "example.org", qtype: dns.TypeMX, status: Secure, nx: true},
	}
	runDNSSECCases(t, cases)
}

// STD-65, STD-71: zones broken the ways real zones break, and answers
// tampered with on the way: every one is bogus (or, where the zone proves
// it, insecure), never secure.
func TestValidateBroken(t *testing.T) {
	hour := time.Hour
	cases := []dnssecCase{
		{name: "expired signature", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeSignatureExpired,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				resign(t, z.ex, "mx.example.com.", dns.TypeA, window(-30*24*hour, -2*hour))
			}},
		{name: "expired within the clock skew allowance", qname: "mx.example.com", qtype: dns.TypeA, status: Secure, records: 1,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				resign(t, z.ex, "mx.example.com.", dns.TypeA, window(-30*24*hour, -30*time.Minute))
			}},
		{name: "signature not yet valid", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeSignatureNotYetValid,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				resign(t, z.ex, "mx.example.com.", dns.TypeA, window(2*hour, 30*24*hour))
			}},
		{name: "expired DNSKEY signature", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeSignatureExpired,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				resign(t, z.ex, "example.com.", dns.TypeDNSKEY, window(-30*24*hour, -2*hour))
			}},
		{name: "wrong key tag", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeDNSKEYMissing,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				resign(t, z.ex, "mx.example.com.", dns.TypeA, func(s *dns.RRSIG) { s.KeyTag++ })
			}},
		{name: "signature by a key not in the DNSKEY set", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				stranger := signedzone.MustKey("example.com.", dns.ECDSAP256SHA256)
				resign(t, z.ex, "mx.example.com.", dns.TypeA, nil, stranger)
			}},
		{name: "DNSKEY set signed by a key not in the DS set", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				stranger := signedzone.MustKey("sub.example.com.", dns.ECDSAP256SHA256)
				resign(t, z.sub, "sub.example.com.", dns.TypeDNSKEY, nil, stranger)
			}},
		{name: "DS matching no key", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeDNSKEYMissing,
			setup: func(t *testing.T, z *testZones) {
				z.sub.KSKs[0] = signedzone.MustKey("sub.example.com.", dns.ECDSAP256SHA256)
			},
			tamper: func(t *testing.T, z *testZones, _ *signedzone.Server) {
				// The parent's DS is for a key the child no longer has.
				z.sub.KSKs[0] = key(t, "sub.example.com.", dns.ECDSAP256SHA256, 257)
				z.sub.MustSign()
			}},
		{name: "missing DS, denial stripped", qname: "mx.island.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "island.example.com", dns.TypeDS, func(m *dns.Msg) *dns.Msg {
					m.Ns = without(m.Ns, isType(dns.TypeNSEC, dns.TypeRRSIG))
					return m
				})
			}},
		{name: "DS for an unsupported algorithm", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Insecure, records: 1,
			setup: func(t *testing.T, z *testZones) {
				z.digest = 0 // delegations without DS: added by hand below
				z.ex.MustAdd(fmt.Sprintf("sub.example.com. DS 12345 %d 2 %s", dns.ED448, strings.Repeat("ab", 32)))
				for _, p := range []struct{ parent, child *signedzone.Zone }{{z.com, z.ex}, {z.com, z.other}, {z.root, z.com}} {
					if err := p.parent.AddRR(p.child.DS(dns.SHA256)...); err != nil {
						t.Fatal(err)
					}
				}
			}},
		{name: "zone signed with RSASHA1 (RFC 9905)", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Insecure, records: 1,
			setup: func(t *testing.T, z *testZones) {
				z.sub.KSKs = []*signedzone.Key{key(t, "sub.example.com.", dns.RSASHA1, 257)}
			}},
		{name: "DS with an unsupported digest type", qname: "mx.sub.example.com", qtype: dns.TypeA, status: Insecure, records: 1,
			setup: func(t *testing.T, z *testZones) {
				z.digest = 0
				ds := z.sub.DS(dns.SHA256)[0].(*dns.DS)
				ds.DigestType = dns.GOST94
				if err := z.ex.AddRR(ds); err != nil {
					t.Fatal(err)
				}
				for _, p := range []struct{ parent, child *signedzone.Zone }{{z.com, z.ex}, {z.com, z.other}, {z.root, z.com}} {
					if err := p.parent.AddRR(p.child.DS(dns.SHA256)...); err != nil {
						t.Fatal(err)
					}
				}
			}},
		{name: "signatures stripped from the answer", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Bogus, code: dns.ExtendedErrorCodeRRSIGsMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
					m.Answer = without(m.Answer, isType(dns.TypeRRSIG))
					return m
				})
			}},
		{name: "record added to a signed RRset", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Bogus, code: dns.ExtendedErrorCodeDNSBogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
					rr, _ := dns.NewRR("_25._tcp.mx.example.com. 300 IN TLSA 3 1 1 " + strings.Repeat("00", 32))
					m.Answer = append(m.Answer, rr)
					return m
				})
			}},
		{name: "unsigned NXDOMAIN for a signed name", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Bogus, code: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
					m.Answer = nil
					m.Rcode = dns.RcodeNameError
					m.Ns = z.ex.RRset("example.com.", dns.TypeSOA)
					return m
				})
			}},
		{name: "signed answer with its rcode changed to NXDOMAIN", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Bogus, code: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
					m.Rcode = dns.RcodeNameError
					return m
				})
			}},
		{name: "forged NSEC range", qname: "nowhere.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "nowhere.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					for _, rr := range m.Ns {
						if n, ok := rr.(*dns.NSEC); ok {
							n.NextDomain = "zzzz.example.com."
						}
					}
					return m
				})
			}},
		{name: "NXDOMAIN for a name that exists, with a genuine NSEC from elsewhere", qname: "_25._tcp.mx.example.com", qtype: dns.TypeTLSA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				apexNSEC := append(z.ex.RRset("example.com.", dns.TypeNSEC), sigsRR(z.ex.Sigs("example.com.", dns.TypeNSEC))...)
				rewriteFor(srv, "_25._tcp.mx.example.com", dns.TypeTLSA, func(m *dns.Msg) *dns.Msg {
					m.Answer = nil
					m.Rcode = dns.RcodeNameError
					m.Ns = append(append(z.ex.RRset("example.com.", dns.TypeSOA), sigsRR(z.ex.Sigs("example.com.", dns.TypeSOA))...), apexNSEC...)
					return m
				})
			}},
		{name: "NODATA for a type the NSEC lists", qname: "mx.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				nsec := append(z.ex.RRset("mx.example.com.", dns.TypeNSEC), sigsRR(z.ex.Sigs("mx.example.com.", dns.TypeNSEC))...)
				rewriteFor(srv, "mx.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					m.Answer = nil
					m.Ns = append(append(z.ex.RRset("example.com.", dns.TypeSOA), sigsRR(z.ex.Sigs("example.com.", dns.TypeSOA))...), nsec...)
					return m
				})
			}},
		{name: "forged NSEC3 range", setup: func(_ *testing.T, z *testZones) { z.exNSEC3 = &signedzone.NSEC3Params{} },
			qname: "nowhere.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "nowhere.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					for _, rr := range m.Ns {
						if n, ok := rr.(*dns.NSEC3); ok {
							n.NextDomain = strings.Repeat("V", 32)
						}
					}
					return m
				})
			}},
		{name: "NSEC3 opt-out flag forged onto a span", setup: func(_ *testing.T, z *testZones) { z.exNSEC3 = &signedzone.NSEC3Params{} },
			qname: "nowhere.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "nowhere.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					for _, rr := range m.Ns {
						if n, ok := rr.(*dns.NSEC3); ok {
							n.Flags = 1
						}
					}
					return m
				})
			}},
		{name: "wildcard answer without the proof that the name does not exist", qname: "host.wild.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "host.wild.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					m.Ns = nil
					return m
				})
			}},
		{name: "wildcard answer without the proof/NSEC3", setup: func(_ *testing.T, z *testZones) { z.exNSEC3 = &signedzone.NSEC3Params{} },
			qname: "host.wild.example.com", qtype: dns.TypeA, status: Bogus, code: dns.ExtendedErrorCodeNSECMissing,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "host.wild.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					m.Ns = nil
					return m
				})
			}},
		{name: "wildcard expansion replayed for a name that exists", qname: "mx.example.com", qtype: dns.TypeTXT, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "mx.example.com", dns.TypeTXT, func(m *dns.Msg) *dns.Msg {
					txt := z.ex.RRset("*.wild.example.com.", dns.TypeTXT)
					sigs := z.ex.Sigs("*.wild.example.com.", dns.TypeTXT)
					txt[0].Header().Name = "mx.example.com."
					sigs[0].Hdr.Name = "mx.example.com."
					m.Answer = []dns.RR{txt[0], sigs[0]}
					m.Ns = nil
					return m
				})
			}},
		{name: "CNAME target signed by the wrong zone", qname: "toother.example.com", qtype: dns.TypeA, status: Bogus,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "toother.example.com", dns.TypeA, func(m *dns.Msg) *dns.Msg {
					for _, rr := range m.Answer {
						if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeA {
							s.SignerName = "example.com."
						}
					}
					return m
				})
			}},
		{name: "upstream SERVFAIL while walking the chain", qname: "mx.example.com", qtype: dns.TypeA, status: Indeterminate,
			tamper: func(t *testing.T, z *testZones, srv *signedzone.Server) {
				rewriteFor(srv, "example.com", dns.TypeDS, func(m *dns.Msg) *dns.Msg {
					m.Answer, m.Ns = nil, nil
					m.Rcode = dns.RcodeServerFailure
					return m
				})
			}},
	}
	runDNSSECCases(t, cases)
}

func sigsRR(sigs []*dns.RRSIG) []dns.RR {
	out := make([]dns.RR, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}

// Algorithms 8, 10, 13, 14 and 15, DS digests 2 and 4 (and 1, when it is
// the only one): every zone of the hierarchy signed with each.
func TestValidateAlgorithms(t *testing.T) {
	type combo struct {
		alg    uint8
		digest uint8
	}
	var combos []combo
	for _, alg := range []uint8{dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519} {
		for _, d := range []uint8{dns.SHA256, dns.SHA384} {
			combos = append(combos, combo{alg, d})
		}
	}
	combos = append(combos, combo{dns.ECDSAP256SHA256, dns.SHA1})
	for _, c := range combos {
		t.Run(fmt.Sprintf("%s/%s", dns.AlgorithmToString[c.alg], dns.HashToString[c.digest]), func(t *testing.T) {
			t.Parallel()
			z := newZones(t, c.alg)
			z.digest = c.digest
			srv := z.build(t)
			r := validatingResolver(srv.Addr, z.anchors())
			ctx := context.Background()
			for _, q := range []struct {
				name string
				t    uint16
				nx   bool
			}{{"example.com", dns.TypeMX, false}, {"_25._tcp.mx.example.com", dns.TypeTLSA, false}, {"nowhere.example.com", dns.TypeA, true}, {"mx.sub.example.com", dns.TypeA, false}} {
				a, err := r.Lookup(ctx, q.name, q.t)
				if err != nil || a.Status != Secure || a.NXDomain != q.nx {
					t.Errorf("%s %s: %+v, %v; want secure", q.name, dns.TypeToString[q.t], a, err)
				}
			}
		})
	}
}

// RFC 4509 §3: with a SHA-256 DS present, a SHA-1 DS is ignored, so a
// broken SHA-256 digest cannot be bypassed through a SHA-1 one.
func TestValidateDigestDowngrade(t *testing.T) {
	z := newZones(t, dns.ECDSAP256SHA256)
	z.digest = dns.SHA1
	ds := z.sub.DS(dns.SHA256)[0].(*dns.DS)
	ds.Digest = strings.Repeat("00", 32)
	if err := z.ex.AddRR(ds); err != nil {
		t.Fatal(err)
	}
	srv := z.build(t)
	r := validatingResolver(srv.Addr, z.anchors())
	_, err := r.Lookup(context.Background(), "mx.sub.example.com", dns.TypeA)
	if !errors.Is(err, ErrBogus) {
		t.Errorf("err = %v, want bogus: the SHA-1 DS must not stand in for the broken SHA-256 one", err)
	}
}
