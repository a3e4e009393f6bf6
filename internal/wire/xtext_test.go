package wire

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckArg(t *testing.T) {
	tests := []struct {
		arg string
		ok  bool
	}{
		{"", true},
		{"<a@example.com>", true},
		{"SIZE=100 BODY=8BITMIME", true},
		{"caf\u00e9\t\x1b", true},
		{"a@b.com>\r\nRCPT TO:<x@y.com>", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"\r", false},
	}
	for _, tt := range tests {
		err := CheckArg(tt.arg)
		if (err == nil) != tt.ok {
			t.Errorf("CheckArg(%q) = %v", tt.arg, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Errorf("CheckArg(%q) = %v, want ErrBadCommand", tt.arg, err)
			}
			if strings.Contains(err.Error(), tt.arg) {
				t.Errorf("CheckArg(%q): the error repeats the argument, which may be a secret", tt.arg)
			}
		}
	}
}

// STD-22: the AUTH= (and ENVID, ORCPT) value is xtext.
func TestXText(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"user@example.com", "user@example.com"},
		{"a+b=c", "a+2Bb+3Dc"},
		{"<>", "<>"},
		{"two words", "two+20words"},
		{"caf\u00e9", "caf+C3+A9"},
		{"\r\n\x00\x7f", "+0D+0A+00+7F"},
		{"!~", "!~"},
		{"++", "+2B+2B"},
	}
	for _, tt := range tests {
		got := XText(tt.in)
		if got != tt.want {
			t.Errorf("XText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := DecodeXText(got)
		if err != nil || back != tt.in {
			t.Errorf("DecodeXText(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

func TestDecodeXText(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abc", "abc", true},
		{"+41+42", "AB", true},
		{"a+2Bb", "a+b", true},
		{"+", "", false},
		{"+4", "", false},
		{"a+2", "", false},
		{"+2b", "", false},
		{"+GG", "", false},
		{"a=b", "", false},
		{"a b", "", false},
		{"a\tb", "", false},
		{"a\r\nb", "", false},
		{"caf\u00e9", "", false},
		{"\x7f", "", false},
	}
	for _, tt := range tests {
		got, err := DecodeXText(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("DecodeXText(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadXText) {
			t.Errorf("DecodeXText(%q): %v does not match ErrBadXText", tt.in, err)
		}
	}
}

func TestUTF8AddrXText(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"user@example.com", "user@example.com"},
		{"a+b=c\\d", `a\x{2B}b\x{3D}c\x{5C}d`},
		{"caf\u00e9@example.com", `caf\x{E9}@example.com`},
		{"\u0100", `\x{100}`},
		{"\u4e2d\u6587@example.cn", `\x{4E2D}\x{6587}@example.cn`},
		{"\U0001F600@x", `\x{1F600}@x`},
		{"\U0010FFFF", `\x{10FFFF}`},
		{"\"a b\"@x", `"a\x{20}b"@x`},
		{"\x7f", `\x{7F}`},
	}
	for _, tt := range tests {
		got := UTF8AddrXText(tt.in)
		if got != tt.want {
			t.Errorf("UTF8AddrXText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in == "\x7f" {
			continue // encodable, but not part of an address, so not decoded
		}
		back, err := DecodeUTF8AddrXText(got)
		if err != nil || back != tt.in {
			t.Errorf("DecodeUTF8AddrXText(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
	if got := UTF8AddrXText("a\xffb"); got != `a\x{FFFD}b` {
		t.Errorf("invalid UTF-8 encoded as %q", got)
	}
}

func TestDecodeUTF8AddrXText(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"user@example.com", "user@example.com", true},
		{`caf\x{e9}@x`, "caf\u00e9@x", true},
		{`caf\x{E9}@x`, "caf\u00e9@x", true},
		{"caf\u00e9@x", "caf\u00e9@x", true}, // utf-8-addr-unitext
		{`\x{2B}`, "+", true},
		{`\x{10FFFF}`, "\U0010FFFF", true},
		{`\x{110000}`, "", false},
		{`\x{D800}`, "", false},
		{`\x{0D}\x{0A}`, "", false},
		{`\x{0}`, "", false},
		{`\x{1F}`, "", false},
		{`\x{}`, "", false},
		{`\x{1234567}`, "", false},
		{`\x{12`, "", false},
		{`\x12`, "", false},
		{`\y{12}`, "", false},
		{`\`, "", false},
		{`\x{G0}`, "", false},
		{"a+b", "", false},
		{"a=b", "", false},
		{"a b", "", false},
		{"a\r\nb", "", false},
		{"a\xffb", "", false},
	}
	for _, tt := range tests {
		got, err := DecodeUTF8AddrXText(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("DecodeUTF8AddrXText(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadXText) {
			t.Errorf("DecodeUTF8AddrXText(%q): %v does not match ErrBadXText", tt.in, err)
		}
	}
}

func FuzzXText(f *testing.F) {
	for _, s := range []string{"", "user@example.com", "a+b=c", "caf\u00e9", "\r\n\x00", `\x{41}`, "+2B", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x := XText(s)
		for i := 0; i < len(x); i++ {
			if x[i] < 33 || x[i] > 126 || x[i] == '=' {
				t.Fatalf("XText(%q) = %q has %q", s, x, x[i])
			}
		}
		back, err := DecodeXText(x)
		if err != nil || back != s {
			t.Fatalf("DecodeXText(XText(%q)) = %q, %v", s, back, err)
		}
		if d, err := DecodeXText(s); err == nil && strings.IndexByte(s, '+') < 0 && (d != s || XText(d) != s) {
			t.Fatalf("xtext without hexchars %q changed by a round trip", s)
		}

		u := UTF8AddrXText(s)
		for i := 0; i < len(u); i++ {
			if u[i] < 33 || u[i] > 126 || u[i] == '+' || u[i] == '=' {
				t.Fatalf("UTF8AddrXText(%q) = %q has %q", s, u, u[i])
			}
		}
		if d, err := DecodeUTF8AddrXText(u); utf8.ValidString(s) && !hasControl(s) {
			if err != nil || d != s {
				t.Fatalf("DecodeUTF8AddrXText(UTF8AddrXText(%q)) = %q, %v", s, d, err)
			}
		}
		if d, err := DecodeUTF8AddrXText(s); err == nil {
			if !utf8.ValidString(d) || hasControl(d) {
				t.Fatalf("DecodeUTF8AddrXText(%q) = %q", s, d)
			}
			if d2, err := DecodeUTF8AddrXText(UTF8AddrXText(d)); err != nil || d2 != d {
				t.Fatalf("re-encoding %q gives %q, %v", d, d2, err)
			}
		}
	})
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
