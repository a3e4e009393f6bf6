package tlsrpt

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// vectorStrings returns the "input" strings of a shared vector file, or
// nothing when the vectors are absent (they are optional fuzz seeds).
func vectorStrings(rel string) []string {
	var v struct {
		Valid   []struct{ Input string } `json:"valid"`
		Invalid []struct{ Input string } `json:"invalid"`
	}
	data := readVectorQuiet(rel)
	if data == nil || json.Unmarshal(data, &v) != nil {
		return nil
	}
	var out []string
	for _, c := range v.Valid {
		out = append(out, c.Input)
	}
	for _, c := range v.Invalid {
		out = append(out, c.Input)
	}
	return out
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
		"v=TLSRPTv1;rua=https://r.example/x,mailto:a@b.example;",
		"v=TLSRPTv1 ; rua=mailto:a@b.example ; rua=https://[::1]/r ; e=1",
		"v=TLSRPTv1; rua=mailto:a%40b@c.example?subject=x",
		"v=TLSRPTv1; rua=x:y",
		"v=TLSRPTv1; rua=mailto:a@b.example;;",
		"v=TLSRPTv1",
		"v=TLSRPTv10; rua=mailto:a@b.example",
	} {
		f.Add(s)
	}
	for _, s := range vectorStrings("mox/tlsrpt-record-vectors.json") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := ParseRecord(s)
		if err != nil {
			if !errors.Is(err, ErrRecordSyntax) {
				t.Fatalf("error %v does not match ErrRecordSyntax", err)
			}
			return
		}
		if !isTLSRPTv1Record(s) {
			t.Fatalf("accepted %q, which discovery drops", s)
		}
		if len(rec.RUAs) == 0 {
			t.Fatalf("accepted %q without a reporting URI", s)
		}
		for _, u := range rec.RUAs {
			if err := checkRUA(u); err != nil || strings.ContainsAny(u, " \t,;!") {
				t.Fatalf("accepted URI %q: %v", u, err)
			}
		}
		for _, e := range rec.Extensions {
			if !validExtName(e.Key) || !validExtValue(e.Value) {
				t.Fatalf("accepted extension %q=%q", e.Key, e.Value)
			}
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("%q: canonical form %q does not parse back: %+v, %v", s, rec.String(), again, err)
		}
	})
}
