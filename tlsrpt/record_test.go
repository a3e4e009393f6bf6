package tlsrpt

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

// STD-85: the TXT record grammar of RFC 8460 §3.
func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		ruas []string // nil = invalid
		exts []Extension
	}{
		{in: "v=TLSRPTv1;rua=mailto:reports@example.com", ruas: []string{"mailto:reports@example.com"}},
		{in: "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", ruas: []string{"https://reporting.example.com/v1/tlsrpt"}},
		{in: "v=TLSRPTv1 ;\trua=mailto:a@example.com ;", ruas: []string{"mailto:a@example.com"}},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com,https://c.example/r", ruas: []string{"mailto:a@example.com", "https://c.example/r"}},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com \t,\t https://c.example/r \t", ruas: []string{"mailto:a@example.com", "https://c.example/r"}},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", ruas: []string{"mailto:a@example.com", "mailto:b@example.com"}},
		{in: "v=TLSRPTv1; ext=1; rua=mailto:a@example.com", ruas: []string{"mailto:a@example.com"}, exts: []Extension{{"ext", "1"}}},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; x_y-z.1=v!al~ue", ruas: []string{"mailto:a@example.com"}, exts: []Extension{{"x_y-z.1", "v!al~ue"}}},
		{in: "v=TLSRPTv1; rua=mailto:a%2Bb@example.com", ruas: []string{"mailto:a%2Bb@example.com"}},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com?subject=x", ruas: []string{"mailto:a@example.com?subject=x"}},
		{in: "v=TLSRPTv1; rua=HTTPS://c.example:8443/r?x=1#f", ruas: []string{"HTTPS://c.example:8443/r?x=1#f"}},
		{in: "v=TLSRPTv1; rua=https://[2001:db8::1]/r", ruas: []string{"https://[2001:db8::1]/r"}},
		// Other schemes are URIs; they are kept, and skipped when sending.
		{in: "v=TLSRPTv1; rua=http://c.example/r", ruas: []string{"http://c.example/r"}},

		{in: ""},
		{in: "v=TLSRPTv1"},
		{in: "v=TLSRPTv1;"},
		{in: "v=TLSRPTv1; ext=1"}, // no rua
		{in: "v=TLSRPTv2; rua=mailto:a@example.com"},     // version
		{in: "v=tlsrptv1; rua=mailto:a@example.com"},     // case-sensitive
		{in: "V=TLSRPTv1; rua=mailto:a@example.com"},     //
		{in: " v=TLSRPTv1; rua=mailto:a@example.com"},    // v= first
		{in: "rua=mailto:a@example.com; v=TLSRPTv1"},     //
		{in: "v=TLSRPTv1 rua=mailto:a@example.com"},      // no delimiter
		{in: "v=TLSRPTv1; RUA=mailto:a@example.com"},     // rua is case-sensitive: an extension, so no rua
		{in: "v=TLSRPTv1; rua=mailto:a@example.com;;"},   // second trailing ";"
		{in: "v=TLSRPTv1;; rua=mailto:a@example.com"},    // empty field
		{in: "v=TLSRPTv1; rua=mailto:a@example.com, "},   // empty URI after ","
		{in: "v=TLSRPTv1; rua=,mailto:a@example.com"},    //
		{in: "v=TLSRPTv1; rua = mailto:a@example.com"},   // no WSP around "="
		{in: "v=TLSRPTv1; rua=mailto:a@example.com x"},   // trailing characters
		{in: "v=TLSRPTv1; rua=mailto:a@b.example!10m"},   // "!" must be encoded
		{in: "v=TLSRPTv1; rua=mailto:"},                  // no address
		{in: "v=TLSRPTv1; rua=mailto:not-an-address"},    //
		{in: "v=TLSRPTv1; rua=mailto:a@b%2Cc@d.example"}, // two addresses
		{in: "v=TLSRPTv1; rua=https:/path-only"},         // no host
		{in: "v=TLSRPTv1; rua=https://a..b/"},            // bad host
		{in: "v=TLSRPTv1; rua=https://c.example/%zz"},    // bad percent-encoding
		{in: "v=TLSRPTv1; rua=https://c.example/\x7f"},   // control character
		{in: "v=TLSRPTv1; rua=https://c.example/é"},      // non-ASCII
		{in: "v=TLSRPTv1; rua=1http://c.example/"},       // scheme starts with a letter
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; e"},  // extension without "="
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; -e=1"},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; e=a=b"},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; e=\x01"},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; e=" + strings.Repeat("x", maxRecordLen)},
	}
	for _, tt := range tests {
		rec, err := ParseRecord(tt.in)
		if tt.ruas == nil {
			if err == nil {
				t.Errorf("ParseRecord(%q) = %+v, want an error", tt.in, rec)
				continue
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrRecordSyntax) {
				t.Errorf("ParseRecord(%q) error %v is not a *SyntaxError matching ErrRecordSyntax", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(rec.RUAs, tt.ruas) || !reflect.DeepEqual(rec.Extensions, tt.exts) {
			t.Errorf("ParseRecord(%q) = %q %v, want %q %v", tt.in, rec.RUAs, rec.Extensions, tt.ruas, tt.exts)
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Errorf("ParseRecord(%q).String() = %q does not parse back: %+v, %v", tt.in, rec.String(), again, err)
		}
	}
}

// STD-85: mox's valid and invalid records give the same verdict here.
func TestRecordVectorsMox(t *testing.T) {
	var v struct {
		Valid []struct {
			Input    string `json:"input"`
			ExpectGo string `json:"expect_go"`
		} `json:"valid"`
		Invalid []struct {
			Input string `json:"input"`
			Note  string `json:"note"`
		} `json:"invalid"`
	}
	if err := json.Unmarshal(readVector(t, "mox/tlsrpt-record-vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.Valid {
		rec, err := ParseRecord(c.Input)
		if err != nil {
			t.Errorf("valid %q: %v", c.Input, err)
			continue
		}
		// Every URI of the expected struct literal is in the record, in order.
		want := strings.Count(c.ExpectGo, `"mailto:`) + strings.Count(c.ExpectGo, `"https:`)
		if len(rec.RUAs) != want {
			t.Errorf("valid %q: %d URIs %q, mox has %d (%s)", c.Input, len(rec.RUAs), rec.RUAs, want, c.ExpectGo)
		}
		for _, u := range rec.RUAs {
			if !strings.Contains(c.ExpectGo, `"`+u+`"`) {
				t.Errorf("valid %q: URI %q not in mox's %s", c.Input, u, c.ExpectGo)
			}
		}
		if strings.Contains(c.ExpectGo, "Extensions") != (len(rec.Extensions) > 0) {
			t.Errorf("valid %q: extensions %v, mox has %s", c.Input, rec.Extensions, c.ExpectGo)
		}
	}
	for _, c := range v.Invalid {
		if rec, err := ParseRecord(c.Input); err == nil {
			t.Errorf("invalid %q (%s) parsed as %+v", c.Input, c.Note, rec)
		}
	}
	t.Logf("%d valid and %d invalid records from mox", len(v.Valid), len(v.Invalid))
}

// STD-85: discovery at _smtp._tls.<domain>, A-labels, absolute name; other
// records dropped; not exactly one record means no reporting.
func TestLookupRecord(t *testing.T) {
	const good = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
	servfail := &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	tests := []struct {
		name   string
		domain string
		query  string
		txt    []string
		fail   error
		want   error // nil = found
	}{
		{"one record", "example.com", "_smtp._tls.example.com.", []string{good}, nil, nil},
		{"upper case and trailing dot", "Example.COM.", "_smtp._tls.example.com.", []string{good}, nil, nil},
		{"U-label", "bücher.example", "_smtp._tls.xn--bcher-kva.example.", []string{good}, nil, nil},
		{"others dropped", "example.com", "_smtp._tls.example.com.", []string{"v=spf1 -all", good, "v=TLSRPTv10; rua=mailto:x@y.example"}, nil, nil},
		{"none", "example.com", "_smtp._tls.example.com.", nil, nil, ErrNoRecord},
		{"only others", "example.com", "_smtp._tls.example.com.", []string{"v=spf1 -all"}, nil, ErrNoRecord},
		{"two", "example.com", "_smtp._tls.example.com.", []string{good, good + "; x=1"}, nil, ErrMultipleRecords},
		{"invalid", "example.com", "_smtp._tls.example.com.", []string{"v=TLSRPTv1; rua=nowhere"}, nil, ErrRecordSyntax},
		{"bare version is parsed and rejected", "example.com", "_smtp._tls.example.com.", []string{"v=TLSRPTv1"}, nil, ErrRecordSyntax},
		{"servfail", "example.com", "_smtp._tls.example.com.", nil, servfail, ErrDNS},
		{"IP literal", "192.0.2.1", "", nil, nil, ErrInvalidDomain},
		{"empty", "", "", nil, nil, ErrInvalidDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeResolver{}
			if tt.txt != nil {
				r.set(tt.query, tt.txt...)
			}
			if tt.fail != nil {
				r.setFail(tt.query, tt.fail)
			}
			rec, err := LookupRecord(context.Background(), r, tt.domain)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(rec.RUAs, []string{"mailto:tlsrpt@example.com"}) {
					t.Errorf("RUAs = %q", rec.RUAs)
				}
			} else {
				var e *Error
				if !errors.Is(err, tt.want) || !errors.As(err, &e) {
					t.Fatalf("error %v, want an *Error matching %v", err, tt.want)
				}
			}
			if tt.query != "" && !reflect.DeepEqual(r.queries, []string{tt.query}) {
				t.Errorf("queried %q, want %q", r.queries, tt.query)
			}
			if tt.query == "" && len(r.queries) != 0 {
				t.Errorf("queried %q for an invalid domain", r.queries)
			}
		})
	}
}

// STD-85: *net.Resolver is a TXTResolver, and its answers (records split
// into several strings, NXDOMAIN, SERVFAIL) mean what LookupRecord says.
func TestLookupRecordNetResolver(t *testing.T) {
	srv := dnstest.New(t)
	srv.MustAdd(
		`_smtp._tls.split.example. TXT "v=TLSRPTv1; rua=mailto:tls" "rpt@split.example"`,
		`_smtp._tls.two.example. TXT "v=TLSRPTv1; rua=mailto:a@two.example"`,
		`_smtp._tls.two.example. TXT "v=TLSRPTv1; rua=mailto:b@two.example"`,
		`other.nodata.example. TXT "x"`,
	)
	srv.SetName("_smtp._tls.broken.example", dnstest.Rule{Mode: dnstest.ServFail})
	var r TXTResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.Addr)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, err := LookupRecord(ctx, r, "split.example")
	if err != nil || !reflect.DeepEqual(rec.RUAs, []string{"mailto:tlsrpt@split.example"}) {
		t.Errorf("split strings: %+v, %v", rec, err)
	}
	for domain, want := range map[string]error{
		"two.example":    ErrMultipleRecords,
		"absent.example": ErrNoRecord,
		"nodata.example": ErrNoRecord,
		"broken.example": ErrDNS,
	} {
		if _, err := LookupRecord(ctx, r, domain); !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", domain, err, want)
		}
	}
}

func TestRecordName(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":    "_smtp._tls.example.com.",
		"EXAMPLE.com.":   "_smtp._tls.example.com.",
		"bücher.example": "_smtp._tls.xn--bcher-kva.example.",
	} {
		if got, err := RecordName(in); err != nil || got != want {
			t.Errorf("RecordName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a..b", "[192.0.2.1]", "192.0.2.1"} {
		if got, err := RecordName(in); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("RecordName(%q) = %q, %v; want ErrInvalidDomain", in, got, err)
		}
	}
}
