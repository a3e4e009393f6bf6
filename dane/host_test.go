package dane

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// daneZone builds the test zones for the RFC 7672 §2.2.3 procedure.
// example.com and hoster.example are signed, example.net is not.
func daneZone(t *testing.T) (*dnstest.Server, TLSA) {
	t.Helper()
	l, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	good := rec(t, l.Cert, DANEEE, SelectorSPKI, MatchSHA256)
	pkix := rec(t, l.Cert, PKIXEE, SelectorSPKI, MatchSHA256)
	short := TLSA{DANEEE, SelectorSPKI, MatchSHA256, good.Data[:20]}
	s := dnstest.New(t)
	s.MustAdd(
		"example.com. SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60",
		"hoster.example. SOA ns.hoster.example. hostmaster.hoster.example. 1 3600 600 86400 60",
		"mx.example.com. A 192.0.2.1",
		rr("_25._tcp.mx.example.com", good),
		rr("_465._tcp.mx.example.com", good),
		// An alias whose target has TLSA: the expanded name wins.
		"alias.example.com. CNAME mx.hoster.example.",
		"mx.hoster.example. A 192.0.2.2",
		rr("_25._tcp.mx.hoster.example", good),
		rr("_25._tcp.alias.example.com", short),
		// An alias whose target has no TLSA: the original name is used.
		"alias2.example.com. CNAME plain.hoster.example.",
		"plain.hoster.example. A 192.0.2.3",
		rr("_25._tcp.alias2.example.com", good),
		// An alias into an unsigned zone: addresses insecure, no TLSA lookup.
		"alias3.example.com. CNAME mx.example.net.",
		"mx.example.net. A 198.51.100.1",
		rr("_25._tcp.mx.example.net", good),
		rr("_25._tcp.alias3.example.com", good),
		// Secure addresses, TLSA in an unsigned zone via an alias at the
		// TLSA name: insecure TLSA, no DANE.
		"insecuretlsa.example.com. A 192.0.2.4",
		"_25._tcp.insecuretlsa.example.com. CNAME _25._tcp.mx.example.net.",
		// Secure alias, TLSA at the expanded name insecure: fall back to
		// the original.
		"alias4.example.com. CNAME mx4.hoster.example.",
		"mx4.hoster.example. A 192.0.2.12",
		"_25._tcp.mx4.hoster.example. CNAME _25._tcp.mx.example.net.",
		rr("_25._tcp.alias4.example.com", good),
		"notls.example.com. A 192.0.2.5",
		"bogustlsa.example.com. A 192.0.2.6",
		"failtlsa.example.com. A 192.0.2.7",
		"slowtlsa.example.com. A 192.0.2.8",
		"unusable.example.com. A 192.0.2.9",
		rr("_25._tcp.unusable.example.com", pkix),
		rr("_25._tcp.unusable.example.com", short),
		"_25._tcp.unusable.example.com. TLSA 3 1 3 00",
		"_25._tcp.unusable.example.com. TLSA 4 1 1 "+strings.Repeat("00", 32),
		"mixed.example.com. A 192.0.2.10",
		rr("_25._tcp.mixed.example.com", pkix),
		rr("_25._tcp.mixed.example.com", good),
		"aliasbogus.example.com. CNAME bogusmx.hoster.example.",
		"bogusmx.hoster.example. A 192.0.2.11",
		rr("_25._tcp.aliasbogus.example.com", good),
		"noaddr.example.com. TXT \"no addresses\"",
		"insecure.example.net. A 198.51.100.9",
		rr("_25._tcp.insecure.example.net", good),
	)
	s.SetZone("example.com", dnstest.Rule{Mode: dnstest.Secure})
	s.SetZone("hoster.example", dnstest.Rule{Mode: dnstest.Secure})
	s.SetName("_25._tcp.bogustlsa.example.com", dnstest.Rule{Mode: dnstest.Bogus})
	s.SetName("_25._tcp.failtlsa.example.com", dnstest.Rule{Mode: dnstest.ServFail})
	s.SetName("_25._tcp.slowtlsa.example.com", dnstest.Rule{Mode: dnstest.Drop})
	s.SetName("_25._tcp.bogusmx.hoster.example", dnstest.Rule{Mode: dnstest.Bogus})
	return s, good
}

// STD-69, STD-70, STD-71, STD-72, STD-73, STD-74, STD-83: the TLSA lookup
// procedure of RFC 7672 §2.2.3 and the decision it gives.
func TestLookupHostTLSA(t *testing.T) {
	srv, good := daneZone(t)
	r := testResolver(srv)
	ctx := context.Background()
	tests := []struct {
		host     string
		port     int
		decision Decision
		base     string
		usable   int
		err      error    // wrapped by the returned error and Reason
		queries  []string // TLSA owner names asked, in order
	}{
		// STD-74: usable records: DANE mandatory.
		{"mx.example.com", 25, DANERequired, "mx.example.com", 1, nil, []string{"_25._tcp.mx.example.com."}},
		{"mx.example.com", 465, DANERequired, "mx.example.com", 1, nil, []string{"_465._tcp.mx.example.com."}},
		// STD-70: secure CNAME: expanded name first, and it has TLSA.
		{"alias.example.com", 25, DANERequired, "mx.hoster.example", 1, nil, []string{"_25._tcp.mx.hoster.example."}},
		// STD-70: expanded name has none (secure NXDOMAIN): original name.
		{"alias2.example.com", 25, DANERequired, "alias2.example.com", 1, nil, []string{"_25._tcp.plain.hoster.example.", "_25._tcp.alias2.example.com."}},
		// STD-69: address records (via a CNAME) insecure: no TLSA lookup.
		{"alias3.example.com", 25, NoDANE, "", 0, nil, nil},
		{"insecure.example.net", 25, NoDANE, "", 0, nil, nil},
		// STD-70, STD-72: TLSA at the expanded name insecure: original name.
		{"alias4.example.com", 25, DANERequired, "alias4.example.com", 1, nil, []string{"_25._tcp.mx4.hoster.example.", "_25._tcp.alias4.example.com."}},
		// STD-72: insecure TLSA answer: no DANE.
		{"insecuretlsa.example.com", 25, NoDANE, "", 0, nil, []string{"_25._tcp.insecuretlsa.example.com."}},
		// STD-72: secure denial: no DANE.
		{"notls.example.com", 25, NoDANE, "", 0, nil, []string{"_25._tcp.notls.example.com."}},
		// STD-71: bogus, SERVFAIL or timeout: host unusable, never "no DANE".
		{"bogustlsa.example.com", 25, HostUnusable, "", 0, ErrBogus, []string{"_25._tcp.bogustlsa.example.com."}},
		{"failtlsa.example.com", 25, HostUnusable, "", 0, ErrLookup, []string{"_25._tcp.failtlsa.example.com."}},
		{"slowtlsa.example.com", 25, HostUnusable, "", 0, ErrLookup, []string{"_25._tcp.slowtlsa.example.com."}},
		// STD-71: an error at the expanded name does not fall back.
		{"aliasbogus.example.com", 25, HostUnusable, "", 0, ErrBogus, []string{"_25._tcp.bogusmx.hoster.example."}},
		// STD-73: only unusable records: TLS without authentication.
		{"unusable.example.com", 25, TLSRequired, "unusable.example.com", 0, ErrUnusableTLSA, []string{"_25._tcp.unusable.example.com."}},
		// STD-75: PKIX-EE is dropped, DANE-EE kept.
		{"mixed.example.com", 25, DANERequired, "mixed.example.com", 1, nil, []string{"_25._tcp.mixed.example.com."}},
		// No addresses at all: the host cannot be used.
		{"noaddr.example.com", 25, HostUnusable, "", 0, ErrNoAddresses, nil},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			addrs, err := r.LookupIP(ctx, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			srv.ResetLog()
			h, err := r.LookupHostTLSA(ctx, addrs, tc.port)
			if h == nil {
				t.Fatalf("no result; err %v", err)
			}
			if h.Decision != tc.decision || h.BaseDomain != tc.base || len(h.Usable) != tc.usable {
				t.Errorf("decision %v base %q usable %d, want %v %q %d (reason %v)", h.Decision, h.BaseDomain, len(h.Usable), tc.decision, tc.base, tc.usable, h.Reason)
			}
			if (err != nil) != (tc.decision == HostUnusable) {
				t.Errorf("err = %v for decision %v", err, h.Decision)
			}
			if tc.err != nil && (!errors.Is(h.Reason, tc.err)) {
				t.Errorf("reason %v, want %v", h.Reason, tc.err)
			}
			if tc.err == nil && h.Reason != nil {
				t.Errorf("unexpected reason %v", h.Reason)
			}
			var asked []string
			for _, q := range srv.Queries() {
				if q.Type == dns.TypeTLSA {
					asked = append(asked, q.Name)
				}
			}
			if !slices.Equal(asked, tc.queries) {
				t.Errorf("TLSA queries %v, want %v", asked, tc.queries)
			}
			// STD-83: SNI is the TLSA base domain when there is one.
			wantSNI := tc.base
			if wantSNI == "" {
				wantSNI = tc.host
			}
			if h.ServerName() != wantSNI {
				t.Errorf("ServerName %q, want %q", h.ServerName(), wantSNI)
			}
			if tc.decision == DANERequired {
				if h.Owner != tlsaOwner(tc.port, tc.base) || len(h.Records) == 0 {
					t.Errorf("owner %q records %v", h.Owner, h.Records)
				}
				v, err := h.Verifier()
				if err != nil {
					t.Fatal(err)
				}
				if v.ServerName() != tc.base || v.owner != h.Owner {
					t.Errorf("verifier server name %q owner %q", v.ServerName(), v.owner)
				}
				if h.Usable[0].String() != good.String() {
					t.Errorf("usable record %v, want %v", h.Usable[0], good)
				}
			}
		})
	}
}

func TestLookupHostTLSAArguments(t *testing.T) {
	r := &Resolver{Servers: []string{"127.0.0.1:1"}}
	if _, err := r.LookupHostTLSA(context.Background(), nil, 25); err == nil {
		t.Error("nil addresses accepted")
	}
	for _, port := range []int{0, -1, 65536} {
		if _, err := r.LookupHostTLSA(context.Background(), &IPAnswer{}, port); err == nil {
			t.Errorf("port %d accepted", port)
		}
	}
}

// STD-73, STD-84, STD-97: asking for a verifier when the host has no usable
// TLSA records gives a typed error with the right RFC 8460 result type.
func TestVerifierForDecisions(t *testing.T) {
	srv, _ := daneZone(t)
	r := testResolver(srv)
	ctx := context.Background()
	tests := []struct {
		host   string
		result string
		is     error
	}{
		{"notls.example.com", rfc8460.DANERequired, ErrDANERequired},
		{"insecure.example.net", rfc8460.DANERequired, ErrDANERequired},
		{"unusable.example.com", rfc8460.DANERequired, ErrDANERequired},
		{"bogustlsa.example.com", rfc8460.DNSSECInvalid, ErrBogus},
		{"failtlsa.example.com", rfc8460.DNSSECInvalid, ErrLookup},
	}
	for _, tc := range tests {
		addrs, err := r.LookupIP(ctx, tc.host)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := r.LookupHostTLSA(ctx, addrs, 25)
		v, err := h.Verifier()
		var rt interface{ ReportResultType() string }
		if v != nil || !errors.As(err, &rt) || rt.ReportResultType() != tc.result || !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, %v; want result type %s", tc.host, v, err, tc.result)
		}
		if !strings.Contains(err.Error(), tc.host) {
			t.Errorf("%s: message does not name the host: %v", tc.host, err)
		}
	}
	// STD-73: the unusable RRset's reason reports tlsa-invalid.
	addrs, _ := r.LookupIP(ctx, "unusable.example.com")
	h, _ := r.LookupHostTLSA(ctx, addrs, 25)
	var le *LookupError
	if !errors.As(h.Reason, &le) || le.ReportResultType() != rfc8460.TLSAInvalid || len(h.Records) != 4 {
		t.Errorf("reason %v, records %v", h.Reason, h.Records)
	}
	if (&HostTLSA{}).Decision.String() != "host unusable" || Decision(9).String() != "Decision(9)" {
		t.Error("Decision.String")
	}
	if _, err := (&HostTLSA{Host: "x.example"}).Verifier(); !errors.Is(err, ErrDANERequired) {
		t.Errorf("zero HostTLSA: %v", err)
	}
}

// STD-80: reference identifiers: the TLSA base domain and the MX host (and
// its expansion) always; the next-hop domain and its expansion only when
// the MX RRset was secure.
func TestReferenceIDs(t *testing.T) {
	srv, _ := daneZone(t)
	srv.MustAdd(
		"example.com. MX 10 alias.example.com.",
		"example.net. MX 10 alias.example.com.",
		"maildomain.example.com. CNAME example.com.",
	)
	r := testResolver(srv)
	ctx := context.Background()
	addrs, err := r.LookupIP(ctx, "alias.example.com")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.LookupHostTLSA(ctx, addrs, 25)
	if err != nil || h.Decision != DANERequired {
		t.Fatal(h, err)
	}

	secureMX, err := r.LookupMX(ctx, "maildomain.example.com")
	if err != nil || secureMX.Status != Secure {
		t.Fatal(secureMX, err)
	}
	got := h.ReferenceIDs(NextHopNames(secureMX)...)
	want := []string{"mx.hoster.example", "alias.example.com", "maildomain.example.com", "example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("secure MX: %v, want %v", got, want)
	}

	insecureMX, err := r.LookupMX(ctx, "example.net")
	if err != nil || insecureMX.Status != Insecure {
		t.Fatal(insecureMX, err)
	}
	got = h.ReferenceIDs(NextHopNames(insecureMX)...)
	want = []string{"mx.hoster.example", "alias.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("insecure MX: %v, want %v", got, want)
	}
	if NextHopNames(nil) != nil {
		t.Error("NextHopNames(nil)")
	}

	v, err := h.Verifier(NextHopNames(secureMX)...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.ReferenceIDs(), []string{"mx.hoster.example", "alias.example.com", "maildomain.example.com", "example.com"}) {
		t.Errorf("verifier names %v", v.ReferenceIDs())
	}
}
