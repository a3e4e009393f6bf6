package tlsrpt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mailbox is a MailFunc that keeps what it is given.
type mailbox struct {
	mu   sync.Mutex
	msgs []sentMail
	fail error // returned instead of accepting, if set
	got  chan struct{}
	hook func(ctx context.Context) // called with each call's context
}

type sentMail struct {
	from   string
	to     []string
	data   []byte
	marked bool // ctx was marked WithReportDelivery
}

func (m *mailbox) send(ctx context.Context, from string, to []string, msg io.Reader) error {
	data, err := io.ReadAll(msg)
	if err != nil {
		return err
	}
	if m.hook != nil {
		m.hook(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.msgs = append(m.msgs, sentMail{from: from, to: to, data: data, marked: IsReportDelivery(ctx)})
	if m.got != nil {
		m.got <- struct{}{}
	}
	return nil
}

func (m *mailbox) sent() []sentMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sentMail(nil), m.msgs...)
}

func (m *mailbox) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// world is a Scheduler with an in-process collector, a mailbox, a fake
// resolver and a fake clock, at noon on 2024-09-03.
type world struct {
	clock *fakeClock
	store Store
	rec   *Recorder
	dns   *fakeResolver
	coll  *collector
	box   *mailbox
	sched *Scheduler
}

const testDomain = "example.com"

func newWorld(t *testing.T, store Store) *world {
	w := &world{
		clock: newFakeClock(time.Date(2024, 9, 3, 12, 0, 0, 0, time.UTC)),
		store: store,
		dns:   &fakeResolver{},
		coll:  newCollector(t),
		box:   &mailbox{},
	}
	w.rec = &Recorder{Store: store, Clock: w.clock}
	w.dns.set("_smtp._tls."+testDomain+".", "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example,"+w.coll.srv.URL+"/v1/tlsrpt")
	w.sched = w.newScheduler()
	return w
}

// newScheduler returns a Scheduler over the world, as a restarted program
// would make it.
func (w *world) newScheduler() *Scheduler {
	return &Scheduler{
		Store:     w.store,
		Submitter: testSubmitter,
		Recorder:  w.rec,
		Resolver:  w.dns,
		HTTP:      &HTTPPoster{RootCAs: w.coll.pool()},
		Mail:      w.box.send,
		Clock:     w.clock,
	}
}

func (w *world) record(t *testing.T, res Result) {
	t.Helper()
	if err := w.rec.Record(context.Background(), res); err != nil {
		t.Fatal(err)
	}
}

func (w *world) run(t *testing.T) time.Time {
	t.Helper()
	next, err := w.sched.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return next
}

func (w *world) state(t *testing.T, d Day) SendState {
	t.Helper()
	agg, err := w.store.Load(context.Background(), Key{testDomain, d})
	if err != nil {
		t.Fatal(err)
	}
	return agg.Send
}

func (w *world) counts() (posted, mailed int) {
	reps, _ := w.coll.received()
	return len(reps), len(w.box.sent())
}

// Reports of one day are spread over Window after Delay, the same way on
// every call.
func TestSchedulerFirstDue(t *testing.T) {
	s := &Scheduler{Submitter: testSubmitter}
	d := day("2024-09-03")
	start := d.AddDays(1).Start().Add(DefaultDelay)
	seen := make(map[time.Time]bool)
	for i := 0; i < 100; i++ {
		k := Key{fmt.Sprintf("d%d.example", i), d}
		due := s.FirstDue(k)
		if due.Before(start) || !due.Before(start.Add(DefaultWindow)) {
			t.Errorf("%s due at %v, outside [%v, +%v)", k, due, start, DefaultWindow)
		}
		if due != s.FirstDue(k) {
			t.Errorf("%s: FirstDue is not stable", k)
		}
		seen[due] = true
	}
	if len(seen) < 90 {
		t.Errorf("100 domains share %d times: not spread", len(seen))
	}
	s2 := &Scheduler{Submitter: testSubmitter, Delay: 10 * time.Minute, Window: time.Hour}
	if due := s2.FirstDue(Key{"a.example", d}); due.Before(d.AddDays(1).Start().Add(10*time.Minute)) || !due.Before(d.AddDays(1).Start().Add(70*time.Minute)) {
		t.Errorf("configured delay and window: due %v", due)
	}
}

// A day's report goes out once, when due, to every URI; today's counts wait.
func TestSchedulerSendsOnceWhenDue(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	res := stsResult()
	res.Time = w.clock.Now()
	w.record(t, res)
	due := w.sched.FirstDue(Key{testDomain, day("2024-09-03")})

	if next := w.run(t); !next.Equal(due) {
		t.Errorf("next = %v, want %v", next, due)
	}
	w.clock.set(due.Add(-time.Second))
	w.run(t)
	if p, m := w.counts(); p+m != 0 {
		t.Fatalf("sent before due: %d posts, %d mails", p, m)
	}
	w.clock.set(due)
	if next := w.run(t); !next.IsZero() {
		t.Errorf("next = %v after the only report was sent", next)
	}
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Fatalf("%d posts, %d mails; want 1, 1", p, m)
	}
	st := w.state(t, day("2024-09-03"))
	if !st.Done || len(st.Deliveries) != 2 || st.Deliveries[0].Sent.IsZero() || st.Deliveries[1].Sent.IsZero() || st.ReportID == "" {
		t.Errorf("send state %+v", st)
	}
	mail := w.box.sent()[0]
	if mail.from != "postmaster@mail.sender.example" || len(mail.to) != 1 || mail.to[0] != "tlsrpt@reports.example" || !mail.marked {
		t.Errorf("mail from %q to %q, marked %v", mail.from, mail.to, mail.marked)
	}
	w.clock.advance(48 * time.Hour)
	w.run(t)
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Errorf("sent again: %d posts, %d mails", p, m)
	}
}

// STD-85 in the scheduler: no valid record means no report; a failed
// lookup is retried.
func TestSchedulerRecordLookup(t *testing.T) {
	name := "_smtp._tls." + testDomain + "."
	tests := []struct {
		name string
		txt  []string
		fail error
		done bool
	}{
		{"no record", nil, nil, true},
		{"two records", []string{"v=TLSRPTv1; rua=mailto:a@reports.example", "v=TLSRPTv1; rua=mailto:b@reports.example"}, nil, true},
		{"invalid record", []string{"v=TLSRPTv1; rua=nowhere"}, nil, true},
		{"lookup failure", nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, &MemoryStore{})
			w.dns.set(name, tt.txt...)
			if tt.txt == nil {
				w.dns.txt = nil
			}
			w.dns.setFail(name, tt.fail)
			w.record(t, stsResult())
			w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
			next := w.run(t)
			st := w.state(t, day("2024-09-03"))
			if st.Done != tt.done {
				t.Fatalf("done = %v, want %v (%s)", st.Done, tt.done, st.Outcome)
			}
			if p, m := w.counts(); p+m != 0 {
				t.Errorf("sent %d posts, %d mails", p, m)
			}
			if tt.done {
				return
			}
			if wait := next.Sub(w.clock.Now()); wait < minBackoff || wait > minBackoff*6/5 || !next.Equal(st.NextAttempt) {
				t.Errorf("retry in %v (next %v, state %v)", wait, next, st.NextAttempt)
			}
			// The lookup works again: the report goes out at the next attempt.
			w.dns.setFail(name, nil)
			w.dns.set(name, "v=TLSRPTv1; rua=mailto:a@reports.example")
			w.clock.set(next)
			w.run(t)
			if _, m := w.counts(); m != 1 || !w.state(t, day("2024-09-03")).Done {
				t.Errorf("after recovery: %d mails, state %+v", m, w.state(t, day("2024-09-03")))
			}
		})
	}
}

// A URI that failed is retried with backoff; one that accepted the report
// is never sent it again.
func TestSchedulerRetriesOnlyWhatFailed(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.record(t, stsResult())
	w.coll.setStatus(http.StatusServiceUnavailable)
	w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	next := w.run(t)
	st := w.state(t, day("2024-09-03"))
	if st.Done || st.Attempts != 1 || !strings.Contains(st.Outcome, "503") {
		t.Fatalf("after a failed post: %+v", st)
	}
	if _, m := w.counts(); m != 1 {
		t.Fatalf("%d mails, want 1", m)
	}
	w.clock.set(next.Add(-time.Second))
	w.run(t)
	if st := w.state(t, day("2024-09-03")); st.Attempts != 1 {
		t.Errorf("retried before the backoff: %+v", st)
	}
	w.coll.setStatus(0)
	w.clock.set(next)
	w.run(t)
	reps, _ := w.coll.received()
	if _, m := w.counts(); m != 1 || len(reps) != 1 {
		t.Errorf("%d posts accepted, %d mails; want 1, 1", len(reps), m)
	}
	st = w.state(t, day("2024-09-03"))
	if !st.Done || st.Attempts != 2 || st.Deliveries[1].Attempts != 2 || st.Deliveries[0].Attempts != 1 {
		t.Errorf("final state %+v", st)
	}
	// The retry is the same report: same ID.
	if reps[0].ReportID != st.ReportID {
		t.Errorf("retry sent report %q, the state says %q", reps[0].ReportID, st.ReportID)
	}
}

// RFC 8460 §5.5: retries stop RetryFor after the first attempt, with
// backoff growing between them.
func TestSchedulerGivesUp(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.record(t, stsResult())
	w.box.setFail(errors.New("451 try later"))
	first := w.sched.FirstDue(Key{testDomain, day("2024-09-03")})
	w.clock.set(first)
	var waits []time.Duration
	for i := 0; i < 50; i++ {
		next := w.run(t)
		if next.IsZero() {
			break
		}
		waits = append(waits, next.Sub(w.clock.Now()))
		w.clock.set(next)
	}
	st := w.state(t, day("2024-09-03"))
	if !st.Done || !strings.Contains(st.Outcome, "gave up") {
		t.Fatalf("state %+v", st)
	}
	if end := w.clock.Now(); end.Sub(first) <= DefaultRetryFor || end.Sub(first) > DefaultRetryFor+maxBackoff*6/5 {
		t.Errorf("gave up %v after the first attempt", end.Sub(first))
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] && waits[i-1] < maxBackoff {
			t.Errorf("backoff shrank: %v", waits)
		}
	}
	if st.Attempts < 5 || st.Attempts > 15 {
		t.Errorf("%d attempts in %v", st.Attempts, DefaultRetryFor)
	}
}

// URIs that can never work are given up at once, without retries.
func TestSchedulerPermanentFailures(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.dns.set("_smtp._tls."+testDomain+".", "v=TLSRPTv1; rua=http://reports.example/r,mailto:a@reports.example,mailto:b@reports.example")
	w.box.hook = func(ctx context.Context) {}
	w.box.setFail(fmt.Errorf("550 no such user: %w", ErrPermanent))
	w.record(t, stsResult())
	w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	if next := w.run(t); !next.IsZero() {
		t.Errorf("a retry is planned at %v", next)
	}
	st := w.state(t, day("2024-09-03"))
	if !st.Done || len(st.Deliveries) != 3 {
		t.Fatalf("state %+v", st)
	}
	for _, d := range st.Deliveries {
		if !d.GaveUp || d.Attempts != 1 || d.LastError == "" {
			t.Errorf("delivery %+v", d)
		}
	}

	// Without a MailFunc, mailto: URIs are given up with ErrNoMailer.
	w2 := newWorld(t, &MemoryStore{})
	w2.sched.Mail = nil
	w2.record(t, stsResult())
	w2.clock.set(w2.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	w2.run(t)
	st = w2.state(t, day("2024-09-03"))
	if !st.Done || !st.Deliveries[0].GaveUp || !strings.Contains(st.Deliveries[0].LastError, "no Mail function") || st.Deliveries[1].Sent.IsZero() {
		t.Errorf("state %+v", st)
	}
}

// At most ten distinct URIs get the report, whatever the record lists.
func TestSchedulerLimitsURIs(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	var uris []string
	for i := 0; i < 12; i++ {
		u := fmt.Sprintf("%s/r%d", w.coll.srv.URL, i)
		uris = append(uris, u, u)
	}
	w.dns.set("_smtp._tls."+testDomain+".", "v=TLSRPTv1; rua="+strings.Join(uris, ","))
	w.record(t, stsResult())
	w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	w.run(t)
	if p, _ := w.counts(); p != maxRUAs {
		t.Errorf("%d posts, want %d", p, maxRUAs)
	}
}

// Entries older than Retention are deleted, sent or not; newer ones stay.
func TestSchedulerPrunes(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.dns.txt = nil // no reports: only pruning is tested
	ctx := context.Background()
	for _, d := range []string{"2024-08-01", "2024-08-26", "2024-08-27", "2024-09-02"} {
		w.store.Add(ctx, Key{testDomain, day(d)}, []PolicyResult{success(stsPolicy, 1)})
	}
	w.run(t) // now 2024-09-03 12:00; retention 7 days: 2024-08-27 is kept
	keys, _ := w.store.Keys(ctx)
	want := []Key{{testDomain, day("2024-08-27")}, {testDomain, day("2024-09-02")}}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("kept %v, want %v", keys, want)
	}
	// A retention shorter than the retry period is lengthened.
	s := &Scheduler{Retention: time.Hour}
	if r := s.retention(); r < 48*time.Hour+DefaultDelay+DefaultWindow+DefaultRetryFor {
		t.Errorf("retention %v", r)
	}
}

// Run flushes the Recorder, sleeps on the Clock until the report is due,
// sends it, and ends with ctx.
func TestSchedulerRun(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.clock.asked = make(chan time.Duration)
	w.box.got = make(chan struct{}, 1)
	w.record(t, stsResult()) // only in the Recorder: Run must flush it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.sched.Run(ctx) }()

	// First pass at noon: nothing due; Run sleeps one Interval.
	if d := <-w.clock.asked; d != DefaultInterval {
		t.Errorf("first sleep %v, want %v", d, DefaultInterval)
	}
	due := w.sched.FirstDue(Key{testDomain, day("2024-09-03")})
	// Jump to just before the report is due: Run sleeps exactly until then.
	w.clock.set(due.Add(-10 * time.Second))
	if d := <-w.clock.asked; d != 10*time.Second {
		t.Errorf("sleep %v, want 10s", d)
	}
	w.clock.set(due)
	<-w.box.got
	<-w.clock.asked // the pass ended
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Errorf("%d posts, %d mails", p, m)
	}
	if err := (&Scheduler{}).Run(context.Background()); err == nil {
		t.Error("Run without a Store succeeded")
	}
	if err := (&Scheduler{Store: &MemoryStore{}}).Run(context.Background()); err == nil {
		t.Error("Run without a Submitter succeeded")
	}
}

// A cancelled pass sends nothing more and leaves the state to retry.
func TestSchedulerCancelled(t *testing.T) {
	w := newWorld(t, &MemoryStore{})
	w.record(t, stsResult())
	ctx, cancel := context.WithCancel(context.Background())
	w.box.hook = func(context.Context) { cancel() } // cancel during the mail
	w.box.setFail(context.Canceled)
	w.clock.set(w.sched.FirstDue(Key{testDomain, day("2024-09-03")}))
	if _, err := w.sched.RunOnce(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce = %v", err)
	}
	if p, _ := w.counts(); p != 0 {
		t.Errorf("posted after cancellation")
	}
	// The next pass sends everything.
	w.box.setFail(nil)
	w.box.hook = nil
	w.run(t)
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Errorf("%d posts, %d mails", p, m)
	}
	if !bytes.Contains(w.box.sent()[0].data, []byte("TLS-Report-Domain: example.com")) {
		t.Error("mail lacks TLS-Report-Domain")
	}
}

// A corrupt entry is reported once and does not stop the other reports.
func TestSchedulerCorruptEntry(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, fs)
	w.record(t, stsResult())
	if err := os.WriteFile(filepath.Join(dir, "2024-09-03_broken.example.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.clock.set(time.Date(2024, 9, 4, 6, 0, 0, 0, time.UTC)) // both due
	if _, err := w.sched.RunOnce(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("first pass: %v, want ErrCorrupt", err)
	}
	if p, m := w.counts(); p != 1 || m != 1 {
		t.Errorf("%d posts, %d mails; want 1, 1", p, m)
	}
	w.clock.advance(time.Hour)
	if _, err := w.sched.RunOnce(context.Background()); err != nil {
		t.Errorf("second pass: %v, want the corrupt entry reported only once", err)
	}
}
