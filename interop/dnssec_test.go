//go:build interop

package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
)

// TestDNSSEC validates in the library every name the interop tests use in
// the lab's NSD zones (signed, bogus and unsigned), asked through an
// upstream that does not validate, and checks that it reaches the same
// status as the lab's validating Unbound, whose AD bit and extended
// errors the library trusts by default. The upstreams are:
//
//   - the lab's non-validating recursive resolver
//     (SMTPSECURE_LAB_NONVALIDATING_RESOLVER_ADDR), the setting validating
//     mode is for;
//   - NSD itself (SMTPSECURE_LAB_NSD_ADDR), authoritative for every lab
//     zone and answering DS queries from the parent zone, which the
//     library can use as if it were a recursive resolver.
//
// The trust anchor is the test.example KSK's DS record
// (SMTPSECURE_LAB_TRUST_ANCHOR_DS), the one Unbound uses.
//
// STD-64, STD-65, STD-71
func TestDNSSEC(t *testing.T) {
	l := loadLab(t)
	anchors, err := readTrustAnchor(os.Getenv("SMTPSECURE_LAB_TRUST_ANCHOR_DS"))
	if err != nil {
		t.Fatalf("the lab's trust anchor: %v", err)
	}
	upstreams := []struct{ name, env string }{
		{"NonValidatingResolver", "SMTPSECURE_LAB_NONVALIDATING_RESOLVER_ADDR"},
		{"NSD", "SMTPSECURE_LAB_NSD_ADDR"},
	}
	for _, up := range upstreams {
		t.Run(up.name, func(t *testing.T) {
			addr := os.Getenv(up.env)
			if addr == "" {
				t.Skipf("%s is not set: this lab has no such upstream (the non-validating resolver comes with a newer scripts/interop)", up.env)
			}
			validating := &dane.Resolver{Servers: []string{addr}, Validator: &dane.Validator{TrustAnchors: anchors}}
			compareWithUnbound(t, l, validating)
		})
	}
}

// readTrustAnchor reads the DS records in a file of presentation-format
// records.
func readTrustAnchor(path string) ([]dns.RR, error) {
	if path == "" {
		return nil, errors.New("SMTPSECURE_LAB_TRUST_ANCHOR_DS is not set")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []dns.RR
	zp := dns.NewZoneParser(f, "", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if ds, isDS := rr.(*dns.DS); isDS {
			out = append(out, ds)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no DS record", path)
	}
	return out, nil
}

// outcome is what a lookup says, in terms both modes share.
type outcome struct {
	status  dane.Status
	nx      bool
	records []string
}

func (o outcome) String() string {
	s := o.status.String()
	if o.nx {
		s += " NXDOMAIN"
	}
	return fmt.Sprintf("%s %q", s, o.records)
}

func lookupOutcome(ctx context.Context, r *dane.Resolver, name string, qtype uint16) (outcome, error) {
	a, err := r.Lookup(ctx, name, qtype)
	if err != nil {
		var le *dane.LookupError
		if !errors.As(err, &le) {
			return outcome{}, err
		}
		return outcome{status: le.Status}, nil
	}
	var recs []string
	for _, rr := range a.Records {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		recs = append(recs, strings.ToLower(c.String()))
	}
	slices.Sort(recs)
	return outcome{status: a.Status, nx: a.NXDomain, records: recs}, nil
}

// dnssecNames returns every name and type the interop tests look up.
func (l *lab) dnssecNames() []struct {
	name  string
	qtype uint16
} {
	type q = struct {
		name  string
		qtype uint16
	}
	var out []q
	for _, d := range []string{l.zone, l.daneEE, l.daneTA, l.daneEEBad, l.daneTABad, l.noTLSA, l.nullMX, l.bogusZone, l.insecureZone} {
		out = append(out, q{d, dns.TypeMX})
	}
	hosts := []string{l.mxHost, l.daneTA, l.daneEEBad, l.daneTABad, l.noTLSA, l.cname, l.cnameOwn, l.bogusHost, l.insecureHost}
	for _, h := range hosts {
		out = append(out, q{h, dns.TypeA}, q{h, dns.TypeAAAA})
		for _, p := range l.tlsaPorts {
			out = append(out, q{fmt.Sprintf("_%d._tcp.%s", p, h), dns.TypeTLSA})
		}
	}
	out = append(out,
		q{"_mta-sts." + l.zone, dns.TypeTXT},
		q{"_smtp._tls." + l.zone, dns.TypeTXT},
		q{l.bogusZone, dns.TypeTXT},
		q{"nowhere." + l.zone, dns.TypeA},
	)
	return out
}

// compareWithUnbound looks up every name through Unbound (trusting its
// AD bit) and through validating, and requires the same status, denial
// and records; then the same RFC 7672 decision for every host and port.
func compareWithUnbound(t *testing.T, l *lab, validating *dane.Resolver) {
	ctx := caseContext(t)
	unbound := l.resolver()
	for _, q := range l.dnssecNames() {
		want, err := lookupOutcome(ctx, unbound, q.name, q.qtype)
		if err != nil {
			t.Errorf("%s %s via Unbound: %v", q.name, dns.TypeToString[q.qtype], err)
			continue
		}
		got, err := lookupOutcome(ctx, validating, q.name, q.qtype)
		if err != nil {
			t.Errorf("%s %s validated in the library: %v", q.name, dns.TypeToString[q.qtype], err)
			continue
		}
		if got.status != want.status || got.nx != want.nx || !slices.Equal(got.records, want.records) {
			t.Errorf("%s %s: validated in the library %v; Unbound %v", q.name, dns.TypeToString[q.qtype], got, want)
		} else {
			t.Logf("%-40s %-5s %s", q.name, dns.TypeToString[q.qtype], got)
		}
	}
	for _, h := range []string{l.daneEE, l.daneTA, l.daneEEBad, l.daneTABad, l.noTLSA, l.cname, l.cnameOwn, l.bogusHost, l.insecureHost} {
		for _, port := range l.tlsaPorts {
			want, werr := hostDecision(ctx, unbound, h, port)
			got, gerr := hostDecision(ctx, validating, h, port)
			if got != want || (werr == nil) != (gerr == nil) {
				t.Errorf("%s port %d: validated in the library %v (%v); Unbound %v (%v)", h, port, got, gerr, want, werr)
			}
		}
	}
}

// hostDecision returns the RFC 7672 decision for a host, HostUnusable when
// its addresses cannot be had.
func hostDecision(ctx context.Context, r *dane.Resolver, host string, port int) (dane.Decision, error) {
	addrs, err := r.LookupIP(ctx, host)
	if err != nil {
		return dane.HostUnusable, err
	}
	h, err := r.LookupHostTLSA(ctx, addrs, port)
	if err != nil {
		return h.Decision, err
	}
	return h.Decision, nil
}
