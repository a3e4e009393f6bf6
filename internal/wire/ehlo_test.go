package wire

import (
	"reflect"
	"strings"
	"testing"
)

func mustReply(t testing.TB, s string) *Reply {
	t.Helper()
	r, err := NewReader(strings.NewReader(s)).ReadReply()
	if err != nil {
		t.Fatalf("ReadReply(%q): %v", s, err)
	}
	return r
}

// STD-23: the capability list, PIPELINING included, is read exactly from the
// EHLO reply, case-insensitively.
func TestParseEHLO(t *testing.T) {
	domain, ext := ParseEHLO(mustReply(t, ehloReply))
	if domain != "mx.example.com" {
		t.Errorf("domain = %q", domain)
	}
	want := []string{"8BITMIME", "AUTH", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES", "PIPELINING",
		"REQUIRETLS", "SIZE", "SMTPUTF8", "STARTTLS"}
	if got := ext.Keywords(); !reflect.DeepEqual(got, want) {
		t.Errorf("Keywords() = %q, want %q (PIPE_CONNECT is not a valid keyword)", got, want)
	}
	if ext.Len() != len(want) {
		t.Errorf("Len() = %d", ext.Len())
	}
	for _, kw := range []string{"PIPELINING", "pipelining", "Starttls", "chunking"} {
		if !ext.Has(kw) {
			t.Errorf("Has(%q) = false", kw)
		}
	}
	for _, kw := range []string{"PIPE", "PIPE_CONNECT", "BINARYMIME", "", "AUTH PLAIN", "mx.example.com"} {
		if ext.Has(kw) {
			t.Errorf("Has(%q) = true", kw)
		}
	}
	if got := ext.Param("size"); got != "52428800" {
		t.Errorf("Param(size) = %q", got)
	}
	if got := ext.Param("PIPELINING"); got != "" {
		t.Errorf("Param(PIPELINING) = %q", got)
	}
	if n, ok := ext.MaxSize(); n != 52428800 || !ok {
		t.Errorf("MaxSize() = %d, %v", n, ok)
	}
	if got := ext.AuthMechanisms(); !reflect.DeepEqual(got, []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"}) {
		t.Errorf("AuthMechanisms() = %q", got)
	}
}

// STD-23
func TestParseEHLOLines(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string // after the greeting line
		params map[string]string
	}{
		{"keyword case", []string{"pipelining", "StartTLS"}, map[string]string{"PIPELINING": "", "STARTTLS": ""}},
		{"params", []string{"SIZE 100", "AUTH PLAIN LOGIN"}, map[string]string{"SIZE": "100", "AUTH": "PLAIN LOGIN"}},
		{"params keep case", []string{"X-FOO Bar baz"}, map[string]string{"X-FOO": "Bar baz"}},
		{"digit first", []string{"8BITMIME"}, map[string]string{"8BITMIME": ""}},
		{"hyphens", []string{"X-EXPS-2"}, map[string]string{"X-EXPS-2": ""}},
		{"trailing and double spaces", []string{"SIZE 100 ", "AUTH  PLAIN   LOGIN  "}, map[string]string{"SIZE": "100", "AUTH": "PLAIN LOGIN"}},
		{"old AUTH= form", []string{"AUTH=LOGIN PLAIN"}, map[string]string{"AUTH": "LOGIN PLAIN"}},
		{"both AUTH forms", []string{"AUTH PLAIN LOGIN", "AUTH=LOGIN"}, map[string]string{"AUTH": "PLAIN LOGIN LOGIN"}},
		{"old form first", []string{"auth=login", "AUTH PLAIN"}, map[string]string{"AUTH": "login PLAIN"}},
		{"duplicate keeps first", []string{"SIZE 100", "size 200"}, map[string]string{"SIZE": "100"}},
		{"leading hyphen skipped", []string{"-PIPELINING", "CHUNKING"}, map[string]string{"CHUNKING": ""}},
		{"underscore skipped", []string{"PIPE_CONNECT"}, map[string]string{}},
		{"empty line skipped", []string{"", "DSN"}, map[string]string{"DSN": ""}},
		{"leading space skipped", []string{" STARTTLS"}, map[string]string{}},
		{"tab skipped", []string{"SIZE\t100", "AUTH PLAIN\tLOGIN"}, map[string]string{}},
		{"control in param skipped", []string{"AUTH PLAIN\x00", "SIZE 1\x1b"}, map[string]string{}},
		{"non-ASCII skipped", []string{"STARTTLS\u00a0", "SIZE 1\xc3\xa9"}, map[string]string{}},
		{"CR in keyword skipped", []string{"STARTTLS\r"}, map[string]string{}},
		{"bare AUTH= skipped", []string{"AUTH="}, map[string]string{}},
		{"equals in other keyword skipped", []string{"SIZE=100"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reply{Code: 250, Lines: append([]string{"mx.example.com greets you"}, tt.lines...)}
			_, ext := ParseEHLO(r)
			got := map[string]string{}
			for _, kw := range ext.Keywords() {
				got[kw] = ext.Param(kw)
			}
			if !reflect.DeepEqual(got, tt.params) {
				t.Errorf("extensions %q, want %q", got, tt.params)
			}
		})
	}
}

func TestParseEHLOFirstLine(t *testing.T) {
	tests := []struct {
		reply  *Reply
		domain string
		n      int
	}{
		{&Reply{Code: 250, Lines: []string{"mx.example.com"}}, "mx.example.com", 0},
		{&Reply{Code: 250, Lines: []string{"mx.example.com Hello [192.0.2.1]", "STARTTLS"}}, "mx.example.com", 1},
		{&Reply{Code: 250, Lines: []string{"mx.example.com\tHello", "STARTTLS"}}, "mx.example.com", 1},
		{&Reply{Code: 250, Lines: []string{"", "STARTTLS"}}, "", 1},
		// The greeting line is never a capability.
		{&Reply{Code: 250, Lines: []string{"STARTTLS"}}, "STARTTLS", 0},
		{&Reply{Code: 502, Lines: []string{"mx.example.com", "STARTTLS"}}, "", 0},
		{&Reply{Code: 554, Lines: []string{"go away"}}, "", 0},
		{&Reply{Code: 250}, "", 0},
		{nil, "", 0},
	}
	for _, tt := range tests {
		domain, ext := ParseEHLO(tt.reply)
		if domain != tt.domain || ext.Len() != tt.n {
			t.Errorf("ParseEHLO(%v) = %q, %d extensions; want %q, %d", tt.reply, domain, ext.Len(), tt.domain, tt.n)
		}
	}
	var zero Extensions
	if zero.Has("STARTTLS") || zero.Len() != 0 || len(zero.Keywords()) != 0 || zero.AuthMechanisms() != nil || zero.Param("SIZE") != "" {
		t.Error("zero Extensions is not empty")
	}
	if _, ok := zero.MaxSize(); ok {
		t.Error("zero Extensions has SIZE")
	}
}

func TestExtensionsMaxSize(t *testing.T) {
	tests := []struct {
		line string
		n    int64
		ok   bool
	}{
		{"SIZE 10240000", 10240000, true},
		{"SIZE", 0, true},
		{"SIZE 0", 0, true},
		{"size 1", 1, true},
		{"SIZE 9223372036854775807", 9223372036854775807, true},
		{"SIZE 9223372036854775808", 0, false},
		{"SIZE -1", 0, false},
		{"SIZE +1", 0, false},
		{"SIZE 1e6", 0, false},
		{"SIZE 10 20", 0, false},
		{"SIZE 0x10", 0, false},
		{"X-SIZE 10", 0, false},
	}
	for _, tt := range tests {
		_, ext := ParseEHLO(&Reply{Code: 250, Lines: []string{"mx", tt.line}})
		n, ok := ext.MaxSize()
		if n != tt.n || ok != tt.ok {
			t.Errorf("%q: MaxSize() = %d, %v; want %d, %v", tt.line, n, ok, tt.n, tt.ok)
		}
	}
}

func TestExtensionsAuthMechanisms(t *testing.T) {
	tests := []struct {
		lines []string
		want  []string
	}{
		{[]string{"AUTH PLAIN LOGIN"}, []string{"PLAIN", "LOGIN"}},
		{[]string{"AUTH plain Login"}, []string{"PLAIN", "LOGIN"}},
		{[]string{"AUTH LOGIN PLAIN", "AUTH=LOGIN PLAIN"}, []string{"LOGIN", "PLAIN"}},
		{[]string{"AUTH=CRAM-MD5", "AUTH PLAIN"}, []string{"CRAM-MD5", "PLAIN"}},
		{[]string{"AUTH SCRAM-SHA-256-PLUS GSSAPI X_CUSTOM"}, []string{"SCRAM-SHA-256-PLUS", "GSSAPI", "X_CUSTOM"}},
		{[]string{"AUTH PLAIN THIS-NAME-IS-FAR-TOO-LONG-FOR-SASL BAD.NAME B@D"}, []string{"PLAIN"}},
		{[]string{"AUTH"}, nil},
		{[]string{"STARTTLS"}, nil},
	}
	for _, tt := range tests {
		_, ext := ParseEHLO(&Reply{Code: 250, Lines: append([]string{"mx"}, tt.lines...)})
		if got := ext.AuthMechanisms(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: AuthMechanisms() = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func BenchmarkParseEHLO(b *testing.B) {
	r := mustReply(b, ehloReply)
	b.ReportAllocs()
	for b.Loop() {
		_, ext := ParseEHLO(r)
		if !ext.Has("STARTTLS") {
			b.Fatal("no STARTTLS")
		}
	}
}

func FuzzParseEHLO(f *testing.F) {
	f.Add(ehloReply)
	f.Add("250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-auth plain\r\n250 SIZE\r\n")
	f.Add("250-mx\n250-  SIZE  1 \n250--X\n250 \n")
	f.Add("250 mx")
	f.Add("250-mx\r\n250-SIZE 99999999999999999999999\r\n250 X\x00Y\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := NewReader(strings.NewReader(s)).ReadReply()
		if err != nil {
			// Exercise the parser on lines a Reader would reject too.
			r = &Reply{Code: 250, Lines: strings.Split(s, "\n")}
		}
		domain, ext := ParseEHLO(r)
		if strings.ContainsAny(domain, " \t") {
			t.Fatalf("domain %q has blanks", domain)
		}
		kws := ext.Keywords()
		if len(kws) != ext.Len() {
			t.Fatalf("Keywords %d, Len %d", len(kws), ext.Len())
		}
		for i, kw := range kws {
			if !validKeyword(kw) || kw != strings.ToUpper(kw) {
				t.Fatalf("invalid keyword %q", kw)
			}
			if i > 0 && kws[i-1] >= kw {
				t.Fatalf("keywords not sorted and unique: %q", kws)
			}
			if !ext.Has(kw) || !ext.Has(strings.ToLower(kw)) {
				t.Fatalf("Has(%q) false", kw)
			}
			p := ext.Param(kw)
			if strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") || strings.Contains(p, "  ") {
				t.Fatalf("param %q not canonical", p)
			}
			for j := 0; j < len(p); j++ {
				if p[j] != ' ' && (p[j] < 33 || p[j] > 126) {
					t.Fatalf("param %q has %q", p, p[j])
				}
			}
		}
		seen := map[string]bool{}
		for _, m := range ext.AuthMechanisms() {
			if !validMech(m) || seen[m] {
				t.Fatalf("mechanism %q invalid or repeated", m)
			}
			seen[m] = true
		}
		if n, ok := ext.MaxSize(); n < 0 || (!ok && n != 0) {
			t.Fatalf("MaxSize() = %d, %v", n, ok)
		}
	})
}
