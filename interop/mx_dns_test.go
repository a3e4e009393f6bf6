//go:build interop

package interop

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
)

// wantStatus is the status every answer about a name in zone has through the
// validating Unbound.
func (l *mxLab) wantStatus(zone string) dane.Status {
	if l.secure(zone) {
		return dane.Secure
	}
	return dane.Insecure
}

// testMXLabDNS: every MX domain's MX RRset, every MX host's address and the
// RFC 7672 decision for it, and the TLS-RPT records, through Unbound.
//
// STD-64, STD-67, STD-68, STD-69, STD-72, STD-73, STD-74, STD-75
func testMXLabDNS(t *testing.T, l *mxLab) {
	t.Run("MX", func(t *testing.T) {
		t.Parallel()
		ctx := mxContext(t)
		r := l.resolver()
		for _, d := range l.domains {
			mx, err := r.LookupMX(ctx, d.name)
			if err != nil {
				t.Errorf("LookupMX(%s): %v", d.name, err)
				continue
			}
			var want []dane.MX
			for i, h := range d.mx {
				want = append(want, dane.MX{Host: h, Preference: uint16(10 * (i + 1))})
			}
			if !slices.Equal(mx.MX, want) || mx.NullMX {
				t.Errorf("LookupMX(%s) = %v (null MX %v), want %v", d.name, mx.MX, mx.NullMX, want)
			}
			if ws := l.wantStatus(d.zone); mx.Status != ws {
				t.Errorf("LookupMX(%s): status %v, want %v", d.name, mx.Status, ws)
			}
			// The recipient domain is a DANE-TA reference identifier only
			// when its MX RRset is secure (RFC 7672 §3.2.2).
			var wantNext []string
			if l.secure(d.zone) {
				wantNext = []string{d.name}
			}
			if got := dane.NextHopNames(mx); !slices.Equal(got, wantNext) {
				t.Errorf("NextHopNames(MX of %s) = %v, want %v", d.name, got, wantNext)
			}
		}
	})
	t.Run("HostDecision", func(t *testing.T) {
		t.Parallel()
		ctx := mxContext(t)
		r := l.resolver()
		for _, h := range l.hosts {
			ap, err := netip.ParseAddrPort(h.addr)
			if err != nil {
				t.Fatalf("%s_ADDR %q: %v", h.key, h.addr, err)
			}
			ips, err := r.LookupIP(ctx, h.name)
			if err != nil {
				t.Errorf("LookupIP(%s): %v", h.name, err)
				continue
			}
			if want := []netip.Addr{ap.Addr()}; !slices.Equal(ips.Addrs, want) || ips.Status != l.wantStatus(h.zone) {
				t.Errorf("LookupIP(%s) = %v %v, want %v %v", h.name, ips.Status, ips.Addrs, l.wantStatus(h.zone), want)
			}
			ht, err := r.LookupHostTLSA(ctx, ips, 25)
			if err != nil {
				t.Errorf("LookupHostTLSA(%s, 25): %v", h.name, err)
				continue
			}
			got := tlsaStrings(ht.Records)
			switch {
			case h.key == "MX_PKIX":
				// A secure RRset of PKIX-EE and PKIX-TA records only: TLS is
				// mandatory, without authentication (RFC 7672 §2.2, §3.1.3).
				if ht.Decision != dane.TLSRequired || len(ht.Usable) != 0 || !errors.Is(ht.Reason, dane.ErrUnusableTLSA) {
					t.Errorf("LookupHostTLSA(%s) = %v (usable %v, reason %v), want TLSRequired, no usable record, ErrUnusableTLSA",
						h.name, ht.Decision, ht.Usable, ht.Reason)
				}
				for _, rec := range ht.Records {
					if rec.Usage != dane.PKIXEE && rec.Usage != dane.PKIXTA {
						t.Errorf("%s publishes %v; the lab wants only PKIX-EE and PKIX-TA records there", h.name, rec)
					}
				}
			case len(h.tlsa) > 0:
				if ht.Decision != dane.DANERequired || !slices.Equal(tlsaStrings(ht.Usable), h.tlsa) {
					t.Errorf("LookupHostTLSA(%s) = %v, usable %q, want DANERequired with %q", h.name, ht.Decision, tlsaStrings(ht.Usable), h.tlsa)
				}
				if ht.BaseDomain != h.name || ht.ServerName() != h.name || ht.Owner != "_25._tcp."+h.name {
					t.Errorf("LookupHostTLSA(%s): base %q, SNI %q, owner %q, want the host itself", h.name, ht.BaseDomain, ht.ServerName(), ht.Owner)
				}
			default:
				// Unsigned zone: no TLSA lookup, no DANE.
				if ht.Decision != dane.NoDANE || len(ht.Records) != 0 {
					t.Errorf("LookupHostTLSA(%s) = %v with %q, want NoDANE without records", h.name, ht.Decision, got)
				}
			}
			if len(h.tlsa) > 0 && !slices.Equal(got, h.tlsa) {
				t.Errorf("LookupHostTLSA(%s) records %q, want %q (SMTPSECURE_LAB_%s_TLSA)", h.name, got, h.tlsa, h.key)
			}
		}
	})
	t.Run("MismatchUsesUnusedKey", func(t *testing.T) {
		t.Parallel()
		h := l.host(l.domain("FAILOVER_DOMAIN").mx[0])
		if want := []string{"3 1 1 " + l.unusedSPKI}; !slices.Equal(h.tlsa, want) {
			t.Errorf("first MX of the failover domain, %s, publishes %q, want %q: a key no server uses", h.name, h.tlsa, want)
		}
	})
	t.Run("TLSRPT", func(t *testing.T) {
		t.Parallel()
		ctx := mxContext(t)
		r := l.resolver()
		for _, d := range l.domains {
			name := "_smtp._tls." + d.name
			a, err := r.Lookup(ctx, name, dns.TypeTXT)
			if err != nil {
				t.Errorf("Lookup(%s TXT): %v", name, err)
				continue
			}
			var got []string
			for _, rr := range a.Records {
				got = append(got, strings.Join(rr.(*dns.TXT).Txt, ""))
			}
			var want []string
			if d.tlsrpt != "" {
				want = []string{"v=TLSRPTv1; rua=" + d.tlsrpt}
			}
			if !slices.Equal(got, want) || a.Status != l.wantStatus(d.zone) {
				t.Errorf("%s TXT = %q (%v), want %q (%v)", name, got, a.Status, want, l.wantStatus(d.zone))
			}
		}
		// The report address is in a domain the lab delivers to.
		_, domain, _ := strings.Cut(l.tlsrptAddress, "@")
		if rd := l.domain("REPORTS_DOMAIN"); rd.name != domain || rd.maildir != l.tlsrptMaildir {
			t.Errorf("TLSRPT_ADDRESS %s and TLSRPT_MAILDIR %s do not belong to REPORTS_DOMAIN %s (%s)", l.tlsrptAddress, l.tlsrptMaildir, rd.name, rd.maildir)
		}
	})
}

// testMXLabNonValidating: the second Unbound does not validate (no AD, the
// bogus zone answered) but passes every DNSSEC record through when asked
// with DO and CD: what the library's own validation needs from an upstream.
func testMXLabNonValidating(t *testing.T, l *mxLab) {
	t.Run("NoAD", func(t *testing.T) {
		t.Parallel()
		ctx := mxContext(t)
		r := &dane.Resolver{Servers: []string{l.nvResolver}}
		d := l.domain("DANE_DOMAIN")
		mx, err := r.LookupMX(ctx, d.name)
		if err != nil {
			t.Fatalf("LookupMX(%s) through the non-validating resolver: %v", d.name, err)
		}
		if mx.Status != dane.Insecure || len(mx.MX) != len(d.mx) || mx.MX[0].Host != d.mx[0] {
			t.Errorf("LookupMX(%s) = %v %v, want the records without AD (insecure)", d.name, mx.Status, mx.MX)
		}
		bogus := "bogus." + l.zone
		bmx, err := r.LookupMX(ctx, bogus)
		if err != nil || bmx.Status != dane.Insecure || len(bmx.MX) != 1 {
			t.Errorf("LookupMX(%s) through the non-validating resolver = %v, %v: want the records (nobody validates them)", bogus, bmx, err)
		}
	})
	t.Run("DNSSECRecords", func(t *testing.T) {
		t.Parallel()
		mx := l.host(l.domain("DANE_DOMAIN").mx[0])
		cases := []struct {
			name   string
			qtype  uint16
			rcode  int
			answer []uint16 // record types that must be in the answer section
			auth   []uint16 // and in the authority section
		}{
			{l.zone, dns.TypeDNSKEY, dns.RcodeSuccess, []uint16{dns.TypeDNSKEY, dns.TypeRRSIG}, nil},
			{l.daneZone, dns.TypeDNSKEY, dns.RcodeSuccess, []uint16{dns.TypeDNSKEY, dns.TypeRRSIG}, nil},
			{l.daneZone, dns.TypeDS, dns.RcodeSuccess, []uint16{dns.TypeDS, dns.TypeRRSIG}, nil},
			{l.daneZone, dns.TypeMX, dns.RcodeSuccess, []uint16{dns.TypeMX, dns.TypeRRSIG}, nil},
			{"_25._tcp." + mx.name, dns.TypeTLSA, dns.RcodeSuccess, []uint16{dns.TypeTLSA, dns.TypeRRSIG}, nil},
			{"nx." + l.daneZone, dns.TypeA, dns.RcodeNameError, nil, []uint16{dns.TypeSOA, dns.TypeNSEC3, dns.TypeRRSIG}},
			{"nx." + l.zone, dns.TypeA, dns.RcodeNameError, nil, []uint16{dns.TypeSOA, dns.TypeNSEC, dns.TypeRRSIG}},
			{mx.name, dns.TypeTXT, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC3, dns.TypeRRSIG}},
			{"bogus." + l.zone, dns.TypeMX, dns.RcodeSuccess, []uint16{dns.TypeMX, dns.TypeRRSIG}, nil},
		}
		c := &dns.Client{Timeout: mxCaseTimeout / 4}
		for _, tc := range cases {
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(tc.name), tc.qtype)
			q.SetEdns0(4096, true)
			q.CheckingDisabled = true
			resp, _, err := c.Exchange(q, l.nvResolver)
			if err != nil && resp != nil && resp.Truncated {
				resp, _, err = (&dns.Client{Net: "tcp", Timeout: c.Timeout}).Exchange(q, l.nvResolver)
			}
			what := tc.name + " " + dns.TypeToString[tc.qtype]
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			if resp.Rcode != tc.rcode || resp.AuthenticatedData {
				t.Errorf("%s: rcode %s, AD %v; want %s without AD", what, dns.RcodeToString[resp.Rcode], resp.AuthenticatedData, dns.RcodeToString[tc.rcode])
			}
			for _, want := range tc.answer {
				if !hasType(resp.Answer, want) {
					t.Errorf("%s: no %s in the answer section:\n%v", what, dns.TypeToString[want], resp)
				}
			}
			for _, want := range tc.auth {
				if !hasType(resp.Ns, want) {
					t.Errorf("%s: no %s in the authority section:\n%v", what, dns.TypeToString[want], resp)
				}
			}
		}
	})
	t.Run("UnsignedZone", func(t *testing.T) {
		t.Parallel()
		d := l.domain("STS_ENFORCE_DOMAIN")
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(d.name), dns.TypeMX)
		q.SetEdns0(4096, true)
		q.CheckingDisabled = true
		resp, _, err := (&dns.Client{Timeout: mxCaseTimeout / 4}).Exchange(q, l.nvResolver)
		if err != nil {
			t.Fatal(err)
		}
		if !hasType(resp.Answer, dns.TypeMX) || hasType(resp.Answer, dns.TypeRRSIG) {
			t.Errorf("%s MX through the non-validating resolver: want the MX records without signatures:\n%v", d.name, resp)
		}
	})
}

func hasType(rrs []dns.RR, t uint16) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == t })
}

// hostOf returns the host part of an address as a netip.Addr.
func hostOf(t *testing.T, addr string) netip.Addr {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
