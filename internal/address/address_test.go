package address

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in      string
		local   string
		domain  string
		encoded string
		utf8    bool
	}{
		{"user@example.com", "user", "example.com", "user@example.com", false},
		{"User.Name+tag@Example.COM", "User.Name+tag", "Example.COM", "User.Name+tag@example.com", false},
		{"a@b", "a", "b", "a@b", false},
		{"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~", "example.com", "!#$%&'*+-/=?^_`{|}~@example.com", false},
		{"1234567890@example.com", "1234567890", "example.com", "1234567890@example.com", false},
		{`"john doe"@example.com`, `"john doe"`, "example.com", `"john doe"@example.com`, false},
		{`"a@b"@example.com`, `"a@b"`, "example.com", `"a@b"@example.com`, false},
		{`"a\"b"@example.com`, `"a\"b"`, "example.com", `"a\"b"@example.com`, false},
		{`"a\\b"@example.com`, `"a\\b"`, "example.com", `"a\\b"@example.com`, false},
		{`"a..b."@example.com`, `"a..b."`, "example.com", `"a..b."@example.com`, false},
		{`""@example.com`, `""`, "example.com", `""@example.com`, false},
		{"user@[192.0.2.1]", "user", "[192.0.2.1]", "user@[192.0.2.1]", false},
		{"user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]", false},
		{"user@[ipv6:::ffff:192.0.2.1]", "user", "[ipv6:::ffff:192.0.2.1]", "user@[ipv6:::ffff:192.0.2.1]", false},
		{"user@sub-domain.example-1.com", "user", "sub-domain.example-1.com", "user@sub-domain.example-1.com", false},
		// STD-34, STD-95: U-label domains are sent as A-labels.
		{"user@b\u00fccher.example", "user", "b\u00fccher.example", "user@xn--bcher-kva.example", false},
		{"user@B\u00dcCHER.example", "user", "B\u00dcCHER.example", "user@xn--bcher-kva.example", false},
		{"user@xn--bcher-kva.example", "user", "xn--bcher-kva.example", "user@xn--bcher-kva.example", false},
		{"user@\u4f8b\u5b50.\u6d4b\u8bd5", "user", "\u4f8b\u5b50.\u6d4b\u8bd5", "user@xn--fsqu00a.xn--0zwm56d", false},
		// RFC 6531: UTF-8 local parts need SMTPUTF8; the domain never does.
		{"j\u00f6rg@example.com", "j\u00f6rg", "example.com", "j\u00f6rg@example.com", true},
		{"\u7528\u6237@\u4f8b\u5b50.\u6d4b\u8bd5", "\u7528\u6237", "\u4f8b\u5b50.\u6d4b\u8bd5", "\u7528\u6237@xn--fsqu00a.xn--0zwm56d", true},
		{"\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae", "\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae", "\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae", "\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@xn--hxajbheg2az3al.xn--jxalpdlp", true},
		{"\"j\u00f6rg smith\"@example.com", "\"j\u00f6rg smith\"", "example.com", "\"j\u00f6rg smith\"@example.com", true},
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64), "example.com", strings.Repeat("a", 64) + "@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if a.Local != tt.local || a.Domain != tt.domain {
				t.Errorf("Parse(%q) = %q @ %q, want %q @ %q", tt.in, a.Local, a.Domain, tt.local, tt.domain)
			}
			if a.String() != tt.in {
				t.Errorf("String() = %q, want %q", a.String(), tt.in)
			}
			enc, err := a.Encode()
			if err != nil || enc != tt.encoded {
				t.Errorf("Encode() = %q, %v; want %q", enc, err, tt.encoded)
			}
			if a.NeedsSMTPUTF8() != tt.utf8 {
				t.Errorf("NeedsSMTPUTF8() = %v", a.NeedsSMTPUTF8())
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		// Command injection.
		{"CRLF injection", "a@b.com>\r\nRCPT TO:<x@y.com"},
		{"LF injection", "a@b.com\nRCPT TO:<x@y.com>"},
		{"parameter injection", "a@b.com> SIZE=1"},
		{"angle brackets", "<a@b.com>"},
		{"closing bracket", "a@b.com>"},
		{"NUL at end", "a@b.com\x00"},
		{"NUL in local part", "a\x00b@b.com"},
		{"CR in quotes", "\"a\rb\"@b.com"},
		{"LF in quotes", "\"a\nb\"@b.com"},
		{"NUL in quotes", "\"a\x00b\"@b.com"},
		{"quoted CR", "\"a\\\rb\"@b.com"},
		{"tab in quotes", "\"a\tb\"@b.com"},
		{"DEL", "a\x7f@b.com"},
		{"ESC", "a\x1b[2J@b.com"},
		{"C1 control", "a\u0085@b.com"},
		{"C1 control in domain", "a@b\u009b.com"},
		{"angle bracket in quotes", "\"a>b\"@b.com"},
		{"angle bracket in quotes, space", "\"a> SIZE=1\"@b.com"},
		// Display names, comments, spaces.
		{"display name", "Alice <a@b.com>"},
		{"quoted display name", "\"Alice\" <a@b.com>"},
		{"comment", "a(comment)@b.com"},
		{"comment after domain", "a@b.com (Alice)"},
		{"leading space", " a@b.com"},
		{"trailing space", "a@b.com "},
		{"space in local part", "a b@b.com"},
		{"space before @", "a @b.com"},
		{"list", "a@b.com, c@d.com"},
		{"semicolon list", "a@b.com;c@d.com"},
		// Structure.
		{"empty", ""},
		{"no @", "ab.com"},
		{"only @", "@"},
		{"empty local part", "@b.com"},
		{"empty domain", "a@"},
		{"two @", "a@b@c.com"},
		{"@ after quoted part", "\"a\"@b@c.com"},
		{"source route", "@a.com:b@c.com"},
		{"leading dot", ".a@b.com"},
		{"trailing dot", "a.@b.com"},
		{"double dot", "a..b@b.com"},
		{"lone dot", ".@b.com"},
		{"unterminated quote", "\"abc@b.com"},
		{"text after quote", "\"a\"b@c.com"},
		{"quote inside dot-string", "a\"b\"@c.com"},
		{"backslash outside quotes", "a\\b@c.com"},
		{"brackets in local part", "a[b]@c.com"},
		{"comma in local part", "a,b@c.com"},
		{"colon in local part", "a:b@c.com"},
		{"local part too long", strings.Repeat("a", 65) + "@example.com"},
		{"quoted local part too long", "\"" + strings.Repeat("a", 63) + "\"@example.com"},
		{"UTF-8 local part too long", strings.Repeat("\u00e9", 33) + "@example.com"},
		{"invalid UTF-8", "a\xff@b.com"},
		{"invalid UTF-8 in quotes", "\"a\xff\"@b.com"},
		{"invalid UTF-8 in domain", "a@b\xff.com"},
		{"overlong UTF-8", "a\xc0\xae@b.com"},
		// Domains.
		{"domain trailing dot", "a@b.com."},
		{"domain leading dot", "a@.b.com"},
		{"domain double dot", "a@b..com"},
		{"domain underscore", "a@b_c.com"},
		{"domain space", "a@b c.com"},
		{"domain hyphen start", "a@-b.com"},
		{"domain hyphen end", "a@b-.com"},
		{"domain label too long", "a@" + strings.Repeat("x", 64) + ".com"},
		{"domain too long", "a@" + strings.Repeat("abcdefghi.", 26) + "com"},
		{"bad A-label", "a@xn--zz.example"},
		{"bare IPv4", "a@192.0.2.1"},
		{"bare IPv6", "a@2001:db8::1"},
		{"disallowed code point in domain", "a@ex\u2665ample\u00ad\u2028.com"},
		{"domain slash", "a@b.com/path"},
		// Address literals.
		{"IPv4 literal out of range", "a@[192.0.2.256]"},
		{"IPv4 literal leading zero", "a@[192.0.02.1]"},
		{"IPv4 literal short", "a@[192.0.2]"},
		{"IPv6 without tag", "a@[2001:db8::1]"},
		{"IPv4 with IPv6 tag", "a@[IPv6:192.0.2.1]"},
		{"IPv6 zone", "a@[IPv6:fe80::1%eth0]"},
		{"general literal", "a@[x400:foo]"},
		{"unterminated literal", "a@[192.0.2.1"},
		{"empty literal", "a@[]"},
		{"literal with text after", "a@[192.0.2.1]x"},
		{"literal with space", "a@[ 192.0.2.1]"},
		{"literal with CRLF", "a@[192.0.2.1\r\n]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.in, a)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q): %v does not match ErrInvalid", tt.in, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Address != tt.in || e.Reason == "" {
				t.Errorf("Parse(%q): error %#v", tt.in, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Errorf("error message %q has raw control characters", err.Error())
			}
			if a != (Address{}) {
				t.Errorf("Parse(%q) returned %q with an error", tt.in, a)
			}
		})
	}
}

func TestLengthLimits(t *testing.T) {
	l63, l61, l62 := strings.Repeat("a", 63), strings.Repeat("b", 61), strings.Repeat("c", 62)
	local64 := strings.Repeat("x", 64)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"254 octets", local64 + "@" + l63 + "." + l63 + "." + l61, true},
		{"255 octets", local64 + "@" + l63 + "." + l63 + "." + l62, false},
		{"253-octet domain, 255 in all", "a@" + l63 + "." + l63 + "." + l63 + "." + l61, false},
		{"254 octets with a quoted local part", "\"" + local64[:62] + "\"@" + l63 + "." + l63 + "." + l61, true},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Parse(%d octets): %v, want ok %v", tt.name, len(tt.in), err, tt.ok)
		}
	}

	// The limit also applies to the encoded form: a U-label domain can be
	// longer as A-labels.
	label := strings.Repeat("a", 50) + "\u00e9" // 52 octets; its A-label has 58
	a := Address{Local: strings.Repeat("x", 30), Domain: strings.Repeat(label+".", 4) + "com"}
	ascii, err := a.ASCIIDomain()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.String()) > 254 || len(a.Local)+1+len(ascii) <= 254 {
		t.Fatalf("test address does not grow past the limit: %d -> %d", len(a.String()), len(a.Local)+1+len(ascii))
	}
	if _, err := Parse(a.String()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse of an address of %d octets, %d encoded: %v, want ErrInvalid", len(a.String()), len(a.Local)+1+len(ascii), err)
	}
	if _, err := a.Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode: %v, want ErrInvalid", err)
	}
}

func TestEncodeValidates(t *testing.T) {
	tests := []Address{
		{Local: "a", Domain: "b.com>\r\nRCPT TO:<x@y.com"},
		{Local: "a>\r\nDATA", Domain: "b.com"},
		{Local: "a b", Domain: "b.com"},
		{Local: "", Domain: "b.com"},
		{Local: "a", Domain: ""},
		{Local: "a@b", Domain: "c.com"},
		{Local: "a", Domain: "b.com."},
		{Local: "a", Domain: "[1.2.3.4"},
	}
	for _, a := range tests {
		if enc, err := a.Encode(); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Encode(%q) = %q, %v; want ErrInvalid", a, enc, err)
		}
	}
}

// STD-34, STD-95: the A-label domain for DNS and policy lookups.
func TestASCIIDomain(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"a@Example.COM", "example.com"},
		{"a@b\u00fccher.example", "xn--bcher-kva.example"},
		{"a@XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"a@[192.0.2.1]", ""},
		{"a@[IPv6:2001:db8::1]", ""},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.ASCIIDomain()
		if err != nil || got != tt.want {
			t.Errorf("ASCIIDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, a := range []Address{{"a", "b..com"}, {"a", "[1.2.3]"}, {"a", ""}} {
		if _, err := a.ASCIIDomain(); !errors.Is(err, ErrInvalid) {
			t.Errorf("ASCIIDomain(%q): %v, want ErrInvalid", a, err)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Parse("a@b.com>\r\nRCPT TO:<x@y.com")
	want := `invalid email address "a@b.com>\r\nRCPT TO:<x@y.com": `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err, want)
	}
	_, err = Parse(strings.Repeat("a", 10000) + "@")
	if err == nil || len(err.Error()) > 500 {
		t.Errorf("error for a 10000-octet address is %d bytes long", len(err.Error()))
	}
}

func BenchmarkParseEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		a, err := Parse("first.last+tag@mail.example.com")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"user@example.com", `"john doe"@example.com`, `"a\"b"@x`, "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]",
		"j\u00f6rg@b\u00fccher.example", "a@b.com>\r\nRCPT TO:<x@y.com", "a@b.com> SIZE=1", "<a@b.com>",
		"a@b.com\x00", "a..b@c", "\"a\\", "@", "a@xn--bcher-kva.example", "a@\uff21.com", "a@b\u3002com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if a.String() != s {
			t.Fatalf("String() = %q, want %q", a.String(), s)
		}
		enc, err := a.Encode()
		if err != nil {
			t.Fatalf("Parse accepted %q but Encode fails: %v", s, err)
		}
		if len(enc) > maxAddress || !utf8.ValidString(enc) {
			t.Fatalf("Encode() = %q", enc)
		}
		inQuotes := false
		for i := 0; i < len(enc); i++ {
			c := enc[i]
			switch {
			case c == '\r' || c == '\n' || c == 0 || c == '<' || c == '>':
				t.Fatalf("Encode() = %q contains %q", enc, c)
			case c < 0x20 || c == 0x7f:
				t.Fatalf("Encode() = %q contains control %q", enc, c)
			case c == '\\' && inQuotes:
				i++
			case c == '"':
				inQuotes = !inQuotes
			case c == ' ' && !inQuotes:
				t.Fatalf("Encode() = %q has a space outside quotes", enc)
			}
		}
		b, err := Parse(enc)
		if err != nil {
			t.Fatalf("Encode() = %q does not parse: %v", enc, err)
		}
		enc2, err := b.Encode()
		if err != nil || enc2 != enc {
			t.Fatalf("Encode of %q = %q, %v; want %q", enc, enc2, err, enc)
		}
		if b.Local != a.Local || b.NeedsSMTPUTF8() != a.NeedsSMTPUTF8() {
			t.Fatalf("local part changed: %q -> %q", a.Local, b.Local)
		}
		if d, err := a.ASCIIDomain(); err != nil || !strings.HasSuffix(enc, "@"+d) && d != "" {
			t.Fatalf("ASCIIDomain() = %q, %v for %q", d, err, enc)
		}
	})
}

func TestParseEncodeMatchesEncode(t *testing.T) {
	for _, s := range []string{"a@example.com", "A.B@Example.COM", "user@bücher.example", `"a b"@example.com`, "x@[192.0.2.1]", "bad", "a@@b"} {
		a, w, err := ParseEncode(s)
		pa, perr := Parse(s)
		if (err == nil) != (perr == nil) {
			t.Errorf("%q: ParseEncode error %v, Parse error %v", s, err, perr)
			continue
		}
		if err != nil {
			continue
		}
		enc, _ := pa.Encode()
		if a != pa || w != enc {
			t.Errorf("%q: ParseEncode = %v, %q; Parse+Encode = %v, %q", s, a, w, pa, enc)
		}
	}
}
