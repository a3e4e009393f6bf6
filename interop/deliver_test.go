//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// labRecorder keeps the TLS-RPT results Deliver records.
type labRecorder struct {
	mu  sync.Mutex
	all []tlsrpt.Result
}

func (r *labRecorder) Record(ctx context.Context, res tlsrpt.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, res)
	return nil
}

func (r *labRecorder) forDomain(domain string) []tlsrpt.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tlsrpt.Result
	for _, res := range r.all {
		if res.Policy.Domain == domain {
			out = append(out, res)
		}
	}
	return out
}

// labDeliverer is a Deliverer for the lab: the validating Unbound, the lab
// CA for MX certificates and MTA-STS policy hosts, a cache directory of the
// test's own. The lab's A records point at the real listeners: no dial hook.
func (l *mxLab) labDeliverer(t *testing.T, rec smtpsecure.TLSReportRecorder) *smtpsecure.Deliverer {
	return &smtpsecure.Deliverer{
		Resolver:       l.resolver(),
		RootCAs:        l.caPool,
		MTASTSCacheDir: t.TempDir(),
		LocalName:      "client.interop.smtpsecure.test",
		Logger:         testLogger(t),
		TLSReports:     rec,
	}
}

// waitMaildir polls a Maildir until the message with Message-ID id is in
// it, and returns the delivered file, split.
func waitMaildir(t *testing.T, dir, id string) *delivery {
	t.Helper()
	md := &maildir{dir: dir}
	var files []string
	poll(t, fmt.Sprintf("<%s> in %s", id, dir), mxCaseTimeout/2, func() (bool, error) {
		var err error
		files, err = md.find(id)
		return len(files) > 0, err
	})
	if len(files) != 1 {
		t.Fatalf("<%s> was delivered %d times to %s, want once", id, len(files), dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	dl, err := parseDelivery(files[0], b)
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

// Deliver to every MX domain of the lab, with the four knobs a real
// deployment sets (and no dial hook: the lab's DNS points at Postfix): the
// outcome each domain's _EXPECT names, the message in the domain's Maildir,
// received by the expected host over TLS, the TLS authentication the lab
// expects, and the TLS-RPT results (the failover domain's first MX fails
// DANE, and is reported so).
//
// STD-54, STD-62, STD-63, STD-74, STD-86.
func TestDeliverLab(t *testing.T) {
	l := loadMXLab(t)
	rec := &labRecorder{}
	d := l.labDeliverer(t, rec)
	const from = "sender@client.interop.smtpsecure.test"
	for _, dom := range l.domains {
		t.Run(dom.name, func(t *testing.T) {
			t.Parallel()
			ctx := mxContext(t)
			rcpt := "postmaster@" + dom.name
			if dom.key == "REPORTS_DOMAIN" {
				rcpt = l.tlsrptAddress
			}
			id, raw := mxMessage(t, from, rcpt)
			res, err := d.Deliver(ctx, &smtpsecure.Envelope{From: from, To: []string{rcpt}}, bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			defer func() {
				if t.Failed() && r.Plan != nil {
					t.Logf("plan:\n%s", r.Plan)
				}
			}()
			if !dom.expect.delivered {
				// Refused by the plan: the only MX is not in the MTA-STS
				// policy, which a fresh look confirms. No session at all.
				if r.Outcome != smtpsecure.OutcomePermanent || len(r.Attempts) != 0 {
					t.Fatalf("%s after %d attempts: %v; want a permanent failure without a session", r.Outcome, len(r.Attempts), r.Err)
				}
				return
			}
			if r.Outcome != smtpsecure.OutcomeDelivered || r.Host != dom.expect.host || !r.TLS {
				t.Fatalf("%s by %q (TLS %v): %v; want delivered by %s over TLS", r.Outcome, r.Host, r.TLS, r.Err, dom.expect.host)
			}
			want := map[string]smtpsecure.ServerAuth{"dane-ee": smtpsecure.ServerAuthDANEEE, "webpki": smtpsecure.ServerAuthWebPKI, "tls": smtpsecure.ServerAuthNone}[dom.expect.tls]
			if r.ServerAuth != want {
				t.Errorf("server authenticated by %s, want %s", r.ServerAuth, want)
			}
			dir := dom.maildir
			if dom.key == "REPORTS_DOMAIN" {
				dir = l.tlsrptMaildir
			}
			dl := waitMaildir(t, dir, id)
			by := "by " + r.Host + " (Postfix) with "
			if !strings.Contains(dl.received, by+"ESMTPS ") && !strings.Contains(dl.received, by+"UTF8SMTPS ") {
				t.Errorf("received as %q, want by %s over TLS", dl.received, r.Host)
			}
			if !bytes.Equal(dl.content, lfOnly(raw)) {
				t.Errorf("the message changed on the way: %s", firstDifference(dl.content, lfOnly(raw)))
			}

			// One TLS-RPT result per session; the failover domain's first
			// MX fails DANE authentication.
			var failures []string
			for _, at := range r.Attempts {
				if at.Report != nil && at.Report.ResultType != "" {
					failures = append(failures, at.Host+" "+at.Report.ResultType)
				}
			}
			var wantFailures []string
			if dom.key == "FAILOVER_DOMAIN" {
				wantFailures = []string{dom.mx[0] + " " + tlsrpt.ResultValidationFailure}
			}
			if dom.key == "STS_TESTING_DOMAIN" {
				// The testing policy does not list the host: reported, not
				// enforced (RFC 8461 §5).
				wantFailures = []string{r.Host + " " + tlsrpt.ResultValidationFailure}
			}
			if !slices.Equal(failures, wantFailures) {
				t.Errorf("TLS-RPT failures %q, want %q", failures, wantFailures)
			}
			if n, m := len(rec.forDomain(dom.name)), len(r.Attempts)+len(r.PlanReports); n != m {
				t.Errorf("%d results recorded for %d session attempts and plan results", n, m)
			}
		})
	}
}

// A TLS report built from deliveries in the lab and mailed with
// MailTLSReport to the lab's rua address arrives in its Maildir intact: the
// same bytes, the TLS-RPT headers, and an attachment that parses back to
// the counts. Its delivery is not itself counted.
//
// STD-88, STD-89, STD-90.
func TestTLSRPTLabMail(t *testing.T) {
	l := loadMXLab(t)
	var failover *mxDomain
	for _, dom := range l.domains {
		if dom.key == "FAILOVER_DOMAIN" {
			failover = dom
		}
	}
	if failover == nil || failover.tlsrpt == "" {
		t.Fatal("the lab's failover domain publishes no TLS-RPT record")
	}
	store := &tlsrpt.MemoryStore{}
	rec := tlsrpt.NewRecorder(store)
	d := l.labDeliverer(t, rec)
	ctx := mxContext(t)
	const from = "sender@client.interop.smtpsecure.test"
	const deliveries = 2
	for i := 0; i < deliveries; i++ {
		_, raw := mxMessage(t, from, "postmaster@"+failover.name)
		res, err := d.Deliver(ctx, &smtpsecure.Envelope{From: from, To: []string{"postmaster@" + failover.name}}, bytes.NewReader(raw))
		if err != nil || res[0].Outcome != smtpsecure.OutcomeDelivered {
			t.Fatalf("delivery %d to %s: %+v %v", i, failover.name, res, err)
		}
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	key := tlsrpt.Key{Domain: failover.name, Day: tlsrpt.DayOf(time.Now())}
	agg, err := store.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	sub := tlsrpt.Submitter{OrganizationName: "smtpsecure interop", Domain: "client.interop.smtpsecure.test"}
	rep, err := sub.Build(agg, "")
	if err != nil {
		t.Fatal(err)
	}
	if tot := rep.Totals(); tot.TotalSuccessfulSessionCount != deliveries || tot.TotalFailureSessionCount != deliveries {
		t.Fatalf("report totals %+v, want %d and %d", tot, deliveries, deliveries)
	}
	rua := strings.TrimPrefix(failover.tlsrpt, "mailto:")
	msg, err := sub.Message(rep, []string{rua}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.MailTLSReport(ctx, sub.From, []string{rua}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}

	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Trim(m.Header.Get("Message-ID"), "<>")
	dl := waitMaildir(t, l.tlsrptMaildir, id)
	if !bytes.Equal(dl.content, lfOnly(msg)) {
		t.Errorf("the report changed on the way: %s", firstDifference(dl.content, lfOnly(msg)))
	}
	got, err := mail.ReadMessage(bytes.NewReader(dl.content))
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("TLS-Report-Domain") != failover.name || got.Header.Get("TLS-Report-Submitter") != sub.Domain {
		t.Errorf("headers %v", got.Header)
	}
	parsed, err := tlsrpt.ParseReport(bytes.NewReader(labAttachment(t, got)))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.ReportID != rep.ReportID || parsed.Totals() != rep.Totals() || len(parsed.Policies) != 2 {
		t.Errorf("the report arrived as %+v, want %+v", parsed, rep)
	}
	// The report's own session was not counted: only the failover domain
	// is in the store.
	keys, err := store.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Domain != failover.name {
			t.Errorf("the store counts %s: the report delivery was recorded", k)
		}
	}
}

// labAttachment returns the decoded report part of a TLS report message.
func labAttachment(t *testing.T, m *mail.Message) []byte {
	t.Helper()
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) || err != nil {
			t.Fatalf("no application/tlsrpt+gzip part: %v", err)
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

// The address the lab's DNS gives each MX host is the host's listener:
// Deliver needs no dial hook there. (A guard for the test above: if the lab
// ever routed through a hook, its results would prove less.)
func TestDeliverLabAddresses(t *testing.T) {
	l := loadMXLab(t)
	ctx := mxContext(t)
	for _, h := range l.hosts {
		ips, err := l.resolver().LookupIP(ctx, h.name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := netip.ParseAddrPort(h.addr)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ips.Addrs, want.Addr()) {
			t.Errorf("%s resolves to %v, not its listener %s", h.name, ips.Addrs, h.addr)
		}
	}
}
