package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"
)

// wantCounts is what a report must parse to: per policy, the summary and
// the failed-session-count of each failure detail, in order.
type wantCounts struct {
	domain, policyType string
	mxHosts            []string
	summary            Summary
	details            []int64
}

func checkCounts(t *testing.T, rep *Report, want []wantCounts) {
	t.Helper()
	if len(rep.Policies) != len(want) {
		t.Fatalf("%d policies, want %d", len(rep.Policies), len(want))
	}
	for i, w := range want {
		p := rep.Policies[i]
		var details []int64
		for _, d := range p.FailureDetails {
			details = append(details, d.FailedSessionCount)
			if d.ResultType == "" {
				t.Errorf("policy %d: a detail without a result type", i)
			}
		}
		if p.Policy.Domain != w.domain || p.Policy.Type != w.policyType || !reflect.DeepEqual(p.Policy.MXHosts, w.mxHosts) ||
			p.Summary != w.summary || !reflect.DeepEqual(details, w.details) {
			t.Errorf("policy %d: %s %s mx %q %+v details %v;\nwant %s %s mx %q %+v details %v", i,
				p.Policy.Type, p.Policy.Domain, p.Policy.MXHosts, p.Summary, details,
				w.policyType, w.domain, w.mxHosts, w.summary, w.details)
		}
	}
}

var appendixB = []wantCounts{{
	domain: "company-y.example", policyType: "sts", mxHosts: []string{"*.mail.company-y.example"},
	summary: Summary{5326, 303}, details: []int64{100, 200, 3},
}}

// The public samples parse to the right counts: RFC 8460 Appendix B in both
// forms (mx-host a string, and an array per erratum 6241), mail.ru's and
// parsedmarc's samples, and a real Google report, as JSON and as the mail
// that carried it.
func TestParseReportVectors(t *testing.T) {
	tests := []struct {
		file  string
		start string
		end   string
		id    string
		want  []wantCounts
	}{
		{"parsedmarc/rfc8460.json", "2016-04-01T00:00:00Z", "2016-04-01T23:59:59Z", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", appendixB},
		{"mox/rfc8460-appendixB-with-errata6241.json", "2016-04-01T00:00:00Z", "2016-04-01T23:59:59Z", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", appendixB},
		{"parsedmarc/mail.ru.json", "2024-02-22T00:00:00Z", "2024-02-23T00:00:00Z", "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru",
			// The summary says 1 failure, the details 2: kept as sent.
			[]wantCounts{{domain: "example.com", policyType: "sts", summary: Summary{0, 1}, details: []int64{1, 1}}}},
		{"parsedmarc/smtp_tls.json", "2024-01-09T00:00:00Z", "2024-01-09T23:59:59Z", "2024-01-09T00:00:00Z_example.com",
			[]wantCounts{{domain: "example.com", policyType: "sts", summary: Summary{0, 3}, details: []int64{2, 1}}}},
		{"parsedmarc/google.com_smtp_tls_report.decoded.json", "2024-09-03T00:00:00Z", "2024-09-03T23:59:59Z", "2024-09-03T00:00:00Z_cardinalhealth.ca",
			[]wantCounts{{domain: "cardinalhealth.ca", policyType: "no-policy-found", summary: Summary{48, 0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readVector(t, tt.file)
			for _, form := range []string{"json", "gzip"} {
				in := data
				if form == "gzip" {
					in = gzipped(data)
				}
				rep, err := ParseReport(bytes.NewReader(in))
				if err != nil {
					t.Fatalf("%s: %v", form, err)
				}
				if got := rep.DateRange.Start.Format(time.RFC3339); got != tt.start {
					t.Errorf("%s: start %s, want %s", form, got, tt.start)
				}
				if got := rep.DateRange.End.Format(time.RFC3339); got != tt.end {
					t.Errorf("%s: end %s, want %s", form, got, tt.end)
				}
				if rep.ReportID != tt.id {
					t.Errorf("%s: report-id %q, want %q", form, rep.ReportID, tt.id)
				}
				if rep.OrganizationName == "" || rep.ContactInfo == "" {
					t.Errorf("%s: organization-name %q, contact-info %q", form, rep.OrganizationName, rep.ContactInfo)
				}
				checkCounts(t, rep, tt.want)
			}
		})
	}
}

// Appendix B's failure details, field by field.
func TestParseReportAppendixBFields(t *testing.T) {
	rep, err := ParseReport(bytes.NewReader(readVector(t, "mox/rfc8460-appendixB-with-errata6241.json")))
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Policies[0]
	if want := []string{"version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"}; !reflect.DeepEqual(p.Policy.Strings, want) {
		t.Errorf("policy-string = %q", p.Policy.Strings)
	}
	want := FailureDetail{ResultType: ResultValidationFailure, SendingMTAIP: "198.51.100.62", ReceivingIP: "203.0.113.58",
		ReceivingMXHostname: "mx-backup.mail.company-y.example", FailedSessionCount: 3, FailureReasonCode: "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}
	if p.FailureDetails[2] != want {
		t.Errorf("detail 3 = %+v,\nwant %+v", p.FailureDetails[2], want)
	}
	if p.FailureDetails[1].AdditionalInformation == "" || p.FailureDetails[1].ReceivingIP != "203.0.113.56" {
		t.Errorf("detail 2 = %+v", p.FailureDetails[1])
	}
}

// The real Google report as mailed: multipart/report, report-type=tlsrpt,
// the fixed subject, and a gzip attachment named by the RFC's rule.
func TestParseReportGoogleMail(t *testing.T) {
	msg, err := mail.ReadMessage(bytes.NewReader(readVector(t, "parsedmarc/google.com_smtp_tls_report.eml")))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("TLS-Report-Domain") != "cardinalhealth.ca" || msg.Header.Get("TLS-Report-Submitter") != "google.com" {
		t.Errorf("TLS-Report headers: %v", msg.Header)
	}
	att, fn := reportAttachment(t, msg)
	rep, err := ParseReport(bytes.NewReader(att))
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep, []wantCounts{{domain: "cardinalhealth.ca", policyType: "no-policy-found", summary: Summary{48, 0}}})
	if got := FileName("google.com", rep.PolicyDomain(), rep.DateRange.Start, rep.DateRange.End, "001"); got != fn {
		t.Errorf("FileName from the report = %q, the mail has %q", got, fn)
	}
}

// reportAttachment returns the decoded application/tlsrpt+gzip part of a
// multipart/report; report-type=tlsrpt message and its file name.
func reportAttachment(t *testing.T, msg *mail.Message) ([]byte, string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			t.Fatal("no application/tlsrpt+gzip part")
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if ct != "application/tlsrpt+gzip" {
			continue
		}
		if cte := part.Header.Get("Content-Transfer-Encoding"); !strings.EqualFold(cte, "base64") {
			t.Fatalf("attachment encoded as %q", cte)
		}
		_, dp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil {
			t.Fatalf("Content-Disposition: %v", err)
		}
		data, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
		if err != nil {
			t.Fatal(err)
		}
		return data, dp["filename"]
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

const minimalReport = `{"organization-name":"O","date-range":{"start-datetime":"2024-09-03T00:00:00Z","end-datetime":"2024-09-03T23:59:59Z"},` +
	`"contact-info":"a@b.example","report-id":"1","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},` +
	`"summary":{"total-successful-session-count":1,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","failed-session-count":1}]}]}`

func TestParseReportLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		chk  func(*Report) bool
	}{
		{"minimal", minimalReport, func(r *Report) bool { return r.Policies[0].Summary == Summary{1, 1} }},
		{"mx-host string", strings.Replace(minimalReport, `"policy-type":"sts"`, `"policy-type":"sts","mx-host":"mx.example.com"`, 1),
			func(r *Report) bool {
				return reflect.DeepEqual(r.Policies[0].Policy.MXHosts, []string{"mx.example.com"})
			}},
		{"mx-host array", strings.Replace(minimalReport, `"policy-type":"sts"`, `"policy-type":"sts","mx-host":["a.example","b.example"]`, 1),
			func(r *Report) bool { return len(r.Policies[0].Policy.MXHosts) == 2 }},
		{"policy-string string", strings.Replace(minimalReport, `"policy-type":"sts"`, `"policy-type":"sts","policy-string":"3 1 1 abcd"`, 1),
			func(r *Report) bool { return reflect.DeepEqual(r.Policies[0].Policy.Strings, []string{"3 1 1 abcd"}) }},
		{"offset", strings.Replace(minimalReport, `2024-09-03T00:00:00Z`, `2024-09-03T02:00:00+02:00`, 1),
			func(r *Report) bool { return r.DateRange.Start.Equal(day("2024-09-03").Start()) }},
		{"no offset", strings.Replace(minimalReport, `2024-09-03T00:00:00Z`, `2024-09-03T00:00:00`, 1),
			func(r *Report) bool { return r.DateRange.Start.Equal(day("2024-09-03").Start()) }},
		{"unknown fields", strings.Replace(minimalReport, `"report-id":"1"`, `"report-id":"1","x-extra":{"a":[1,2]}`, 1),
			func(r *Report) bool { return r.ReportID == "1" }},
		{"byte order mark", "\xef\xbb\xbf" + minimalReport, func(r *Report) bool { return true }},
		{"empty policies", `{"date-range":{"start-datetime":"2024-09-03T00:00:00Z","end-datetime":"2024-09-03T23:59:59Z"},"policies":[]}`,
			func(r *Report) bool { return len(r.Policies) == 0 }},
		{"white space around", "\n " + minimalReport + "\r\n", func(r *Report) bool { return true }},
	}
	for _, tt := range tests {
		rep, err := ParseReport(strings.NewReader(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !tt.chk(rep) {
			t.Errorf("%s: parsed as %+v", tt.name, rep)
		}
	}
}

func TestParseReportRejects(t *testing.T) {
	bomb := gzipped(bytes.Repeat([]byte(" "), MaxReportSize+1))
	tests := []struct {
		name     string
		in       []byte
		tooLarge bool
	}{
		{"empty", nil, false},
		{"not JSON", []byte("report"), false},
		{"array", []byte("[]"), false},
		{"two objects", []byte(minimalReport + minimalReport), false},
		{"no date-range", []byte(strings.Replace(minimalReport, `"date-range"`, `"x"`, 1)), false},
		{"no end", []byte(strings.Replace(minimalReport, `"end-datetime"`, `"x"`, 1)), false},
		{"bad date", []byte(strings.Replace(minimalReport, `2024-09-03T00:00:00Z`, `yesterday`, 1)), false},
		{"date out of range", []byte(strings.Replace(minimalReport, `2024-09-03T00:00:00Z`, `0001-01-01T00:00:00Z`, 1)), false},
		{"ends before it starts", []byte(strings.Replace(minimalReport, `2024-09-03T23:59:59Z`, `2024-09-02T23:59:59Z`, 1)), false},
		{"no policies", []byte(strings.Replace(minimalReport, `"policies"`, `"x"`, 1)), false},
		{"null policies", []byte(`{"date-range":{"start-datetime":"2024-09-03T00:00:00Z","end-datetime":"2024-09-03T23:59:59Z"},"policies":null}`), false},
		{"no policy-domain", []byte(strings.Replace(minimalReport, `"policy-domain":"example.com"`, `"x":1`, 1)), false},
		{"no policy-type", []byte(strings.Replace(minimalReport, `"policy-type":"sts"`, `"x":1`, 1)), false},
		{"mx-host number", []byte(strings.Replace(minimalReport, `"policy-type":"sts"`, `"policy-type":"sts","mx-host":5`, 1)), false},
		{"negative summary", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":-1`, 1)), false},
		{"fractional count", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":1.5`, 1)), false},
		{"count as string", []byte(strings.Replace(minimalReport, `"total-successful-session-count":1`, `"total-successful-session-count":"1"`, 1)), false},
		{"no result-type", []byte(strings.Replace(minimalReport, `"result-type":"certificate-expired",`, ``, 1)), false},
		{"negative failed-session-count", []byte(strings.Replace(minimalReport, `"failed-session-count":1`, `"failed-session-count":-2`, 1)), false},
		{"bad gzip", []byte("\x1f\x8bnot gzip"), false},
		{"truncated gzip", gzipped([]byte(minimalReport))[:30], false},
		{"too large", append([]byte(minimalReport), bytes.Repeat([]byte(" "), MaxReportSize)...), true},
		{"gzip bomb", bomb, true},
	}
	for _, tt := range tests {
		_, err := ParseReport(bytes.NewReader(tt.in))
		var re *ReportError
		if !errors.As(err, &re) || !errors.Is(err, ErrInvalidReport) {
			t.Errorf("%s: error %v, want a *ReportError matching ErrInvalidReport", tt.name, err)
			continue
		}
		if errors.Is(err, ErrReportTooLarge) != tt.tooLarge {
			t.Errorf("%s: error %v, ErrReportTooLarge = %v", tt.name, err, !tt.tooLarge)
		}
	}
}

// What Build makes, ParseReport reads back unchanged.
func TestBuildParseRoundTrip(t *testing.T) {
	rep, err := testSubmitter.Build(testAggregate(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := rep.Gzip()
	back, err := ParseReport(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip:\n%+v\n%+v", back, rep)
	}
	js, _ := json.Marshal(rep)
	if back, err = ParseReport(bytes.NewReader(js)); err != nil || !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip of plain JSON: %v", err)
	}
}
