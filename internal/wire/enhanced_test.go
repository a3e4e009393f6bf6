package wire

import (
	"strings"
	"testing"
)

// STD-35: class.subject.detail at the start of the text.
func TestParseEnhancedCode(t *testing.T) {
	tests := []struct {
		text string
		code EnhancedCode
		rest string
		ok   bool
	}{
		{"5.7.8 Bad creds", EnhancedCode{5, 7, 8}, "Bad creds", true},
		{"2.0.0", EnhancedCode{2, 0, 0}, "", true},
		{"2.0.0 ", EnhancedCode{2, 0, 0}, "", true},
		{"4.7.0\tTLS not available", EnhancedCode{4, 7, 0}, "TLS not available", true},
		{"5.1.1   no such user", EnhancedCode{5, 1, 1}, "no such user", true},
		{"5.1.10 null MX", EnhancedCode{5, 1, 10}, "null MX", true},
		{"4.999.999 x", EnhancedCode{4, 999, 999}, "x", true},
		{"5.07.008 leading zeros", EnhancedCode{5, 7, 8}, "leading zeros", true},
		{"5.7.30 REQUIRETLS", EnhancedCode{5, 7, 30}, "REQUIRETLS", true},

		{"", EnhancedCode{}, "", false},
		{"Bad creds", EnhancedCode{}, "Bad creds", false},
		{"3.0.0 class 3", EnhancedCode{}, "3.0.0 class 3", false},
		{"1.0.0", EnhancedCode{}, "1.0.0", false},
		{"6.0.0", EnhancedCode{}, "6.0.0", false},
		{"0.0.0", EnhancedCode{}, "0.0.0", false},
		{"5.1000.1 subject too long", EnhancedCode{}, "5.1000.1 subject too long", false},
		{"5.1.1000 detail too long", EnhancedCode{}, "5.1.1000 detail too long", false},
		{"5.7", EnhancedCode{}, "5.7", false},
		{"5.7.", EnhancedCode{}, "5.7.", false},
		{"5..8", EnhancedCode{}, "5..8", false},
		{"5.7.8x", EnhancedCode{}, "5.7.8x", false},
		{"5.7.8.1", EnhancedCode{}, "5.7.8.1", false},
		{"5.7.8-", EnhancedCode{}, "5.7.8-", false},
		{"5.7.8:", EnhancedCode{}, "5.7.8:", false},
		{" 5.7.8", EnhancedCode{}, " 5.7.8", false},
		{"55.7.8", EnhancedCode{}, "55.7.8", false},
		{"5,7,8", EnhancedCode{}, "5,7,8", false},
		{"5.a.8", EnhancedCode{}, "5.a.8", false},
		{"5.7.\u0668", EnhancedCode{}, "5.7.\u0668", false},
	}
	for _, tt := range tests {
		code, rest, ok := ParseEnhancedCode(tt.text)
		if code != tt.code || rest != tt.rest || ok != tt.ok {
			t.Errorf("ParseEnhancedCode(%q) = %v, %q, %v; want %v, %q, %v", tt.text, code, rest, ok, tt.code, tt.rest, tt.ok)
		}
	}
}

func TestEnhancedCodeString(t *testing.T) {
	tests := []struct {
		code EnhancedCode
		want string
	}{
		{EnhancedCode{5, 7, 8}, "5.7.8"},
		{EnhancedCode{2, 0, 0}, "2.0.0"},
		{EnhancedCode{4, 999, 10}, "4.999.10"},
		{EnhancedCode{}, ""},
	}
	for _, tt := range tests {
		if got := tt.code.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.code, got, tt.want)
		}
		if tt.code.IsZero() != (tt.want == "") {
			t.Errorf("%#v.IsZero() = %v", tt.code, tt.code.IsZero())
		}
	}
}

// STD-36: an unknown subject or detail falls back to the class, X.0.0.
func TestEnhancedCodeNormalized(t *testing.T) {
	tests := []struct {
		code, want EnhancedCode
	}{
		{EnhancedCode{5, 7, 8}, EnhancedCode{5, 7, 8}},
		{EnhancedCode{4, 7, 0}, EnhancedCode{4, 7, 0}},
		{EnhancedCode{2, 0, 0}, EnhancedCode{2, 0, 0}},
		{EnhancedCode{5, 7, 99}, EnhancedCode{5, 0, 0}},
		{EnhancedCode{5, 7, 31}, EnhancedCode{5, 0, 0}},
		{EnhancedCode{4, 9, 1}, EnhancedCode{4, 0, 0}},
		{EnhancedCode{2, 6, 11}, EnhancedCode{2, 0, 0}},
		{EnhancedCode{5, 1, 11}, EnhancedCode{5, 0, 0}},
		{EnhancedCode{5, 0, 1}, EnhancedCode{5, 0, 0}},
		{EnhancedCode{4, 999, 999}, EnhancedCode{4, 0, 0}},
		{EnhancedCode{3, 7, 8}, EnhancedCode{}},
		{EnhancedCode{5, -1, 0}, EnhancedCode{5, 0, 0}},
		{EnhancedCode{}, EnhancedCode{}},
	}
	for _, tt := range tests {
		if got := tt.code.Normalized(); got != tt.want {
			t.Errorf("%v.Normalized() = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// STD-38: the security codes a client must tell apart are in the registry;
// STD-36: others are not.
func TestEnhancedCodeKnown(t *testing.T) {
	known := []string{
		"5.7.0", "4.7.0", "5.7.1", "5.7.4", "5.7.5", "5.7.8", "5.7.9", "5.7.10", "5.7.11", "4.7.12",
		"5.7.13", "5.7.27", "5.7.28", "5.7.29", "5.7.30", "5.6.7", "5.6.8", "5.6.9", "5.6.10", "2.7.0",
		"5.5.6", "5.1.1", "5.1.10", "4.2.2", "5.3.4", "4.4.7", "5.5.4", "2.0.0", "4.3.6", "5.6.6",
	}
	for _, s := range known {
		c, _, ok := ParseEnhancedCode(s)
		if !ok || !c.Known() || c.Description() == "" {
			t.Errorf("%s: Known() = false or no description", s)
		}
	}
	unknown := []string{"5.7.31", "5.8.0", "5.0.1", "5.1.11", "5.2.5", "5.3.7", "5.4.8", "5.5.7", "5.6.11", "4.99.0"}
	for _, s := range unknown {
		c, _, _ := ParseEnhancedCode(s)
		if c.Known() || c.Description() != "" {
			t.Errorf("%s: Known() = true", s)
		}
	}
	if (EnhancedCode{3, 7, 8}).Known() || (EnhancedCode{}).Known() {
		t.Error("code with invalid class is known")
	}
	if d := (EnhancedCode{5, 7, 30}).Description(); !strings.Contains(d, "REQUIRETLS") {
		t.Errorf("5.7.30: %q", d)
	}
}

func FuzzEnhancedCode(f *testing.F) {
	for _, s := range []string{"5.7.8 Bad creds", "2.0.0", "4.999.999\tx", "5.07.008", "5.1000.1", "3.0.0", "5.7.8x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		code, rest, ok := ParseEnhancedCode(text)
		if !ok {
			if !code.IsZero() || rest != text {
				t.Fatalf("failed parse returned %v, %q", code, rest)
			}
			return
		}
		if !validClass(code.Class) || code.Subject < 0 || code.Subject > 999 || code.Detail < 0 || code.Detail > 999 {
			t.Fatalf("code %v out of range", code)
		}
		if !strings.HasSuffix(text, rest) || strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t") {
			t.Fatalf("rest %q of %q", rest, text)
		}
		again, r2, ok := ParseEnhancedCode(code.String())
		if !ok || again != code || r2 != "" {
			t.Fatalf("String() %q does not parse back", code.String())
		}
		n := code.Normalized()
		if n.Class != code.Class || !(n == code || n.Subject == 0 && n.Detail == 0) || !n.Known() {
			t.Fatalf("Normalized(%v) = %v", code, n)
		}
		rep := &Reply{Code: code.Class*100 + 50, Lines: []string{text}}
		if got, ok := rep.EnhancedCode(); !ok || got != code {
			t.Fatalf("Reply.EnhancedCode() = %v, %v", got, ok)
		}
	})
}
