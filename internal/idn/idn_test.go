package idn

import (
	"errors"
	"strings"
	"testing"
)

// STD-34, STD-95: names are converted to A-labels before use; invalid ones are rejected.
func TestToASCII(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.Example.COM.", "mx.example.com", true},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"BÜCHER.example", "xn--bcher-kva.example", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example", true},
		{"r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", true},
		{"faß.de", "xn--fa-hia.de", true}, // non-transitional: ß is kept
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"-a.example", "", false},
		{"a-.example", "", false},
		{"a_b.example", "", false},
		{"a b.example", "", false},
		{"127.0.0.1", "", false},
		{"::1", "", false},
		{"xn--zz.example", "", false}, // undecodable punycode
		{"xn--a.example", "", false},  // decodes to a non-IDN label: no round trip
		{"a\x00b.example", "", false},
		{"mx.example.com\r\nRCPT", "", false},
		{strings.Repeat("a", 64) + ".example", "", false},
		{strings.Repeat("a.", 127) + "ab", "", false},
	}
	for _, c := range cases {
		got, err := ToASCII(c.in)
		if c.ok != (err == nil) {
			t.Errorf("ToASCII(%q) = %q, %v; want ok=%v", c.in, got, err, c.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ToASCII(%q) error %v is not ErrInvalid", c.in, err)
		}
		if c.ok && got != c.want {
			t.Errorf("ToASCII(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// STD-96: names compare as A-labels, case-insensitively.
func TestEqual(t *testing.T) {
	if !Equal("Bücher.Example.", "xn--bcher-kva.example") {
		t.Error("U-label and A-label forms should be equal")
	}
	if Equal("a.example", "b.example") || Equal("", "") {
		t.Error("different or invalid names compared equal")
	}
	if got := ToUnicode("xn--bcher-kva.example"); got != "bücher.example" {
		t.Errorf("ToUnicode = %q", got)
	}
}

func FuzzToASCII(f *testing.F) {
	for _, s := range []string{"mx.example.com", "bücher.example", "xn--bcher-kva.example", "a..b", "xn--a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ToASCII(s)
		if err != nil {
			return
		}
		if !IsASCII(a) || checkLDH(a) != "" || a != strings.ToLower(a) {
			t.Fatalf("ToASCII(%q) = %q is not a lower-case LDH name", s, a)
		}
		again, err := ToASCII(a)
		if err != nil || again != a {
			t.Fatalf("ToASCII is not idempotent on %q: %q, %v", a, again, err)
		}
	})
}
