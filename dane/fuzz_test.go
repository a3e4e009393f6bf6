package dane

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseTLSA checks that the presentation parser never panics and that
// what it accepts round-trips through String and the wire form.
func FuzzParseTLSA(f *testing.F) {
	for _, s := range []string{
		"3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
		"_25._tcp.mx.example.com. 3600 IN TLSA 2 0 1 ( 0DAA76425A1FC398C55A643D5A2485AE\n 4CC2B64B9515A75054722B2E83C31BBD )",
		"_443._tcp.www.example.com. IN TLSA ( 03 01 01 5978dd1d2d23e992075dc359d5dd14f7ef79748af97f2b7809c9ebfd6016c433 )",
		"3 1 1 ab ; comment",
		"255 255 255 00",
		"3 1",
		"x y z w",
		"TLSA 3 1 1 00",
		"3 1 1 0",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTLSA(s)
		if err != nil {
			return
		}
		_ = r.UnusableReason()
		again, err := ParseTLSA(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("%q parsed as %v, which re-parses as %v, %v", s, r, again, err)
		}
		w, err := ParseTLSAWire(r.AppendWire(nil))
		if err != nil || w.String() != r.String() {
			t.Fatalf("wire round trip of %v: %v, %v", r, w, err)
		}
	})
}

// FuzzParseTLSAWire checks the wire parser against the wire writer.
func FuzzParseTLSAWire(f *testing.F) {
	for _, b := range [][]byte{
		{3, 1, 1, 0xde, 0xad, 0xbe, 0xef},
		{2, 0, 0},
		{3, 1},
		nil,
		append([]byte{3, 1, 2}, make([]byte, 64)...),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseTLSAWire(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.AppendWire(nil), b) {
			t.Fatalf("%x parsed as %v, which writes as %x", b, r, r.AppendWire(nil))
		}
		if r.Usable() && r.UnusableReason() != "" {
			t.Fatal("Usable disagrees with UnusableReason")
		}
		p, err := ParseTLSA(r.String())
		if len(r.Data) > 0 && (err != nil || !bytes.Equal(p.AppendWire(nil), b)) {
			t.Fatalf("presentation round trip of %x: %v, %v", b, p, err)
		}
	})
}

// FuzzResponse feeds arbitrary DNS replies to the code that reads them:
// the CNAME walk, extended errors, TLSA and TXT extraction.
func FuzzResponse(f *testing.F) {
	seed := func(qname string, qtype uint16, rrs ...string) []byte {
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		m.SetEdns0(1232, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: 6, ExtraText: "bogus"})
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed("a.example.", dns.TypeTLSA, "a.example. CNAME b.example.", "b.example. TLSA 3 1 1 00112233"))
	f.Add(seed("a.example.", dns.TypeTXT, "a.example. TXT \"x\\\"y\" \"\\255z\""))
	f.Add(seed("a.example.", dns.TypeMX, "a.example. CNAME a.example.", "a.example. MX 0 ."))
	f.Add(seed("x.", dns.TypeA, "x. A 192.0.2.1", "y. A 192.0.2.2"))
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		qname, qtype := "example.", dns.TypeA
		if len(m.Question) > 0 {
			qname, qtype = m.Question[0].Name, m.Question[0].Qtype
		}
		final, links, rrs := follow(m, qname, qtype)
		if len(links) > maxChainLen+1 {
			t.Fatalf("%d links followed", len(links))
		}
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, final) {
				t.Fatalf("record %v not owned by %q", rr, final)
			}
		}
		_ = extendedErrors(m)
		_ = hasSOA(m.Ns)
		for _, rr := range m.Answer {
			switch v := rr.(type) {
			case *dns.TLSA:
				_ = fromRR(v).UnusableReason()
			case *dns.TXT:
				for _, s := range v.Txt {
					_ = unescapeTXT(s)
				}
			}
		}
	})
}

// FuzzNames checks name normalisation and matching, which read names from
// DNS and from server certificates.
func FuzzNames(f *testing.F) {
	for _, s := range [][2]string{
		{"*.example.com", "mx.example.com"},
		{"MX.Example.COM.", "mx.example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"_25._tcp.mx.example.com", "x"},
		{"m*.example.com", ""},
		{"*.", "."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, id, ref string) {
		if q, err := toQueryName(id); err == nil {
			if len(q) > 253 || strings.ToLower(q) != q {
				t.Fatalf("toQueryName(%q) = %q", id, q)
			}
			if again, err := toQueryName(q); err != nil || again != q {
				t.Fatalf("toQueryName not idempotent on %q: %q, %v", q, again, err)
			}
		}
		pat, ok := presentedID(id)
		if !ok {
			return
		}
		if strings.Contains(strings.TrimPrefix(pat, "*."), "*") {
			t.Fatalf("presentedID(%q) = %q keeps an inner wildcard", id, pat)
		}
		if matchPattern(pat, ref) && !strings.HasPrefix(pat, "*.") && pat != ref {
			t.Fatalf("%q matched %q", pat, ref)
		}
	})
}
