package smtpsecure

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// fixedClock is a tlsrpt.Clock stopped at one instant.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func (c fixedClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.t.Add(d)
	return ch
}

// txtMap answers TXT lookups from a map; other names do not exist.
type txtMap map[string]string

func (m txtMap) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if v, ok := m[name]; ok {
		return []string{v}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// collector is an HTTPS TLS-RPT collector that keeps what is posted.
type collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts [][]byte
	types []string
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		c.mu.Lock()
		c.posts = append(c.posts, b)
		c.types = append(c.types, r.Header.Get("Content-Type"))
		c.mu.Unlock()
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// The TLS-RPT path end to end: deliveries to a domain whose first MX fails
// DANE and whose second passes are recorded by a tlsrpt.Recorder set as
// Deliverer.TLSReports; the next day the Scheduler sends the day's report to
// an HTTPS collector and, through MailTLSReport (Deliver in the world), to a
// mailbox at a DANE-protected domain; both parse back to the counts, and
// delivering the report was not itself counted.
//
// STD-86, STD-88, STD-89, STD-90.
func TestDeliverTLSReportEndToEnd(t *testing.T) {
	w := mxworld.New(t)
	store := &tlsrpt.MemoryStore{}
	rec := tlsrpt.NewRecorder(store)
	d := worldDeliverer(w, rec)
	const deliveries = 3
	for i := 0; i < deliveries; i++ {
		_, msg := testMessage(t, "u@failover.example")
		r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{"u@failover.example"}}, msg)[0]
		if r.Outcome != OutcomeDelivered || r.Host != "mx2.failover.example" {
			t.Fatalf("delivery %d: %s at %s: %v", i, r.Outcome, r.Host, r.Err)
		}
	}

	coll := newCollector(t)
	pool := coll.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	sched := &tlsrpt.Scheduler{
		Store:     store,
		Recorder:  rec,
		Submitter: tlsrpt.Submitter{OrganizationName: "Sender Org", Domain: "sender.example"},
		Resolver: txtMap{"_smtp._tls.failover.example.": "v=TLSRPTv1; rua=mailto:tlsrpt@dane-ee.example," +
			coll.srv.URL + "/v1/tlsrpt"},
		HTTP:  &tlsrpt.HTTPPoster{RootCAs: pool},
		Mail:  d.MailTLSReport,
		Clock: fixedClock{time.Now().Add(48 * time.Hour)},
	}
	if _, err := sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(how string, rep *tlsrpt.Report) {
		t.Helper()
		if rep.PolicyDomain() != "failover.example" || rep.OrganizationName != "Sender Org" {
			t.Errorf("%s: report for %q by %q", how, rep.PolicyDomain(), rep.OrganizationName)
		}
		if tot := rep.Totals(); tot.TotalSuccessfulSessionCount != deliveries || tot.TotalFailureSessionCount != deliveries {
			t.Errorf("%s: totals %+v, want %d successful and %d failed sessions", how, tot, deliveries, deliveries)
		}
		for _, p := range rep.Policies {
			if p.Policy.Type != tlsrpt.PolicyTLSA || len(p.Policy.MXHosts) != 1 {
				t.Errorf("%s: policy %+v", how, p.Policy)
				continue
			}
			switch p.Policy.MXHosts[0] {
			case "mx1.failover.example":
				fd := p.FailureDetails
				if p.Summary.TotalFailureSessionCount != deliveries || len(fd) != 1 || fd[0].ResultType != rfc8460.ValidationFailure ||
					fd[0].FailedSessionCount != deliveries || fd[0].ReceivingMXHostname != "mx1.failover.example" || fd[0].ReceivingIP == "" || fd[0].SendingMTAIP == "" {
					t.Errorf("%s: mx1: %+v", how, p)
				}
			case "mx2.failover.example":
				if p.Summary.TotalSuccessfulSessionCount != deliveries || len(p.FailureDetails) != 0 {
					t.Errorf("%s: mx2: %+v", how, p)
				}
			default:
				t.Errorf("%s: policy for %q", how, p.Policy.MXHosts)
			}
		}
	}

	// HTTPS.
	coll.mu.Lock()
	posts, types := slices.Clone(coll.posts), slices.Clone(coll.types)
	coll.mu.Unlock()
	if len(posts) != 1 || types[0] != "application/tlsrpt+gzip" {
		t.Fatalf("%d posts (%q), want one application/tlsrpt+gzip", len(posts), types)
	}
	rep, err := tlsrpt.ParseReport(bytes.NewReader(posts[0]))
	if err != nil {
		t.Fatal(err)
	}
	check("HTTPS", rep)

	// Mail, delivered by Deliver to the DANE-authenticated MX of the rua
	// domain.
	msgs := w.MX("mx.dane-ee.example").Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"tlsrpt@dane-ee.example"}) || !msgs[0].TLS {
		t.Fatalf("the report mailbox's MX got %d messages: %+v", len(msgs), msgs)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("TLS-Report-Domain") != "failover.example" || m.Header.Get("TLS-Report-Submitter") != "sender.example" {
		t.Errorf("headers %v", m.Header)
	}
	mailed, err := tlsrpt.ParseReport(bytes.NewReader(reportAttachment(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	check("mail", mailed)
	if mailed.ReportID != rep.ReportID {
		t.Errorf("report IDs: mail %q, HTTPS %q", mailed.ReportID, rep.ReportID)
	}

	// Delivering the report produced no report of its own.
	keys, err := store.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Domain != "failover.example" {
			t.Errorf("the store counts sessions for %s: a report delivery was recorded", k)
		}
	}
}

// reportAttachment returns the decoded application/tlsrpt+gzip part of a
// report message.
func reportAttachment(t *testing.T, m *mail.Message) []byte {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no report part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "application/tlsrpt+gzip") {
			b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// MailTLSReport delivers a report despite a failure of the rua domain's
// policy (RFC 8460 §5.3): over TLS without authentication, never in
// plaintext, never to a host the plan excludes, and without recording the
// sessions; a 5xx is marked permanent for the Scheduler.
func TestMailTLSReport(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	d := worldDeliverer(w, rec)
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	send := func(to string) error {
		return d.MailTLSReport(ctx, "postmaster@sender.example", []string{to}, strings.NewReader("Subject: Report Domain: x\r\n\r\nreport\r\n"))
	}
	for _, dom := range []string{"dane-mismatch.example", "sts-untrusted.example", "dane-ta-wrongname.example"} {
		if err := send("tlsrpt@" + dom); err != nil {
			t.Errorf("%s: %v", dom, err)
		}
	}
	for _, tt := range []struct {
		domain    string
		permanent bool
		is        error
	}{
		{"dane-nostarttls.example", false, ErrDowngrade}, // TLS still required
		{"nopolicy-nostarttls.example", false, ErrDowngrade},
		{"rcpt550.example", true, ErrRefused},
		{"sts-nomatch.example", true, nil}, // the plan excludes the only host
	} {
		err := send("tlsrpt@" + tt.domain)
		if err == nil || errors.Is(err, tlsrpt.ErrPermanent) != tt.permanent || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v; want an error, permanent %v, matching %v", tt.domain, err, tt.permanent, tt.is)
		}
	}
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("plaintext: %q", l)
	}
	if len(w.MX("mx.sts-nomatch.example").Sessions()) != 0 {
		t.Error("a host the plan excludes was contacted")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.all) != 0 {
		t.Errorf("report deliveries were recorded: %+v", rec.all)
	}
}
