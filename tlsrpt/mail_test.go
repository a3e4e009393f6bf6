package tlsrpt

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var mailDate = time.Date(2024, 9, 4, 2, 17, 0, 0, time.UTC)

// checkLines checks that a message uses CRLF only and keeps every line
// within max octets; the lines of the file name parameters may reach 998.
func checkLines(t *testing.T, msg []byte, max int) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("the message has a bare LF or CR")
	}
	for i, line := range strings.Split(string(msg), "\r\n") {
		limit := max
		if strings.HasPrefix(line, "\tfilename=\"") || strings.HasPrefix(line, "\tname=\"") {
			limit = 998
		}
		if len(line) > limit {
			t.Errorf("line %d is %d octets: %q", i+1, len(line), line)
		}
	}
}

// STD-90: multipart/report; report-type="tlsrpt", with From, To, Date,
// Message-ID, the fixed Subject, TLS-Report-Domain and
// TLS-Report-Submitter, a text part and the gzip attachment named by
// FileName in base64 lines of at most 78 characters.
func TestMessage(t *testing.T) {
	sub := testSubmitter
	sub.From = "tlsrpt@sender.example"
	rep, err := sub.Build(testAggregate(), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sub.Message(rep, []string{"reports@bücher.example"}, mailDate)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, raw, 78)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	for name, want := range map[string]string{
		"From":                 "tlsrpt@sender.example",
		"To":                   "reports@xn--bcher-kva.example",
		"Subject":              "Report Domain: example.com Submitter: mail.sender.example Report-ID: <abc123@mail.sender.example>",
		"TLS-Report-Domain":    "example.com",
		"TLS-Report-Submitter": "mail.sender.example",
		"MIME-Version":         "1.0",
		"Auto-Submitted":       "auto-generated",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(mailDate) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !regexp.MustCompile(`^<abc123\.[0-9a-f]{8}@mail\.sender\.example>$`).MatchString(id) {
		t.Errorf("Message-ID %q", id)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q", h.Get("Content-Type"))
	}

	mr := multipart.NewReader(msg.Body, params["boundary"])
	text, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := mime.ParseMediaType(text.Header.Get("Content-Type")); ct != "text/plain" {
		t.Errorf("first part is %q, want text/plain", ct)
	}
	body, _ := io.ReadAll(text)
	for _, want := range []string{"mail.sender.example", "example.com", "2024-09-03T00:00:00Z", "failed: 3", "required: 17"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("text part lacks %q:\n%s", want, body)
		}
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, p, _ := mime.ParseMediaType(att.Header.Get("Content-Type")); ct != "application/tlsrpt+gzip" || p["name"] != "mail.sender.example!example.com!1725321600!1725407999!abc123.json.gz" {
		t.Errorf("attachment Content-Type %q", att.Header.Get("Content-Type"))
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more than two parts: %v", err)
	}

	// The same attachment as a receiver finds it.
	msg, _ = mail.ReadMessage(bytes.NewReader(raw))
	data, fn := reportAttachment(t, msg)
	if fn != "mail.sender.example!example.com!1725321600!1725407999!abc123.json.gz" {
		t.Errorf("filename %q", fn)
	}
	back, err := ParseReport(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("attachment holds %+v, want %+v", back, rep)
	}
	// Only the two parts' headers and base64 are in the body: the
	// attachment is base64 lines of 76.
	b64 := regexp.MustCompile(`(?m)^[A-Za-z0-9+/=]{76}\r$`)
	if len(b64.FindAll(raw, -1)) == 0 && len(data) > 57 {
		t.Error("no full base64 line of 76 characters")
	}
}

// With long names the subject is folded, and unfolds to the fixed form.
func TestMessageLongNames(t *testing.T) {
	long := strings.Repeat("a", 60) + ".example"
	sub := Submitter{OrganizationName: "O", Domain: "reports." + long}
	agg := testAggregate()
	agg.Domain = "mail." + long
	for i := range agg.Policies {
		agg.Policies[i].Policy.Domain = agg.Domain
	}
	rep, err := sub.Build(agg, "x1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sub.Message(rep, []string{"tlsrpt@" + agg.Domain}, mailDate)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, raw, 998)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := "Report Domain: " + agg.Domain + " Submitter: " + sub.Domain + " Report-ID: <x1@" + sub.Domain + ">"
	if got := msg.Header.Get("Subject"); got != want {
		t.Errorf("Subject %q, want %q", got, want)
	}
	if !bytes.Contains(raw, []byte("\r\n Submitter: ")) {
		t.Error("long subject not folded")
	}
	if msg.Header.Get("From") != "postmaster@"+sub.Domain {
		t.Errorf("default From %q", msg.Header.Get("From"))
	}
}

func TestMessageRejects(t *testing.T) {
	rep, _ := testSubmitter.Build(testAggregate(), "abc")
	two, _ := testSubmitter.Build(testAggregate(), "abc")
	two.Policies[1].Policy.Domain = "other.example"
	badID, _ := testSubmitter.Build(testAggregate(), "abc")
	badID.ReportID = "a-b"
	for name, c := range map[string]struct {
		sub *Submitter
		rep *Report
		to  []string
	}{
		"no recipient":       {&testSubmitter, rep, nil},
		"header injection":   {&testSubmitter, rep, []string{"a@b.example\r\nBcc: x@y.example"}},
		"display name":       {&testSubmitter, rep, []string{"Someone <a@b.example>"}},
		"two policy domains": {&testSubmitter, two, []string{"a@b.example"}},
		"bad report ID":      {&testSubmitter, badID, []string{"a@b.example"}},
		"bad submitter":      {&Submitter{Domain: "s.example"}, rep, []string{"a@b.example"}},
		"bad From":           {&Submitter{OrganizationName: "O", Domain: "s.example", From: "x"}, rep, []string{"a@b.example"}},
	} {
		if _, err := c.sub.Message(c.rep, c.to, mailDate); err == nil {
			t.Errorf("%s: Message succeeded", name)
		}
	}
}
