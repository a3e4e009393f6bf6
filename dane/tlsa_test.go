package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// STD-77: presentation form: usage, selector, matching type, then hex that
// may contain white space.
func TestParseTLSA(t *testing.T) {
	d32 := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want TLSA
	}{
		{"3 1 1 " + d32, TLSA{3, 1, 1, mustHex(d32)}},
		{"3 1 1 " + strings.ToUpper(d32), TLSA{3, 1, 1, mustHex(d32)}},
		{"  2 0 0   30 82\t01 0a\n", TLSA{2, 0, 0, []byte{0x30, 0x82, 0x01, 0x0a}}},
		{"03 01 01 " + d32, TLSA{3, 1, 1, mustHex(d32)}},
		{"_25._tcp.mx.example.com. IN TLSA 3 1 1 " + d32, TLSA{3, 1, 1, mustHex(d32)}},
		{"_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 " + d32, TLSA{3, 1, 1, mustHex(d32)}},
		{"_25._tcp.mx.example.com. tlsa 3 1 1 " + d32, TLSA{3, 1, 1, mustHex(d32)}},
		{"_443._tcp.www.example.com. IN TLSA ( 03 01 01 " + d32[:20] + "\n " + d32[20:] + " )", TLSA{3, 1, 1, mustHex(d32)}},
		{"3 1 1 " + d32 + " ; a comment", TLSA{3, 1, 1, mustHex(d32)}},
		{"255 255 255 00", TLSA{255, 255, 255, []byte{0}}},
	}
	for _, tc := range tests {
		got, err := ParseTLSA(tc.in)
		if err != nil {
			t.Errorf("ParseTLSA(%q): %v", tc.in, err)
			continue
		}
		if got.Usage != tc.want.Usage || got.Selector != tc.want.Selector || got.MatchingType != tc.want.MatchingType || !bytes.Equal(got.Data, tc.want.Data) {
			t.Errorf("ParseTLSA(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// STD-77: malformed presentation forms are errors.
func TestParseTLSAErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"3 1 1",
		"3 1",
		"x 1 1 00",
		"3 -1 1 00",
		"256 1 1 00",
		"3 1 1 0g",
		"3 1 1 abc",
		"TLSA 3 1 1 00",
		"a b c d TLSA 3 1 1 00",
		"_25._tcp.example.com. IN A 192.0.2.1",
		"3 1 1 " + strings.Repeat("00", maxTLSAData+1),
		strings.Repeat(" ", maxTLSAText+1),
	} {
		if got, err := ParseTLSA(in); err == nil {
			t.Errorf("ParseTLSA(%.40q) = %v, want an error", in, got)
		}
	}
}

// STD-77: wire form.
func TestParseTLSAWire(t *testing.T) {
	if _, err := ParseTLSAWire([]byte{3, 1}); err == nil {
		t.Error("two octets accepted")
	}
	r, err := ParseTLSAWire([]byte{3, 1, 1, 0xde, 0xad})
	if err != nil {
		t.Fatal(err)
	}
	if r.Usage != DANEEE || r.Selector != SelectorSPKI || r.MatchingType != MatchSHA256 || !bytes.Equal(r.Data, []byte{0xde, 0xad}) {
		t.Errorf("got %v", r)
	}
	if w := r.AppendWire(nil); !bytes.Equal(w, []byte{3, 1, 1, 0xde, 0xad}) {
		t.Errorf("AppendWire = %x", w)
	}
	r, err = ParseTLSAWire([]byte{2, 0, 0})
	if err != nil || len(r.Data) != 0 || r.Usable() {
		t.Errorf("empty data: %v, %v, usable %v", r, err, r.Usable())
	}
	if _, err := ParseTLSAWire(make([]byte, 3+maxTLSAData+1)); err == nil {
		t.Error("oversized RDATA accepted")
	}
}

// STD-75, STD-76: only DANE-TA(2) and DANE-EE(3) with a known selector and
// matching type and a digest of the right length are usable for SMTP.
func TestUsable(t *testing.T) {
	d32, d64 := make([]byte, 32), make([]byte, 64)
	tests := []struct {
		r      TLSA
		usable bool
		reason string
	}{
		{TLSA{3, 1, 1, d32}, true, ""},
		{TLSA{3, 0, 1, d32}, true, ""},
		{TLSA{2, 1, 2, d64}, true, ""},
		{TLSA{2, 0, 0, []byte{0x30}}, true, ""},
		{TLSA{3, 1, 0, []byte{0x30}}, true, ""},
		{TLSA{0, 1, 1, d32}, false, "PKIX-TA(0) is not used for SMTP"},
		{TLSA{1, 1, 1, d32}, false, "PKIX-EE(1) is not used for SMTP"},
		{TLSA{4, 1, 1, d32}, false, "unknown certificate usage 4"},
		{TLSA{255, 1, 1, d32}, false, "unknown certificate usage"},
		{TLSA{3, 2, 1, d32}, false, "unknown selector 2"},
		{TLSA{3, 1, 3, d32}, false, "unknown matching type 3"},
		{TLSA{3, 1, 255, d32}, false, "unknown matching type"},
		{TLSA{3, 1, 1, d32[:31]}, false, "SHA2-256(1) data is 31 octets, not 32"},
		{TLSA{3, 1, 1, append(d32, 0)}, false, "33 octets"},
		{TLSA{3, 1, 2, d32}, false, "SHA2-512(2) data is 32 octets, not 64"},
		{TLSA{2, 1, 2, append(d64, 0)}, false, "65 octets"},
		{TLSA{3, 1, 0, nil}, false, "empty association data"},
		{TLSA{3, 1, 1, nil}, false, "0 octets"},
	}
	for _, tc := range tests {
		reason := tc.r.UnusableReason()
		if tc.r.Usable() != tc.usable || !strings.Contains(reason, tc.reason) || (tc.usable && reason != "") {
			t.Errorf("%v: usable %v (%q), want %v (%q)", tc.r.short(), tc.r.Usable(), reason, tc.usable, tc.reason)
		}
	}
}

func TestNames(t *testing.T) {
	tests := map[string]string{
		PKIXTA.String():          "PKIX-TA(0)",
		PKIXEE.String():          "PKIX-EE(1)",
		DANETA.String():          "DANE-TA(2)",
		DANEEE.String():          "DANE-EE(3)",
		Usage(9).String():        "usage(9)",
		SelectorCert.String():    "Cert(0)",
		SelectorSPKI.String():    "SPKI(1)",
		Selector(7).String():     "selector(7)",
		MatchFull.String():       "Full(0)",
		MatchSHA256.String():     "SHA2-256(1)",
		MatchSHA512.String():     "SHA2-512(2)",
		MatchingType(5).String(): "mtype(5)",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	r := TLSA{3, 1, 1, []byte{0xAB, 0xCD}}
	if r.String() != "3 1 1 abcd" {
		t.Errorf("String() = %q", r.String())
	}
}

// STD-77: selector 0 is the DER certificate, 1 the DER SPKI; matching type
// 0 exact, 1 SHA2-256, 2 SHA2-512.
func TestNewTLSAAndMatches(t *testing.T) {
	l, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cert
	s256 := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	c512 := sha512.Sum512(c.Raw)
	tests := []struct {
		s    Selector
		m    MatchingType
		want []byte
	}{
		{SelectorCert, MatchFull, c.Raw},
		{SelectorSPKI, MatchFull, c.RawSubjectPublicKeyInfo},
		{SelectorSPKI, MatchSHA256, s256[:]},
		{SelectorCert, MatchSHA512, c512[:]},
	}
	for _, tc := range tests {
		r := rec(t, c, DANEEE, tc.s, tc.m)
		if !bytes.Equal(r.Data, tc.want) {
			t.Errorf("%v %v: data %x, want %x", tc.s, tc.m, r.Data, tc.want)
		}
		if !r.Matches(c) {
			t.Errorf("%v does not match its own certificate", r.short())
		}
		r.Data[len(r.Data)-1] ^= 1
		if r.Matches(c) {
			t.Errorf("%v matches after a bit flip", r.short())
		}
	}
	if _, err := NewTLSA(c, DANEEE, 2, MatchSHA256); err == nil {
		t.Error("selector 2 accepted")
	}
	if _, err := NewTLSA(c, DANEEE, SelectorSPKI, 3); err == nil {
		t.Error("matching type 3 accepted")
	}
	if _, err := NewTLSA(nil, DANEEE, SelectorSPKI, MatchSHA256); err == nil {
		t.Error("nil certificate accepted")
	}
	if (TLSA{3, 1, 1, s256[:]}).Matches(nil) {
		t.Error("a nil certificate matched")
	}
}

// STD-82: per usage and selector only the strongest digest is kept; Full(0)
// is not a digest and always stays.
func TestAgile(t *testing.T) {
	d32, d64 := make([]byte, 32), make([]byte, 64)
	in := []TLSA{
		{3, 1, 1, d32},
		{3, 1, 2, d64},
		{3, 1, 0, []byte{1}},
		{3, 0, 1, d32},
		{2, 1, 1, d32},
		{2, 1, 1, d32},
		{2, 0, 2, d64},
		{2, 0, 0, []byte{2}},
	}
	var got []string
	for _, r := range agile(in) {
		got = append(got, r.short())
	}
	want := []string{"3 1 2 " + strings.Repeat("0", 16) + "…", "3 1 0 01", "3 0 1 " + strings.Repeat("0", 16) + "…",
		"2 1 1 " + strings.Repeat("0", 16) + "…", "2 1 1 " + strings.Repeat("0", 16) + "…", "2 0 2 " + strings.Repeat("0", 16) + "…", "2 0 0 02"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("agile =\n%v\nwant\n%v", got, want)
	}
}
