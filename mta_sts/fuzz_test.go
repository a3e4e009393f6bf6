package mtasts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
)

// vectorInputs returns the "input" strings of a vector file, or nothing when
// the shared vectors are not present (fuzz seeds are optional extras).
func vectorInputs(rel string) []string {
	data, err := os.ReadFile(filepath.Join("..", "..", "shared", "vectors", "mtasts", rel))
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "input" || k == "policy") {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;",
		"v=STSv1;id=a",
		"v=STSv1 ; id=abc ; ext=1",
		"v=STSv1; id=a;;",
		"v=STSv1",
		"v=STSv10; id=1",
		"v=STSv1; id=a; e=\xff",
		"v=STSv1;\tid=" + strings.Repeat("9", 32) + "\t;",
	} {
		f.Add(s)
	}
	for _, s := range vectorInputs("mox/mox-mtasts-vectors.json") {
		f.Add(s)
	}
	for _, s := range vectorInputs("foxcpp-go-mtasts/foxcpp-mtasts-vectors.json") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := ParseRecord(s)
		if err != nil {
			if ResultType(err) != rfc8460.STSPolicyFetchError {
				t.Fatalf("error %v has result type %q", err, ResultType(err))
			}
			return
		}
		if !validID(rec.ID) {
			t.Fatalf("accepted id %q", rec.ID)
		}
		if !txtrecord.HasVersion(s, "v=STSv1") {
			t.Fatalf("accepted %q, which the lookup filter drops", s)
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("%q -> %q does not round-trip: %+v, %v", s, rec.String(), again, err)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 86400\n",
		"version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmax_age: 1",
		"version: STSv1\nmode: none\nmax_age: 31557600\nx: y z",
		"version: STSv1\nmode: none\nmax_age: 31557601",
		"version: STSv1\nmode: enforce\nmx: xn--mller-kva.example\nmax_age: 1",
		"version: STSv1\nmode: enforce\nmx: müller.example\nmax_age: 1",
		"version: STSv1\n\nmode: none\nmax_age: 1",
		"version:STSv1\nmode:none\nmax_age:0\next:a\t",
	} {
		f.Add([]byte(s))
	}
	for _, s := range vectorInputs("mox/mox-mtasts-vectors.json") {
		f.Add([]byte(s))
	}
	for _, s := range vectorInputs("foxcpp-go-mtasts/foxcpp-mtasts-vectors.json") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if ResultType(err) != rfc8460.STSPolicyInvalid {
				t.Fatalf("error %v has result type %q", err, ResultType(err))
			}
			return
		}
		switch p.Mode {
		case ModeEnforce, ModeTesting:
			if len(p.MX) == 0 {
				t.Fatalf("mode %s without mx accepted", p.Mode)
			}
		case ModeNone:
		default:
			t.Fatalf("mode %q accepted", p.Mode)
		}
		if p.MaxAge < 0 || p.MaxAge > MaxMaxAge || p.MaxAge%time.Second != 0 {
			t.Fatalf("max_age %v accepted", p.MaxAge)
		}
		for _, mx := range p.MX {
			if msg := checkMXPattern(mx); msg != "" {
				t.Fatalf("mx %q accepted: %s", mx, msg)
			}
			host := strings.TrimPrefix(mx, "*.")
			if strings.HasPrefix(mx, "*.") {
				host = "x." + host
			}
			if len(host) <= 253 && !p.Match(host) {
				t.Fatalf("pattern %q does not match %q", mx, host)
			}
		}
		again, err := ParsePolicy([]byte(p.String()))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip of %q: %+v, %v", p.String(), again, err)
		}
	})
}

func FuzzPolicyMatch(f *testing.F) {
	f.Add("mx.example.com", "mx.example.com")
	f.Add("a.mx.example.com", "*.mx.example.com")
	f.Add("a.b.example.com", "*.example.com")
	f.Add("x.müller.example", "*.xn--mller-kva.example")
	f.Add("MX.EXAMPLE.COM.", "mx.example.com")
	f.Fuzz(func(t *testing.T, host, pattern string) {
		p := &Policy{MX: []string{pattern}}
		if !p.Match(host) {
			return
		}
		h, err := idn.ToASCII(host)
		if err != nil {
			t.Fatalf("invalid host %q matched %q", host, pattern)
		}
		base, wild := strings.CutPrefix(pattern, "*.")
		b, err := idn.ToASCII(base)
		if err != nil {
			t.Fatalf("invalid pattern %q matched %q", pattern, host)
		}
		if !wild && h != b {
			t.Fatalf("%q matched %q", host, pattern)
		}
		if wild {
			_, rest, _ := strings.Cut(h, ".")
			if rest != b {
				t.Fatalf("%q matched wildcard %q", host, pattern)
			}
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	e := &Entry{Domain: "example.com", ID: "1", FetchedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Policy: &Policy{Mode: ModeEnforce, MaxAge: time.Hour, MX: []string{"mx.example.com"}}}
	good, err := encodeEntry(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"format":1,"domain":"x","id":"1","fetched_at":"2025-01-01T00:00:00Z","policy":"version: STSv1\nmode: none\nmax_age: 1"}`))
	f.Add([]byte("{not json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		enc, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeEntry(enc)
		if err != nil || again.Domain != e.Domain || again.ID != e.ID || !again.FetchedAt.Equal(e.FetchedAt) || !reflect.DeepEqual(again.Policy, e.Policy) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}
