package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var testSubmitter = Submitter{
	OrganizationName: "Sender Org",
	Domain:           "mail.sender.example",
	ContactInfo:      "tlsrpt@sender.example",
}

func testAggregate() *Aggregate {
	other := expired
	other.ResultType = ResultSTARTTLSNotSupported
	other.FailedSessionCount = 2
	return &Aggregate{
		Key: Key{Domain: "example.com", Day: day("2024-09-03")},
		Policies: []PolicyResult{
			{Policy: tlsaPolicy, Summary: Summary{7, 0}},
			{Policy: stsPolicy, Summary: Summary{10, 3}, FailureDetails: []FailureDetail{other, expired}},
		},
	}
}

// STD-88: every field of the RFC 8460 §4 report, with mx-host an array
// (erratum 6241), policy-string an array, and the date range the UTC day.
func TestBuildReportJSON(t *testing.T) {
	rep, err := testSubmitter.Build(testAggregate(), "0123abcdXYZ")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("organization-name", m["organization-name"], "Sender Org")
	check("contact-info", m["contact-info"], "tlsrpt@sender.example")
	check("report-id", m["report-id"], "0123abcdXYZ")
	check("date-range", m["date-range"], map[string]any{
		"start-datetime": "2024-09-03T00:00:00Z",
		"end-datetime":   "2024-09-03T23:59:59Z",
	})
	pols := m["policies"].([]any)
	if len(pols) != 2 {
		t.Fatalf("%d policies", len(pols))
	}
	// Sorted: sts before tlsa.
	sts := pols[0].(map[string]any)
	check("policy", sts["policy"], map[string]any{
		"policy-type":   "sts",
		"policy-domain": "example.com",
		"policy-string": []any{"version: STSv1", "mode: enforce", "mx: *.example.com", "max_age: 86400"},
		"mx-host":       []any{"*.example.com"},
	})
	check("summary", sts["summary"], map[string]any{
		"total-successful-session-count": 10.0,
		"total-failure-session-count":    3.0,
	})
	// Failure details sorted by result type; every field by its RFC name.
	check("failure-details", sts["failure-details"], []any{
		map[string]any{
			"result-type":           ResultCertificateExpired,
			"sending-mta-ip":        "192.0.2.10",
			"receiving-mx-hostname": "mx1.example.com",
			"receiving-mx-helo":     "mx1",
			"receiving-ip":          "198.51.100.1",
			"failed-session-count":  1.0,
		},
		map[string]any{
			"result-type":           ResultSTARTTLSNotSupported,
			"sending-mta-ip":        "192.0.2.10",
			"receiving-mx-hostname": "mx1.example.com",
			"receiving-mx-helo":     "mx1",
			"receiving-ip":          "198.51.100.1",
			"failed-session-count":  2.0,
		},
	})
	tlsa := pols[1].(map[string]any)
	if _, ok := tlsa["failure-details"]; ok {
		t.Errorf("a policy without failures has failure-details: %v", tlsa)
	}
	check("tlsa mx-host", tlsa["policy"].(map[string]any)["mx-host"], []any{"mx1.example.com"})

	// Optional detail fields appear when set.
	agg := testAggregate()
	agg.Policies[1].FailureDetails[1].AdditionalInformation = "https://sender.example/i"
	agg.Policies[1].FailureDetails[1].FailureReasonCode = "X509_V_ERR_CERT_HAS_EXPIRED"
	rep, _ = testSubmitter.Build(agg, "r1")
	js, _ = json.Marshal(rep)
	for _, want := range []string{`"additional-information":"https://sender.example/i"`, `"failure-reason-code":"X509_V_ERR_CERT_HAS_EXPIRED"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
	// no-policy-found has neither policy-string nor mx-host.
	agg = &Aggregate{Key: agg.Key, Policies: []PolicyResult{success(Policy{Type: PolicyNone, Domain: "example.com"}, 1)}}
	rep, _ = testSubmitter.Build(agg, "r1")
	js, _ = json.Marshal(rep)
	if want := `"policy":{"policy-type":"no-policy-found","policy-domain":"example.com"}`; !bytes.Contains(js, []byte(want)) {
		t.Errorf("JSON %s lacks %s", js, want)
	}
}

// The same counts always make the same report, whatever the order they
// were recorded in.
func TestBuildIsDeterministic(t *testing.T) {
	a := testAggregate()
	b := testAggregate()
	b.Policies[0], b.Policies[1] = b.Policies[1], b.Policies[0]
	fd := b.Policies[0].FailureDetails
	fd[0], fd[1] = fd[1], fd[0]
	ra, _ := testSubmitter.Build(a, "x")
	rb, _ := testSubmitter.Build(b, "x")
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	if !bytes.Equal(ja, jb) {
		t.Errorf("order of recording changes the report:\n%s\n%s", ja, jb)
	}
	// Build does not change the aggregate.
	if !reflect.DeepEqual(b.Policies[0].FailureDetails[0], testAggregate().Policies[1].FailureDetails[1]) {
		t.Error("Build sorted the caller's aggregate")
	}
}

func TestSubmitterDefaultsAndChecks(t *testing.T) {
	s := Submitter{OrganizationName: "O", Domain: "Bücher.Example"}
	rep, err := s.Build(testAggregate(), "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.ContactInfo != "postmaster@xn--bcher-kva.example" {
		t.Errorf("default contact-info = %q", rep.ContactInfo)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(rep.ReportID) {
		t.Errorf("new report ID %q", rep.ReportID)
	}
	if NewReportID() == NewReportID() {
		t.Error("NewReportID repeats itself")
	}
	for name, sub := range map[string]*Submitter{
		"nil":             nil,
		"no organization": {Domain: "sender.example"},
		"no domain":       {OrganizationName: "O"},
		"IP domain":       {OrganizationName: "O", Domain: "192.0.2.1"},
		"bad From":        {OrganizationName: "O", Domain: "sender.example", From: "a@b.example>\r\nBcc: x@y"},
	} {
		if _, err := sub.Build(testAggregate(), "x"); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
	for name, id := range map[string]string{
		"dash":     "a-b",
		"at":       "a@b",
		"too long": strings.Repeat("a", 65),
		"bang":     "a!b",
	} {
		if _, err := testSubmitter.Build(testAggregate(), id); err == nil {
			t.Errorf("report ID %s (%q) accepted", name, id)
		}
	}
	if _, err := testSubmitter.Build(&Aggregate{Key: testAggregate().Key}, "x"); err == nil {
		t.Error("Build of an empty aggregate succeeded")
	}
	if _, err := testSubmitter.Build(&Aggregate{}, "x"); err == nil {
		t.Error("Build of an aggregate without a day succeeded")
	}
}

// STD-89: the report is gzip-compressed JSON.
func TestReportGzip(t *testing.T) {
	rep, _ := testSubmitter.Build(testAggregate(), "abc")
	gz, err := rep.Gzip()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(rep)
	if !bytes.Equal(js, want) {
		t.Errorf("gzip holds %s, want %s", js, want)
	}
}

// STD-89: sender!policy-domain!begin!end!unique-id.json.gz, timestamps in
// seconds since the epoch.
func TestFileName(t *testing.T) {
	tests := []struct {
		sub, dom   string
		begin, end time.Time
		id, want   string
	}{
		{"mail.sender.example", "example.com", time.Unix(1470013207, 0), time.Unix(1470186007, 0), "001",
			"mail.sender.example!example.com!1470013207!1470186007!001.json.gz"},
		{"google.com", "cardinalhealth.ca", day("2024-09-03").Start(), day("2024-09-03").End(), "001",
			"google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz"},
		{"s.example", "d.example", time.Unix(0, 0), time.Unix(86399, 0), "",
			"s.example!d.example!0!86399.json.gz"},
		{"s.example", "d.example", time.Unix(0, 0), time.Unix(86399, 0), "not/alnum",
			"s.example!d.example!0!86399.json.gz"},
	}
	for _, tt := range tests {
		if got := FileName(tt.sub, tt.dom, tt.begin, tt.end, tt.id); got != tt.want {
			t.Errorf("FileName = %q, want %q", got, tt.want)
		}
	}
	rep, _ := testSubmitter.Build(testAggregate(), "abc123")
	if got, want := testSubmitter.fileName(rep), "mail.sender.example!example.com!1725321600!1725407999!abc123.json.gz"; got != want {
		t.Errorf("the report's file name = %q, want %q", got, want)
	}
}

func TestReportPolicyDomainAndTotals(t *testing.T) {
	rep, _ := testSubmitter.Build(testAggregate(), "x")
	if d := rep.PolicyDomain(); d != "example.com" {
		t.Errorf("PolicyDomain = %q", d)
	}
	if tot := rep.Totals(); tot != (Summary{17, 3}) {
		t.Errorf("Totals = %+v", tot)
	}
	rep.Policies[1].Policy.Domain = "other.example"
	if d := rep.PolicyDomain(); d != "" {
		t.Errorf("PolicyDomain of a report about two domains = %q", d)
	}
	if d := (&Report{}).PolicyDomain(); d != "" {
		t.Errorf("PolicyDomain of an empty report = %q", d)
	}
}

func TestDay(t *testing.T) {
	d := DayOf(time.Date(2024, 3, 1, 1, 0, 0, 0, time.FixedZone("+03", 3*3600)))
	if d != day("2024-02-29") {
		t.Errorf("DayOf = %v, want 2024-02-29 (UTC)", d)
	}
	if d.String() != "2024-02-29" || d.AddDays(1) != day("2024-03-01") || d.AddDays(-60).String() != "2023-12-31" {
		t.Errorf("String/AddDays: %v %v %v", d, d.AddDays(1), d.AddDays(-60))
	}
	if !d.Start().Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) || !d.End().Equal(time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("Start/End = %v %v", d.Start(), d.End())
	}
	if !d.Before(d.AddDays(1)) || d.Before(d) || !(Day{}).IsZero() || d.IsZero() {
		t.Error("Before/IsZero")
	}
	for _, bad := range []string{"", "2024-2-29", "2023-02-29", "29.02.2024", "2024-02-29T00:00:00Z"} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("ParseDay(%q) succeeded", bad)
		}
	}
	var u Day
	if err := json.Unmarshal([]byte(`"2024-09-03"`), &u); err != nil || u != day("2024-09-03") {
		t.Errorf("UnmarshalText: %v %v", u, err)
	}
	if b, _ := json.Marshal(u); string(b) != `"2024-09-03"` {
		t.Errorf("MarshalText: %s", b)
	}
}
