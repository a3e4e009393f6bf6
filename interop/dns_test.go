//go:build interop

package interop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
)

// resolver returns the library's resolver pointed at the lab's Unbound, a
// loopback upstream whose AD bit it trusts.
func (l *lab) resolver() *dane.Resolver {
	return &dane.Resolver{Servers: []string{l.resolverAddr}}
}

// testDNS covers the DNSSEC side through the real Unbound: secure, bogus,
// insecure and failed answers, every TLSA set of the lab, the CNAME hosts,
// the null MX, and the RFC 7672 decision for each host.
func testDNS(t *testing.T, l *lab) {
	t.Run("MX", func(t *testing.T) { t.Parallel(); testMX(t, l) })
	t.Run("Addresses", func(t *testing.T) { t.Parallel(); testAddresses(t, l) })
	t.Run("TLSA", func(t *testing.T) { t.Parallel(); testTLSARecords(t, l) })
	t.Run("NullMX", func(t *testing.T) { t.Parallel(); testNullMX(t, l) })
	t.Run("CNAME", func(t *testing.T) { t.Parallel(); testCNAMEAnswers(t, l) })
	t.Run("PolicyTXT", func(t *testing.T) { t.Parallel(); testPolicyTXT(t, l) })
	t.Run("Bogus", func(t *testing.T) { t.Parallel(); testBogus(t, l) })
	t.Run("Insecure", func(t *testing.T) { t.Parallel(); testInsecure(t, l) })
	t.Run("Refused", func(t *testing.T) { t.Parallel(); testRefused(t, l) })
	t.Run("NonValidatingUpstream", func(t *testing.T) { t.Parallel(); testNonValidatingUpstream(t, l) })
	t.Run("HostDecision", func(t *testing.T) { t.Parallel(); testHostDecision(t, l) })
}

// testMX: the signed zone's MX RRsets are secure and point where the zone
// says.
//
// STD-64, STD-65, STD-68
func testMX(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	cases := map[string]string{
		l.zone:      l.mxHost,
		l.daneEE:    l.daneEE,
		l.daneTA:    l.daneTA,
		l.daneEEBad: l.daneEEBad,
		l.daneTABad: l.daneTABad,
		l.noTLSA:    l.noTLSA,
	}
	for domain, host := range cases {
		mx, err := r.LookupMX(ctx, domain)
		if err != nil {
			t.Errorf("LookupMX(%s): %v", domain, err)
			continue
		}
		if mx.Status != dane.Secure || !mx.Secure() {
			t.Errorf("LookupMX(%s): status %v, want secure", domain, mx.Status)
		}
		if want := []dane.MX{{Host: host, Preference: 10}}; !slices.Equal(mx.MX, want) || mx.NullMX {
			t.Errorf("LookupMX(%s) = %v (null MX %v), want %v", domain, mx.MX, mx.NullMX, want)
		}
		if got := dane.NextHopNames(mx); !slices.Equal(got, []string{domain}) {
			t.Errorf("NextHopNames(MX of %s) = %v, want [%s]", domain, got, domain)
		}
	}
}

// testAddresses: every case host's A (and AAAA) records are secure.
//
// STD-64, STD-69
func testAddresses(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if l.ipv6 {
		want = append(want, netip.MustParseAddr("::1"))
	}
	for _, host := range []string{l.mxHost, l.daneTA, l.daneEEBad, l.daneTABad, l.noTLSA} {
		a, err := r.LookupIP(ctx, host)
		if err != nil {
			t.Errorf("LookupIP(%s): %v", host, err)
			continue
		}
		if a.Status != dane.Secure || !slices.Equal(a.Addrs, want) || a.Canonical != host || len(a.CNAMEs) != 0 {
			t.Errorf("LookupIP(%s) = %v %v (canonical %s, CNAMEs %v), want secure %v", host, a.Status, a.Addrs, a.Canonical, a.CNAMEs, want)
		}
	}
}

// tlsaStrings returns records in presentation form, sorted.
func tlsaStrings(rs []dane.TLSA) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	slices.Sort(out)
	return out
}

// wantTLSA returns the records the lab publishes at _port._tcp.host for
// every port in TLSA_PORTS, nil for a secure denial.
func (l *lab) wantTLSA() map[string][]string {
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	return map[string][]string{
		l.daneEE:    sorted("3 1 1 " + l.serverSPKI),
		l.daneTA:    sorted("2 1 1 "+l.caSPKI, "2 0 1 "+l.caCert),
		l.daneEEBad: sorted("3 1 1 " + l.unusedSPKI),
		l.daneTABad: sorted("2 1 1 " + l.unusedSPKI),
		l.cnameOwn:  sorted("3 1 1 " + l.serverSPKI),
		l.noTLSA:    nil,
		l.cname:     nil,
	}
}

// testTLSARecords: every TLSA set of the lab, on every port, through
// Unbound: secure, with exactly the data the lab published; the hosts
// without TLSA get a secure denial, not an error.
//
// STD-64, STD-65, STD-72, STD-77
func testTLSARecords(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	for host, want := range l.wantTLSA() {
		for _, port := range l.tlsaPorts {
			owner := fmt.Sprintf("_%d._tcp.%s", port, host)
			a, err := r.LookupTLSA(ctx, owner)
			if err != nil {
				t.Errorf("LookupTLSA(%s): %v", owner, err)
				continue
			}
			if a.Status != dane.Secure {
				t.Errorf("LookupTLSA(%s): status %v, want secure", owner, a.Status)
			}
			if got := tlsaStrings(a.TLSA); !slices.Equal(got, want) {
				t.Errorf("LookupTLSA(%s) = %q, want %q", owner, got, want)
			}
			if want == nil && !a.NXDomain {
				t.Errorf("LookupTLSA(%s): want a secure NXDOMAIN", owner)
			}
		}
	}
}

// testNullMX: the RFC 7505 null MX is reported as such, securely.
//
// STD-65
func testNullMX(t *testing.T, l *lab) {
	mx, err := l.resolver().LookupMX(caseContext(t), l.nullMX)
	if err != nil {
		t.Fatal(err)
	}
	if !mx.NullMX || len(mx.MX) != 0 || mx.Status != dane.Secure || len(mx.Records) != 1 {
		t.Errorf("LookupMX(%s): null MX %v, MX %v, status %v, %d records; want a secure null MX",
			l.nullMX, mx.NullMX, mx.MX, mx.Status, len(mx.Records))
	}
}

// testCNAMEAnswers: the CNAME hosts' address answers are secure, with the
// alias followed.
//
// STD-70
func testCNAMEAnswers(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	for alias, target := range map[string]string{l.cname: l.mxHost, l.cnameOwn: l.noTLSA} {
		a, err := r.LookupIP(ctx, alias)
		if err != nil {
			t.Errorf("LookupIP(%s): %v", alias, err)
			continue
		}
		want := []dane.CNAME{{Name: alias, Target: target, Status: dane.Secure}}
		if a.Status != dane.Secure || a.Name != alias || a.Canonical != target || !slices.Equal(a.CNAMEs, want) || len(a.Addrs) == 0 {
			t.Errorf("LookupIP(%s): status %v, canonical %s, CNAMEs %v, addresses %v; want secure via %v", alias, a.Status, a.Canonical, a.CNAMEs, a.Addrs, want)
		}
	}
}

// testPolicyTXT: the signed zone's MTA-STS and TLS-RPT records are there
// and secure.
func testPolicyTXT(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	for name, prefix := range map[string]string{"_mta-sts." + l.zone: "v=STSv1;", "_smtp._tls." + l.zone: "v=TLSRPTv1;"} {
		a, err := r.Lookup(ctx, name, dns.TypeTXT)
		if err != nil || a.Status != dane.Secure || len(a.Records) != 1 {
			t.Errorf("Lookup(%s, TXT): %v, want one secure record", name, err)
			continue
		}
		txt, err := r.LookupTXT(ctx, name)
		if err != nil || len(txt) != 1 || !strings.HasPrefix(txt[0], prefix) {
			t.Errorf("LookupTXT(%s) = %q, %v; want one record starting %q", name, txt, err, prefix)
		}
	}
}

// testBogus: every lookup in the zone with broken signatures is a bogus
// error, never "no records", with Unbound's SERVFAIL and EDE 6.
//
// STD-65, STD-66, STD-71, STD-87, STD-97
func testBogus(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	lookups := map[string]func() error{
		"MX " + l.bogusZone: func() error { _, err := r.LookupMX(ctx, l.bogusZone); return err },
		"A/AAAA " + l.bogusHost: func() error {
			_, err := r.LookupIP(ctx, l.bogusHost)
			return err
		},
		"TXT " + l.bogusZone: func() error { _, err := r.Lookup(ctx, l.bogusZone, dns.TypeTXT); return err },
	}
	for _, port := range l.tlsaPorts {
		owner := fmt.Sprintf("_%d._tcp.%s", port, l.bogusHost)
		lookups["TLSA "+owner] = func() error { _, err := r.LookupTLSA(ctx, owner); return err }
	}
	for name, lookup := range lookups {
		err := lookup()
		var le *dane.LookupError
		if !errors.As(err, &le) {
			t.Errorf("%s: %v (%T), want a *dane.LookupError", name, err, err)
			continue
		}
		if !errors.Is(err, dane.ErrBogus) || errors.Is(err, dane.ErrLookup) || le.Status != dane.Bogus {
			t.Errorf("%s: %v (status %v), want bogus", name, err, le.Status)
		}
		if le.Rcode != dns.RcodeServerFailure || !slices.ContainsFunc(le.EDE, func(e dane.ExtendedError) bool {
			return e.Code == dns.ExtendedErrorCodeDNSBogus && e.DNSSEC()
		}) {
			t.Errorf("%s: rcode %d, EDE %v; want SERVFAIL with EDE 6", name, le.Rcode, le.EDE)
		}
		if got := le.ReportResultType(); got != "dnssec-invalid" {
			t.Errorf("%s: ReportResultType() = %q, want dnssec-invalid", name, got)
		}
	}
}

// testInsecure: the unsigned zone is insecure, and its TLSA records, which
// exist and would match, are ignored: no DANE.
//
// STD-68, STD-69, STD-72, STD-84
func testInsecure(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	mx, err := r.LookupMX(ctx, l.insecureZone)
	if err != nil {
		t.Fatal(err)
	}
	if mx.Status != dane.Insecure || !slices.Equal(mx.MX, []dane.MX{{Host: l.insecureHost, Preference: 10}}) {
		t.Errorf("LookupMX(%s) = %v %v, want insecure %s", l.insecureZone, mx.Status, mx.MX, l.insecureHost)
	}
	if got := dane.NextHopNames(mx); got != nil {
		t.Errorf("NextHopNames(insecure MX) = %v, want none", got)
	}
	addrs, err := r.LookupIP(ctx, l.insecureHost)
	if err != nil {
		t.Fatal(err)
	}
	if addrs.Status != dane.Insecure || len(addrs.Addrs) == 0 {
		t.Errorf("LookupIP(%s) = %v %v, want insecure addresses", l.insecureHost, addrs.Status, addrs.Addrs)
	}
	owner := fmt.Sprintf("_%d._tcp.%s", l.starttls.port(), l.insecureHost)
	tlsa, err := r.LookupTLSA(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if tlsa.Status != dane.Insecure || !slices.Equal(tlsaStrings(tlsa.TLSA), []string{"3 1 1 " + l.serverSPKI}) {
		t.Errorf("LookupTLSA(%s) = %v %v, want the insecure record 3 1 1 %s", owner, tlsa.Status, tlsaStrings(tlsa.TLSA), l.serverSPKI)
	}
	h, err := r.LookupHostTLSA(ctx, addrs, l.starttls.port())
	if err != nil {
		t.Fatal(err)
	}
	if h.Decision != dane.NoDANE || h.BaseDomain != "" || len(h.Usable) != 0 {
		t.Errorf("LookupHostTLSA(%s) = %v (base %q, %d usable), want no DANE", l.insecureHost, h.Decision, h.BaseDomain, len(h.Usable))
	}
	checkDANERequired(t, h)
}

// checkDANERequired checks that a host without usable TLSA records gives a
// typed dane-required error to a caller that insists on DANE.
func checkDANERequired(t *testing.T, h *dane.HostTLSA) {
	t.Helper()
	_, err := h.Verifier()
	var ve *dane.VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, dane.ErrDANERequired) || ve.ReportResultType() != "dane-required" {
		t.Errorf("Verifier() for %s (%v): %v, want a dane-required *VerifyError", h.Host, h.Decision, err)
	}
}

// testRefused: Unbound refuses names outside the lab's zone. That is a
// lookup error, not bogus and not "no records".
//
// STD-65
func testRefused(t *testing.T, l *lab) {
	_, err := l.resolver().LookupMX(caseContext(t), "example.com")
	var le *dane.LookupError
	if !errors.As(err, &le) || !errors.Is(err, dane.ErrLookup) || errors.Is(err, dane.ErrBogus) {
		t.Fatalf("LookupMX(example.com): %v, want a lookup error that is not bogus", err)
	}
	if le.Rcode != dns.RcodeRefused || le.Status != dane.Indeterminate {
		t.Errorf("rcode %d, status %v; want REFUSED, indeterminate", le.Rcode, le.Status)
	}
}

// testNonValidatingUpstream: NSD is authoritative for the signed zone but
// never sets AD, so even on loopback its answers are insecure: secure comes
// only from a validating resolver.
//
// STD-64
func testNonValidatingUpstream(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := &dane.Resolver{Servers: []string{l.nsdAddr}}
	mx, err := r.LookupMX(ctx, l.zone)
	if err != nil {
		t.Fatal(err)
	}
	if mx.Status != dane.Insecure || len(mx.MX) != 1 {
		t.Errorf("LookupMX(%s) via NSD = %v %v, want the records, insecure", l.zone, mx.Status, mx.MX)
	}
	owner := fmt.Sprintf("_%d._tcp.%s", l.starttls.port(), l.mxHost)
	tlsa, err := r.LookupTLSA(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if tlsa.Status != dane.Insecure || len(tlsa.TLSA) != 1 {
		t.Errorf("LookupTLSA(%s) via NSD = %v %v, want the record, insecure", owner, tlsa.Status, tlsa.TLSA)
	}
}

// testHostDecision: the RFC 7672 §2.2 decision for every case host, on
// every SMTP port, with the TLSA base domain, the SNI name and the
// reference identifiers.
//
// STD-69, STD-70, STD-72, STD-74, STD-75, STD-80, STD-83, STD-84
func testHostDecision(t *testing.T, l *lab) {
	ctx := caseContext(t)
	r := l.resolver()
	want := l.wantTLSA()
	cases := []struct {
		host, canonical, base string
		decision              dane.Decision
	}{
		{l.daneEE, l.daneEE, l.daneEE, dane.DANERequired},
		{l.daneTA, l.daneTA, l.daneTA, dane.DANERequired},
		{l.daneEEBad, l.daneEEBad, l.daneEEBad, dane.DANERequired},
		{l.daneTABad, l.daneTABad, l.daneTABad, dane.DANERequired},
		{l.cname, l.mxHost, l.mxHost, dane.DANERequired},      // TLSA at the expanded name
		{l.cnameOwn, l.noTLSA, l.cnameOwn, dane.DANERequired}, // no TLSA at the target: the alias's
		{l.noTLSA, l.noTLSA, "", dane.NoDANE},
	}
	for _, tc := range cases {
		for _, port := range l.smtpPorts {
			where := fmt.Sprintf("%s port %d", tc.host, port)
			addrs, err := r.LookupIP(ctx, tc.host)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			h, err := r.LookupHostTLSA(ctx, addrs, port)
			if err != nil {
				t.Errorf("%s: LookupHostTLSA: %v", where, err)
				continue
			}
			if h.Decision != tc.decision || h.Host != tc.host || h.Canonical != tc.canonical || h.BaseDomain != tc.base {
				t.Errorf("%s: decision %v, host %s, canonical %s, base %q; want %v, %s, %s, %q",
					where, h.Decision, h.Host, h.Canonical, h.BaseDomain, tc.decision, tc.host, tc.canonical, tc.base)
				continue
			}
			if tc.decision != dane.DANERequired {
				checkDANERequired(t, h)
				continue
			}
			if got := tlsaStrings(h.Usable); !slices.Equal(got, want[tc.base]) {
				t.Errorf("%s: usable records %q, want %q", where, got, want[tc.base])
			}
			if wantOwner := fmt.Sprintf("_%d._tcp.%s", port, tc.base); h.Owner != wantOwner {
				t.Errorf("%s: owner %s, want %s", where, h.Owner, wantOwner)
			}
			v, err := h.Verifier()
			if err != nil {
				t.Errorf("%s: Verifier: %v", where, err)
				continue
			}
			if v.ServerName() != tc.base || h.ServerName() != tc.base {
				t.Errorf("%s: SNI %q (host %q), want the TLSA base domain %s", where, v.ServerName(), h.ServerName(), tc.base)
			}
			ids := v.ReferenceIDs()
			for _, n := range []string{tc.base, tc.host, tc.canonical} {
				if !slices.Contains(ids, n) {
					t.Errorf("%s: reference identifiers %v lack %s", where, ids, n)
				}
			}
		}
	}
}

// lookupHostForDANE runs the RFC 7672 procedure for mail to domain (or,
// when domain is "", for the host itself, as for a CNAME host without MX):
// MX, addresses, TLSA for port. It fails the test unless every step is
// secure.
func (l *lab) lookupHostForDANE(ctx context.Context, t *testing.T, domain, host string, port int) (*dane.HostTLSA, *dane.IPAnswer, []string) {
	t.Helper()
	r := l.resolver()
	var nextHop []string
	if domain != "" {
		mx, err := r.LookupMX(ctx, domain)
		if err != nil {
			t.Fatalf("LookupMX(%s): %v", domain, err)
		}
		if !mx.Secure() || len(mx.MX) == 0 {
			t.Fatalf("LookupMX(%s) = %v %v, want a secure MX", domain, mx.Status, mx.MX)
		}
		host = mx.MX[0].Host
		nextHop = dane.NextHopNames(mx)
	}
	addrs, err := r.LookupIP(ctx, host)
	if err != nil {
		t.Fatalf("LookupIP(%s): %v", host, err)
	}
	h, err := r.LookupHostTLSA(ctx, addrs, port)
	if err != nil {
		t.Fatalf("LookupHostTLSA(%s, %d): %v", host, port, err)
	}
	if h.Decision != dane.DANERequired {
		t.Fatalf("LookupHostTLSA(%s, %d) = %v, want %v", host, port, h.Decision, dane.DANERequired)
	}
	return h, addrs, nextHop
}
