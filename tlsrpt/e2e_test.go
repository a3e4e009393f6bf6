package tlsrpt

import (
	"bytes"
	"context"
	"net/http"
	"net/mail"
	"net/netip"
	"regexp"
	"testing"
	"time"
)

// The whole path inside the package: results recorded over two days, the
// Scheduler sending each day's report to an HTTPS collector and by mail,
// both parsing back to the recorded counts, report deliveries never
// counted, and a restart over the same FileStore sending nothing twice.
// STD-86, STD-88, STD-89, STD-90.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, fs)
	ctx := context.Background()
	// The mail function stands for Deliver: it reports its own session
	// through the same Recorder, which must drop it.
	w.box.hook = func(ctx context.Context) {
		if err := w.rec.Record(ctx, Result{
			Policy:     Policy{Type: PolicyNone, Domain: "reports.example"},
			ResultType: ResultSTARTTLSNotSupported,
		}); err != nil {
			t.Error(err)
		}
	}
	sender := netip.MustParseAddr("192.0.2.25")
	mx1 := netip.MustParseAddr("198.51.100.1")

	// Day 1, under MTA-STS: 5 good sessions, 2 with an expired certificate
	// on mx1, 1 without STARTTLS on mx2.
	w.clock.set(time.Date(2024, 9, 2, 10, 0, 0, 0, time.UTC))
	for i := 0; i < 5; i++ {
		w.record(t, Result{Policy: stsPolicy, SendingIP: sender, ReceivingMXHostname: "mx1.example.com", ReceivingIP: mx1})
	}
	for i := 0; i < 2; i++ {
		w.record(t, Result{Policy: stsPolicy, ResultType: ResultCertificateExpired, SendingIP: sender,
			ReceivingMXHostname: "mx1.example.com", ReceivingMXHelo: "mx1.example.com", ReceivingIP: mx1})
	}
	w.record(t, Result{Policy: stsPolicy, ResultType: ResultSTARTTLSNotSupported, SendingIP: sender, ReceivingMXHostname: "mx2.example.com"})

	// Day 2, under DANE: the TLSA records of mx1 do not match (3 sessions),
	// mx2 verifies (4 sessions).
	w.clock.set(time.Date(2024, 9, 3, 10, 0, 0, 0, time.UTC))
	mx2TLSA := Policy{Type: PolicyTLSA, Domain: testDomain, Strings: []string{"3 1 1 aabb"}, MXHosts: []string{"mx2.example.com"}}
	for i := 0; i < 3; i++ {
		w.record(t, Result{Policy: tlsaPolicy, ResultType: ResultTLSAInvalid, SendingIP: sender,
			ReceivingMXHostname: "mx1.example.com", ReceivingIP: mx1, FailureReasonCode: "no TLSA record matched"})
	}
	for i := 0; i < 4; i++ {
		w.record(t, Result{Policy: mx2TLSA, SendingIP: sender, ReceivingMXHostname: "mx2.example.com"})
	}

	// 10:00 on day 2: day 1's report is due (it was due by 05:00), day 2's
	// is not.
	w.run(t)
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Fatalf("after the day 2 pass: %d posts, %d mails; want 1, 1", p, m)
	}
	w.clock.set(time.Date(2024, 9, 5, 0, 0, 0, 0, time.UTC))
	w.run(t)
	if p, m := w.counts(); p != 2 || m != 2 {
		t.Fatalf("after the day 3 pass: %d posts, %d mails; want 2, 2", p, m)
	}

	wantDay := [2][]wantCounts{
		{{domain: testDomain, policyType: "sts", mxHosts: []string{"*.example.com"}, summary: Summary{5, 3}, details: []int64{2, 1}}},
		{
			{domain: testDomain, policyType: "tlsa", mxHosts: []string{"mx1.example.com"}, summary: Summary{0, 3}, details: []int64{3}},
			{domain: testDomain, policyType: "tlsa", mxHosts: []string{"mx2.example.com"}, summary: Summary{4, 0}},
		},
	}
	days := []Day{day("2024-09-02"), day("2024-09-03")}
	posted, types := w.coll.received()
	mails := w.box.sent()
	subject := regexp.MustCompile(`^Report Domain: example\.com Submitter: mail\.sender\.example Report-ID: <([0-9a-f]+)@mail\.sender\.example>$`)
	for i, d := range days {
		// HTTPS.
		checkCounts(t, posted[i], wantDay[i])
		if types[i] != "application/tlsrpt+gzip" {
			t.Errorf("day %s posted as %q", d, types[i])
		}
		if !posted[i].DateRange.Start.Equal(d.Start()) || !posted[i].DateRange.End.Equal(d.End()) {
			t.Errorf("day %s: date range %+v", d, posted[i].DateRange)
		}
		// Mail: the MIME structure, the headers, the attachment.
		m := mails[i]
		checkLines(t, m.data, 78)
		msg, err := mail.ReadMessage(bytes.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get("TLS-Report-Domain") != testDomain || msg.Header.Get("TLS-Report-Submitter") != "mail.sender.example" {
			t.Errorf("day %s: TLS-Report headers %q %q", d, msg.Header.Get("TLS-Report-Domain"), msg.Header.Get("TLS-Report-Submitter"))
		}
		sm := subject.FindStringSubmatch(msg.Header.Get("Subject"))
		if sm == nil {
			t.Fatalf("day %s: Subject %q", d, msg.Header.Get("Subject"))
		}
		data, fn := reportAttachment(t, msg)
		rep, err := ParseReport(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, rep, wantDay[i])
		if rep.ReportID != sm[1] || rep.ReportID != posted[i].ReportID {
			t.Errorf("day %s: report IDs: mail %q, subject %q, post %q", d, rep.ReportID, sm[1], posted[i].ReportID)
		}
		if want := FileName("mail.sender.example", testDomain, d.Start(), d.End(), rep.ReportID); fn != want {
			t.Errorf("day %s: file name %q, want %q", d, fn, want)
		}
		if !m.marked {
			t.Errorf("day %s: the MailFunc's context was not marked WithReportDelivery", d)
		}
	}
	// The report's own sessions were not counted.
	keys, _ := fs.Keys(ctx)
	for _, k := range keys {
		if k.Domain != testDomain {
			t.Errorf("a report delivery was counted: %v", k)
		}
	}

	// Restart: a new FileStore, Recorder and Scheduler over the directory.
	fs2, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.store = fs2
	w.rec = &Recorder{Store: fs2, Clock: w.clock}
	w.sched = w.newScheduler()
	for _, at := range []time.Time{w.clock.Now(), w.clock.Now().Add(26 * time.Hour), w.clock.Now().Add(72 * time.Hour)} {
		w.clock.set(at)
		w.run(t)
	}
	if p, m := w.counts(); p != 2 || m != 2 {
		t.Errorf("after the restart: %d posts, %d mails; want 2, 2", p, m)
	}
}

// A restart between a sent mail and a failed post sends only the post.
func TestEndToEndRestartMidway(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, fs)
	w.record(t, stsResult())
	w.coll.setStatus(http.StatusBadGateway)
	w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	next := w.run(t)
	if p, m := w.counts(); p != 0 || m != 1 {
		t.Fatalf("%d posts, %d mails; want 0, 1", p, m)
	}

	fs2, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.store = fs2
	w.rec = &Recorder{Store: fs2, Clock: w.clock}
	w.sched = w.newScheduler()
	w.coll.setStatus(0)
	w.clock.set(next)
	w.run(t)
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Errorf("after the restart: %d posts, %d mails; want 1, 1", p, m)
	}
	if st := w.state(t, day("2024-09-03")); !st.Done || st.Attempts != 2 {
		t.Errorf("state %+v", st)
	}
}
