package tlsrpt

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Limits on what is counted for one policy domain and day, so that what a
// store holds, and the report made of it, stay small whatever the network
// does. Sessions beyond them still count in the summaries.
const (
	// MaxPolicies is the number of distinct policies kept per domain and
	// day; results under further policies are dropped.
	MaxPolicies = 64
	// MaxFailureDetails is the number of distinct failure details kept per
	// domain and day; further failures count only in their summary.
	MaxFailureDetails = 1000
)

// Key names what a store holds: a policy domain (A-labels) and a UTC day.
type Key struct {
	// Domain is the policy domain in lower-case A-labels.
	Domain string
	// Day is the UTC day.
	Day Day
}

// String returns "domain day".
func (k Key) String() string { return k.Domain + " " + k.Day.String() }

// Aggregate is what a store holds for one policy domain and UTC day: the
// counts per policy, which become the report's "policies", and how far
// sending the report has got.
type Aggregate struct {
	Key
	// Policies holds the counts per policy, with their failure details.
	Policies []PolicyResult
	// Send is the state of sending the day's report.
	Send SendState
}

// SendState records how far sending a day's report has got, so that a
// restarted Scheduler neither sends a report twice nor forgets to retry.
type SendState struct {
	// ReportID is the ID of the report once it was first built; a report
	// sent again keeps its ID and file name.
	ReportID string `json:"report_id,omitempty"`
	// FirstAttempt is when sending was first attempted.
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	// Attempts counts the passes that tried to send the report.
	Attempts int `json:"attempts,omitempty"`
	// NextAttempt is when to try again after a failure.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Done is set when nothing more will be sent: every reporting URI got
	// the report or was given up, the domain publishes no TLS-RPT record,
	// or the retry period ended.
	Done bool `json:"done,omitempty"`
	// Outcome says why sending is done, or what failed last.
	Outcome string `json:"outcome,omitempty"`
	// Deliveries has one entry per reporting URI tried.
	Deliveries []Delivery `json:"deliveries,omitempty"`
}

// Delivery is the state of sending one report to one reporting URI.
type Delivery struct {
	// URI is the reporting URI as published.
	URI string `json:"uri"`
	// Sent is when the report was accepted; zero until then.
	Sent time.Time `json:"sent,omitzero"`
	// Attempts counts the attempts to send to this URI.
	Attempts int `json:"attempts,omitempty"`
	// LastError is what failed at the last attempt.
	LastError string `json:"last_error,omitempty"`
	// GaveUp is set when the failure is permanent (ErrUnsupportedURI,
	// ErrPermanent).
	GaveUp bool `json:"gave_up,omitempty"`
}

// delivery returns the entry for uri, adding one if there is none.
func (s *SendState) delivery(uri string) *Delivery {
	for i := range s.Deliveries {
		if s.Deliveries[i].URI == uri {
			return &s.Deliveries[i]
		}
	}
	s.Deliveries = append(s.Deliveries, Delivery{URI: uri})
	return &s.Deliveries[len(s.Deliveries)-1]
}

func (s SendState) clone() SendState {
	s.Deliveries = slices.Clone(s.Deliveries)
	return s
}

func clonePolicyResults(ps []PolicyResult) []PolicyResult {
	if ps == nil {
		return nil
	}
	out := make([]PolicyResult, len(ps))
	for i, p := range ps {
		out[i] = PolicyResult{
			Policy:         clonePolicy(p.Policy),
			Summary:        p.Summary,
			FailureDetails: slices.Clone(p.FailureDetails),
		}
	}
	return out
}

func clonePolicy(p Policy) Policy {
	p.Strings = slices.Clone(p.Strings)
	p.MXHosts = slices.Clone(p.MXHosts)
	return p
}

// addCount adds two counts, saturating instead of overflowing.
func addCount(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// policyKey is the identity of a policy: sessions under equal policies are
// counted together.
func policyKey(p *Policy) string {
	var b strings.Builder
	b.WriteString(p.Type)
	b.WriteByte(0)
	b.WriteString(p.Domain)
	for _, s := range p.Strings {
		b.WriteByte(1)
		b.WriteString(s)
	}
	b.WriteByte(0)
	for _, s := range p.MXHosts {
		b.WriteByte(2)
		b.WriteString(s)
	}
	return b.String()
}

// accumulator adds up PolicyResults under the limits above. The zero value
// is empty and ready.
type accumulator struct {
	policies []*policyAcc
	index    map[string]*policyAcc
	details  int
}

type policyAcc struct {
	res     PolicyResult
	details map[FailureDetail]int // detail without its count → index
}

// newAccumulator returns an accumulator holding ps.
func newAccumulator(ps []PolicyResult) *accumulator {
	a := &accumulator{}
	a.add(ps)
	return a
}

// add adds the counts of ps.
func (a *accumulator) add(ps []PolicyResult) {
	for i := range ps {
		a.addOne(&ps[i])
	}
}

func (a *accumulator) addOne(p *PolicyResult) {
	if a.index == nil {
		a.index = make(map[string]*policyAcc)
	}
	k := policyKey(&p.Policy)
	pa := a.index[k]
	if pa == nil {
		if len(a.policies) >= MaxPolicies {
			return
		}
		pa = &policyAcc{res: PolicyResult{Policy: clonePolicy(p.Policy)}, details: make(map[FailureDetail]int)}
		a.index[k] = pa
		a.policies = append(a.policies, pa)
	}
	pa.res.Summary.TotalSuccessfulSessionCount = addCount(pa.res.Summary.TotalSuccessfulSessionCount, p.Summary.TotalSuccessfulSessionCount)
	pa.res.Summary.TotalFailureSessionCount = addCount(pa.res.Summary.TotalFailureSessionCount, p.Summary.TotalFailureSessionCount)
	for _, d := range p.FailureDetails {
		n := d.FailedSessionCount
		d.FailedSessionCount = 0
		if i, ok := pa.details[d]; ok {
			fd := &pa.res.FailureDetails[i]
			fd.FailedSessionCount = addCount(fd.FailedSessionCount, n)
			continue
		}
		if a.details >= MaxFailureDetails {
			continue
		}
		a.details++
		pa.details[d] = len(pa.res.FailureDetails)
		d.FailedSessionCount = n
		pa.res.FailureDetails = append(pa.res.FailureDetails, d)
	}
}

// results returns a copy of the counts, policies in the order they were
// first added.
func (a *accumulator) results() []PolicyResult {
	out := make([]PolicyResult, len(a.policies))
	for i, pa := range a.policies {
		out[i] = PolicyResult{
			Policy:         clonePolicy(pa.res.Policy),
			Summary:        pa.res.Summary,
			FailureDetails: slices.Clone(pa.res.FailureDetails),
		}
	}
	return out
}
