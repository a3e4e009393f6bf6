package tlsrpt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Defaults of the Scheduler.
const (
	// DefaultDelay is how long after the end of a UTC day its reports start
	// to go out: RFC 8460 §4.1 asks for some delay, so that receivers are
	// not flooded at midnight.
	DefaultDelay = time.Hour
	// DefaultWindow is the period over which the reports of one day are
	// spread, after the delay.
	DefaultWindow = 4 * time.Hour
	// DefaultRetryFor is how long a report that could not be delivered is
	// retried after the first attempt (RFC 8460 §5.5: up to 24 hours).
	DefaultRetryFor = 24 * time.Hour
	// DefaultRetention is how long counts and send states are kept after
	// their day, so that a restart within it never sends a report twice.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultInterval is how often Run flushes the Recorder and looks for
	// reports that are due.
	DefaultInterval = time.Minute
	// DefaultMailTimeout bounds one call of the MailFunc.
	DefaultMailTimeout = 10 * time.Minute
)

// Backoff between attempts to send a day's report: 5 minutes, doubling up
// to 6 hours, each lengthened by up to a fifth.
const (
	minBackoff = 5 * time.Minute
	maxBackoff = 6 * time.Hour
)

// Scheduler sends each policy domain's daily report once, to every
// reporting URI the domain publishes, and remembers in the Store what it
// sent.
//
// For each policy domain and UTC day before today with counts in the Store,
// it waits until Delay after the day ended plus an offset within Window
// (derived from the submitter, domain and day, so the reports of one day
// are spread out and a restart keeps the same times), then looks up the
// domain's _smtp._tls record (RFC 8460 §3), builds the report, and sends it
// to the first ten distinct reporting URIs: https: by HTTP POST
// (HTTPPoster), mailto: by Mail. A URI that accepted the report is never
// sent it again, across restarts too: the send state is saved in the Store
// after each success. Failures are retried with backoff (5 minutes
// doubling to 6 hours) for RetryFor after the first attempt; URIs that can
// never work (another scheme, ErrNoMailer, ErrPermanent) are given up at
// once. A domain without a valid record gets no report. Counts added to a
// day after its report was sent are not reported. Entries older than
// Retention are deleted.
//
// Sending a report runs under WithReportDelivery, so its own sessions are
// not counted. Use one Scheduler per Store, and do not call RunOnce or Run
// while another call of either is running.
type Scheduler struct {
	// Store holds the counts and the send states. Required.
	Store Store
	// Submitter describes the sender of the reports. Required.
	Submitter Submitter
	// Recorder, if set, is flushed before each pass, so that its counts
	// are in the Store before reports are built.
	Recorder *Recorder
	// Resolver looks up _smtp._tls records; nil means net.DefaultResolver.
	Resolver TXTResolver
	// HTTP posts to https: URIs; nil means a zero HTTPPoster.
	HTTP *HTTPPoster
	// Mail sends to mailto: URIs; without it, mailto: URIs are given up
	// with ErrNoMailer. See MailFunc for its contract.
	Mail MailFunc
	// MailTimeout bounds one call of Mail; zero means DefaultMailTimeout.
	MailTimeout time.Duration
	// Delay, Window, RetryFor, Retention and Interval default to the
	// Default… constants when zero. Retention is at least two days plus
	// Delay, Window and RetryFor, so that nothing is deleted that may
	// still be sent.
	Delay, Window, RetryFor, Retention, Interval time.Duration
	// Clock tells the time; nil means the system clock.
	Clock Clock
	// Logger receives a record of each report sent, retried or given up;
	// nil discards them.
	Logger *slog.Logger

	httpOnce    sync.Once
	defaultHTTP *HTTPPoster
	mu          sync.Mutex
	done        map[Key]bool // keys whose sending is done, known this run
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Scheduler) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Scheduler) poster() *HTTPPoster {
	if s.HTTP != nil {
		return s.HTTP
	}
	s.httpOnce.Do(func() { s.defaultHTTP = &HTTPPoster{} })
	return s.defaultHTTP
}

// hashFraction returns a number in [0, 1) derived from parts.
func hashFraction(parts ...string) float64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

// FirstDue returns when the report of k is first due: Delay after the end
// of its day, plus an offset within Window derived from the submitter
// domain, the policy domain and the day.
func (s *Scheduler) FirstDue(k Key) time.Time {
	window := orDefault(s.Window, DefaultWindow)
	off := time.Duration(float64(window) * hashFraction(s.Submitter.Domain, k.Domain, k.Day.String()))
	return k.Day.AddDays(1).Start().Add(orDefault(s.Delay, DefaultDelay) + off).Truncate(time.Second)
}

// backoff returns the wait after the n-th failed attempt (n ≥ 1).
func backoff(k Key, n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d + time.Duration(float64(d)*0.2*hashFraction(k.Domain, k.Day.String(), strconv.Itoa(n)))
}

// RunOnce makes one pass: it flushes the Recorder, deletes entries older
// than Retention, and sends the reports that are due. It returns when the
// next report will be due (zero if none is pending) and the errors of the
// Recorder and the Store; failures to send are logged and retried, not
// returned. It returns early with ctx.Err() when ctx ends.
func (s *Scheduler) RunOnce(ctx context.Context) (next time.Time, err error) {
	if s.Store == nil {
		return time.Time{}, errors.New("tlsrpt: Scheduler has no Store")
	}
	if _, err := s.Submitter.check(); err != nil {
		return time.Time{}, err
	}
	var errs []error
	if s.Recorder != nil {
		if err := s.Recorder.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	keys, err := s.Store.Keys(ctx)
	if err != nil {
		return time.Time{}, errors.Join(append(errs, fmt.Errorf("tlsrpt: listing the store: %w", err))...)
	}
	now := now(s.Clock)
	today := DayOf(now)
	oldest := DayOf(now.Add(-s.retention()))
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		if k.Day.Before(oldest) {
			if err := s.Store.Delete(ctx, k); err != nil {
				errs = append(errs, err)
			}
			s.forget(k)
			continue
		}
		if s.isDone(k) {
			continue
		}
		due := s.FirstDue(k)
		if !k.Day.Before(today) || now.Before(due) {
			later(due)
			continue
		}
		agg, err := s.Store.Load(ctx, k)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				// Reported once; the entry is left alone until it is
				// pruned or repaired.
				s.markDone(k)
			}
			if !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if agg.Send.Done {
			s.markDone(k)
			continue
		}
		if now.Before(agg.Send.NextAttempt) {
			later(agg.Send.NextAttempt)
			continue
		}
		if err := s.send(ctx, agg, now); err != nil {
			errs = append(errs, err)
		}
		if agg.Send.Done {
			s.markDone(k)
		} else {
			later(agg.Send.NextAttempt)
		}
	}
	if err := ctx.Err(); err != nil {
		return next, err
	}
	return next, errors.Join(errs...)
}

// retention returns Retention, made long enough that no entry is deleted
// while its report may still be sent.
func (s *Scheduler) retention() time.Duration {
	least := 48*time.Hour + orDefault(s.Delay, DefaultDelay) + orDefault(s.Window, DefaultWindow) + orDefault(s.RetryFor, DefaultRetryFor)
	return max(orDefault(s.Retention, DefaultRetention), least)
}

func (s *Scheduler) isDone(k Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[k]
}

func (s *Scheduler) markDone(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(map[Key]bool)
	}
	s.done[k] = true
}

func (s *Scheduler) forget(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.done, k)
}

// Run calls RunOnce until ctx ends: again when the next report is due, and
// at least every Interval, so that the Recorder is flushed and new work is
// found. Errors of a pass are logged. It returns ctx.Err(), or at once an
// error if the Store or the Submitter is missing or invalid.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Store == nil {
		return errors.New("tlsrpt: Scheduler has no Store")
	}
	if _, err := s.Submitter.check(); err != nil {
		return err
	}
	interval := orDefault(s.Interval, DefaultInterval)
	for {
		next, err := s.RunOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.logger().Warn("tlsrpt: scheduler pass failed", slog.Any("error", err))
		}
		wait := interval
		if !next.IsZero() {
			if d := next.Sub(now(s.Clock)); d < wait {
				wait = max(d, 0)
			}
		}
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// sleep waits for d on the Clock, or until ctx ends.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) error {
	var after <-chan time.Time
	if s.Clock != nil {
		after = s.Clock.After(d)
	} else {
		t := time.NewTimer(d)
		defer t.Stop()
		after = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-after:
		return nil
	}
}

// send makes one attempt to send the report of agg and saves the send
// state; it returns only the errors of the Store.
func (s *Scheduler) send(ctx context.Context, agg *Aggregate, now time.Time) error {
	st := &agg.Send
	log := s.logger().With(slog.String("domain", agg.Domain), slog.String("day", agg.Day.String()))
	save := func() error {
		if err := s.Store.SetSendState(ctx, agg.Key, *st); err != nil {
			return fmt.Errorf("tlsrpt: saving the send state of %s: %w", agg.Key, err)
		}
		return nil
	}
	finish := func(outcome string) error {
		st.Done, st.Outcome, st.NextAttempt = true, outcome, time.Time{}
		return save()
	}
	if st.FirstAttempt.IsZero() {
		st.FirstAttempt = now
	}
	if retryFor := orDefault(s.RetryFor, DefaultRetryFor); now.Sub(st.FirstAttempt) > retryFor {
		log.Warn("tlsrpt: giving up on the report", slog.String("last", st.Outcome))
		return finish(fmt.Sprintf("gave up after %d attempts over %s: %s", st.Attempts, retryFor, st.Outcome))
	}
	if len(agg.Policies) == 0 {
		return finish("nothing to report")
	}
	st.Attempts++
	retry := func(outcome string) error {
		st.Outcome = outcome
		st.NextAttempt = now.Add(backoff(agg.Key, st.Attempts))
		log.Info("tlsrpt: report not sent yet, will retry", slog.String("error", outcome), slog.Time("next", st.NextAttempt))
		return save()
	}

	rec, err := LookupRecord(ctx, s.Resolver, agg.Domain)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr // not an attempt: the state is left as it was
		}
		if errors.Is(err, ErrDNS) {
			return retry(err.Error())
		}
		log.Debug("tlsrpt: no report for the domain", slog.Any("reason", err))
		return finish("no report: " + err.Error())
	}
	sub, _ := s.Submitter.check() // checked by RunOnce
	if st.ReportID == "" {
		st.ReportID = NewReportID()
		if err := save(); err != nil {
			return err
		}
	}
	rep, err := sub.Build(agg, st.ReportID)
	if err != nil {
		return finish("cannot build the report: " + err.Error())
	}
	gz, err := rep.Gzip()
	if err != nil {
		return finish("cannot build the report: " + err.Error())
	}

	pending, sent := 0, 0
	var lastErr error
	for _, uri := range distinct(rec.RUAs, maxRUAs) {
		d := st.delivery(uri)
		if !d.Sent.IsZero() {
			sent++
			continue
		}
		if d.GaveUp {
			continue
		}
		d.Attempts++
		err := s.sendTo(ctx, &sub, rep, gz, uri, now)
		if cerr := ctx.Err(); cerr != nil && err != nil {
			return cerr // what was sent is saved; the rest waits for the next run
		}
		if err == nil {
			d.Sent, d.LastError = now, ""
			sent++
			log.Info("tlsrpt: report sent", slog.String("uri", redactURI(uri)), slog.String("report_id", rep.ReportID))
			if err := save(); err != nil {
				return err
			}
			continue
		}
		d.LastError = err.Error()
		if errors.Is(err, ErrUnsupportedURI) || errors.Is(err, ErrPermanent) {
			d.GaveUp = true
			log.Warn("tlsrpt: giving up on a reporting URI", slog.Any("error", err))
			continue
		}
		pending++
		lastErr = err
	}
	if pending > 0 {
		return retry(fmt.Sprintf("sent to %d URIs, %d still to do; last error: %v", sent, pending, lastErr))
	}
	return finish(fmt.Sprintf("sent to %d of %d URIs", sent, len(distinct(rec.RUAs, maxRUAs))))
}

// sendTo sends the report to one reporting URI.
func (s *Scheduler) sendTo(ctx context.Context, sub *Submitter, rep *Report, gz []byte, uri string, now time.Time) error {
	ctx = WithReportDelivery(ctx)
	d, err := parseDestination(uri)
	if err != nil {
		return &Error{Op: "send", Domain: rep.PolicyDomain(), Name: clip(redactURI(uri)), Err: err}
	}
	switch d.kind {
	case "https":
		return s.poster().Post(ctx, uri, gz)
	default: // mailto
		if s.Mail == nil {
			return &Error{Op: "mail", Domain: rep.PolicyDomain(), Name: d.display, Err: newKindError("cannot mail the report: the Scheduler has no Mail function", nil, ErrSend, ErrUnsupportedURI, ErrNoMailer)}
		}
		msg, err := sub.Message(rep, []string{d.addr}, now)
		if err != nil {
			return &Error{Op: "mail", Domain: rep.PolicyDomain(), Name: d.display, Err: newKindError("cannot build the message", err, ErrSend, ErrPermanent)}
		}
		mctx, cancel := context.WithTimeout(ctx, orDefault(s.MailTimeout, DefaultMailTimeout))
		defer cancel()
		if err := s.Mail(mctx, sub.From, []string{d.addr}, bytes.NewReader(msg)); err != nil {
			return &Error{Op: "mail", Domain: rep.PolicyDomain(), Name: d.display, Err: newKindError("the mail function failed", err, ErrSend)}
		}
		return nil
	}
}

// distinct returns the first n distinct strings of in.
func distinct(in []string, n int) []string {
	var out []string
	seen := make(map[string]bool)
	for _, s := range in {
		if len(out) == n {
			break
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
