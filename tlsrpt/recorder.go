package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// Limits on the text a Result carries into a report. Longer values are cut
// (at a character boundary), so a server's greeting or reply cannot bloat
// the store or split one failure into many.
const (
	maxFieldLen         = 255  // names, addresses, reason code
	maxInfoLen          = 1024 // additional-information
	maxPolicyStrings    = 100  // policy-string and mx-host entries each
	maxPolicyStringsLen = 64 << 10
	maxRUAs             = 10 // reporting URIs sent to per report
)

// reportDeliveryKey marks a context as sending a report.
type reportDeliveryKey struct{}

// WithReportDelivery returns a context that marks the work done under it as
// the delivery of a TLS-RPT report. The Scheduler passes such a context to
// its MailFunc and HTTP requests. A Recorder drops results recorded under
// it, so that delivering reports never produces reports about itself
// (RFC 8460 §5.3: the session "SHOULD NOT" be included in the next report);
// and a delivery function that sees IsReportDelivery(ctx) knows it must
// deliver the report even when TLS to the reporting domain fails.
func WithReportDelivery(ctx context.Context) context.Context {
	return context.WithValue(ctx, reportDeliveryKey{}, true)
}

// IsReportDelivery reports whether ctx was marked by WithReportDelivery.
func IsReportDelivery(ctx context.Context) bool {
	v, _ := ctx.Value(reportDeliveryKey{}).(bool)
	return v
}

// Recorder counts the results of session attempts per policy domain, UTC
// day and policy, and writes the counts to a Store. It is safe for
// concurrent use.
//
// Record only adds to counts held in memory, so it never waits for the
// disk; Flush writes them out. A Scheduler given the Recorder flushes it
// before each pass and every FlushInterval; a program that records without
// a Scheduler calls Flush itself, and always before it exits.
//
// A delivering program (the root package's Deliver) calls Record once per
// session attempt with the context of the delivery, so that results of
// report deliveries, made under WithReportDelivery, are dropped.
type Recorder struct {
	// Store receives the counts. Required.
	Store Store
	// Clock gives the time for results without one; nil means the system
	// clock.
	Clock Clock

	mu      sync.Mutex
	pending map[Key]*accumulator
}

// NewRecorder returns a Recorder that writes to s.
func NewRecorder(s Store) *Recorder { return &Recorder{Store: s} }

// Record counts one session attempt's result under its policy domain and
// the UTC day of res.Time (now if zero). A result recorded under a context
// marked by WithReportDelivery is dropped and Record returns nil. A result
// that cannot be counted (no valid policy domain, an unknown policy type or
// result type) is dropped with an error matching ErrInvalidResult; a
// delivering program logs it and carries on.
func (r *Recorder) Record(ctx context.Context, res Result) error {
	if IsReportDelivery(ctx) {
		return nil
	}
	k, pr, err := r.count(&res)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[Key]*accumulator)
	}
	acc := r.pending[k]
	if acc == nil {
		acc = &accumulator{}
		r.pending[k] = acc
	}
	acc.addOne(pr)
	return nil
}

// count turns a Result into the key and counts it adds to.
func (r *Recorder) count(res *Result) (Key, *PolicyResult, error) {
	fail := func(format string, args ...any) (Key, *PolicyResult, error) {
		return Key{}, nil, fmt.Errorf("tlsrpt: result not recorded: %s: %w", fmt.Sprintf(format, args...), ErrInvalidResult)
	}
	d, err := canonicalDomain(res.Policy.Domain)
	if err != nil {
		return fail("policy domain %q: %v", clip(res.Policy.Domain), err)
	}
	if !knownPolicyType(res.Policy.Type) {
		return fail("unknown policy type %q (want %q, %q or %q)", clip(res.Policy.Type), PolicyTLSA, PolicySTS, PolicyNone)
	}
	if res.ResultType != "" && !rfc8460.Known(res.ResultType) {
		return fail("unknown result type %q", clip(res.ResultType))
	}
	t := res.Time
	if t.IsZero() {
		t = now(r.Clock)
	}
	pr := &PolicyResult{Policy: Policy{
		Type:    res.Policy.Type,
		Domain:  d,
		Strings: cutList(res.Policy.Strings),
		MXHosts: cutList(res.Policy.MXHosts),
	}}
	for i, h := range pr.Policy.MXHosts {
		pr.Policy.MXHosts[i] = cut(h, maxFieldLen)
	}
	if res.Success() {
		pr.Summary.TotalSuccessfulSessionCount = 1
	} else {
		pr.Summary.TotalFailureSessionCount = 1
		pr.FailureDetails = []FailureDetail{{
			ResultType:            res.ResultType,
			SendingMTAIP:          addrString(res.SendingIP),
			ReceivingMXHostname:   cut(res.ReceivingMXHostname, maxFieldLen),
			ReceivingMXHelo:       cut(res.ReceivingMXHelo, maxFieldLen),
			ReceivingIP:           addrString(res.ReceivingIP),
			FailedSessionCount:    1,
			AdditionalInformation: cut(res.AdditionalInfo, maxInfoLen),
			FailureReasonCode:     cut(res.FailureReasonCode, maxFieldLen),
		}}
	}
	return Key{Domain: d, Day: DayOf(t)}, pr, nil
}

// Flush writes the counts recorded since the last Flush to the Store. The
// counts of a key whose write fails are kept and written by the next
// Flush; the error joins the failures.
func (r *Recorder) Flush(ctx context.Context) error {
	if r.Store == nil {
		return errors.New("tlsrpt: Recorder has no Store")
	}
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()

	var errs []error
	for k, acc := range pending {
		if err := r.Store.Add(ctx, k, acc.results()); err != nil {
			errs = append(errs, fmt.Errorf("tlsrpt: writing the counts of %s: %w", k, err))
			r.restore(k, acc)
		}
	}
	return errors.Join(errs...)
}

// restore puts counts that could not be written back into pending.
func (r *Recorder) restore(k Key, acc *accumulator) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[Key]*accumulator)
	}
	if cur := r.pending[k]; cur != nil {
		acc.add(cur.results())
	}
	r.pending[k] = acc
}

func knownPolicyType(t string) bool {
	return t == PolicyTLSA || t == PolicySTS || t == PolicyNone
}

// checkPolicyStrings checks the limits cutList applies.
func checkPolicyStrings(strs, mxs []string) error {
	if len(strs) > maxPolicyStrings || len(mxs) > maxPolicyStrings {
		return errors.New("too many policy strings or MX hosts")
	}
	n := 0
	for _, s := range strs {
		n += len(s)
	}
	if n > maxPolicyStringsLen {
		return errors.New("policy strings too long")
	}
	for _, h := range mxs {
		if len(h) > maxFieldLen {
			return errors.New("MX host too long")
		}
	}
	return nil
}

// cutList copies a list of policy strings within the limits: at most
// maxPolicyStrings entries and maxPolicyStringsLen octets in all.
func cutList(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(in), maxPolicyStrings))
	n := 0
	for _, s := range in {
		if len(out) == maxPolicyStrings || n+len(s) > maxPolicyStringsLen {
			break
		}
		s = cut(s, maxPolicyStringsLen)
		out = append(out, s)
		n += len(s)
	}
	return out
}

// cut returns s as valid UTF-8 of at most n octets.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// addrString returns an address as a report writes it, "" if a is not
// valid. IPv4-mapped IPv6 addresses are written as IPv4.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().WithZone("").String()
}
