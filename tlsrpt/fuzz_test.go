package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
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
		if !txtrecord.HasVersion(s, recordVersion) {
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
			if !txtrecord.ValidExtName(e.Key) || !txtrecord.ValidExtValue(e.Value) {
				t.Fatalf("accepted extension %q=%q", e.Key, e.Value)
			}
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("%q: canonical form %q does not parse back: %+v, %v", s, rec.String(), again, err)
		}
	})
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(minimalReport))
	f.Add(gzipped([]byte(minimalReport)))
	f.Add([]byte(strings.Replace(minimalReport, `"policy-type":"sts"`, `"policy-type":"sts","mx-host":"mx.example","policy-string":["a","b"]`, 1)))
	f.Add([]byte(`{"date-range":{"start-datetime":"2024-09-03T00:00:00.5+01:00","end-datetime":"2024-09-03T23:59:59"},"policies":[]}`))
	f.Add([]byte("\x1f\x8b"))
	for _, rel := range []string{
		"parsedmarc/rfc8460.json", "parsedmarc/mail.ru.json", "parsedmarc/smtp_tls.json",
		"parsedmarc/google.com_smtp_tls_report.decoded.json", "mox/rfc8460-appendixB-with-errata6241.json",
	} {
		if data := readVectorQuiet(rel); data != nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseReport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidReport) {
				t.Fatalf("error %v does not match ErrInvalidReport", err)
			}
			return
		}
		if rep.DateRange.End.Before(rep.DateRange.Start) {
			t.Fatalf("accepted a date range that ends before it starts")
		}
		for _, p := range rep.Policies {
			if p.Policy.Domain == "" || p.Policy.Type == "" || p.Summary.TotalFailureSessionCount < 0 || p.Summary.TotalSuccessfulSessionCount < 0 {
				t.Fatalf("accepted policy %+v", p)
			}
			for _, d := range p.FailureDetails {
				if d.ResultType == "" || d.FailedSessionCount < 0 {
					t.Fatalf("accepted detail %+v", d)
				}
			}
		}
		// What was accepted is written and read back to the same report.
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		back, err := ParseReport(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("encoded report %s does not parse: %v", js, err)
		}
		js2, _ := json.Marshal(back)
		if !bytes.Equal(js, js2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", js, js2)
		}
	})
}
