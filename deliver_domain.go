package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// domainDelivery delivers one message to the recipients of one domain: one
// plan, then the plan's hosts in order until every recipient is settled.
type domainDelivery struct {
	d      *Deliverer
	m      *preparedMessage
	domain string
	rcpts  []string // each once, in the order of Envelope.To

	plan        *policy.Plan
	planReports []tlsrpt.Result
	attempts    []Attempt
	state       map[string]*rcptState
	results     map[string]*RecipientResult
}

// rcptState is where one recipient stands while hosts are tried.
type rcptState struct {
	res *RecipientResult // set once the recipient is settled
	// tempErr is the last failure that may go away (a host down, a TLS
	// failure, a 4xx reply); permErr the last that no other attempt of
	// this call can cure (an extension the host lacks, a host REQUIRETLS
	// may not use), which becomes the outcome if nothing temporary
	// happened.
	tempErr, permErr *DeliveryError
}

// run delivers to the domain and fills results.
func (dd *domainDelivery) run(ctx context.Context) {
	dd.state = make(map[string]*rcptState, len(dd.rcpts))
	for _, r := range dd.rcpts {
		dd.state[r] = &rcptState{}
	}
	defer dd.finish(ctx)
	plan, err := dd.d.planner.Plan(ctx, dd.domain)
	if err != nil {
		temporary, status := true, EnhancedCode{4, 3, 5} // the configuration
		switch {
		case errors.Is(err, policy.ErrInvalidDomain):
			temporary, status = false, EnhancedCode{5, 1, 2}
		case ctx.Err() != nil:
			status = EnhancedCode{4, 0, 0}
		}
		dd.failAll(&DeliveryError{Domain: dd.domain, Temporary: temporary, Status: status, Err: asPlanError(err)})
		return
	}
	dd.usePlan(ctx, plan)
	if plan.Err != nil {
		if plan = dd.planFailure(ctx, plan); plan == nil {
			return
		}
	}
	dd.deliver(ctx, plan)
}

// usePlan records the plan's own TLS-RPT results, once per call, and logs
// the plan.
func (dd *domainDelivery) usePlan(ctx context.Context, plan *policy.Plan) {
	dd.plan = plan
	reports := plan.ReportResults(time.Now())
	for _, r := range reports {
		dd.d.record(ctx, r)
	}
	dd.planReports = append(dd.planReports, reports...)
	dd.d.log(ctx, slog.LevelDebug, "smtp delivery plan", slog.String("domain", plan.Domain), slog.String("plan", plan.String()))
	if !plan.DANEChecked {
		dd.d.log(ctx, slog.LevelWarn, "smtp delivery without DANE: the resolver gives no DNSSEC answers (no trusted validating upstream), so TLSA records could not be checked",
			slog.String("domain", plan.Domain))
	}
}

// planFailure handles a plan whose Err says that no host may be tried:
// it settles every recipient and returns nil, or returns the new plan to
// deliver under after an MTA-STS recheck (RFC 8461 §5.1).
func (dd *domainDelivery) planFailure(ctx context.Context, plan *policy.Plan) *policy.Plan {
	var pe *policy.Error
	if !errors.As(plan.Err, &pe) {
		dd.failAll(&DeliveryError{Domain: dd.domain, Temporary: true, Status: EnhancedCode{4, 4, 0}, Err: plan.Err})
		return nil
	}
	if pe.Recheck {
		// Every host is outside the MTA-STS policy in mode enforce: look
		// for a new policy before failing for good (RFC 8461 §5.1).
		np, changed, err := dd.d.planner.Recheck(ctx, plan)
		switch {
		case err != nil:
			dd.failAll(&DeliveryError{Domain: dd.domain, Temporary: true, Status: EnhancedCode{4, 7, 0},
				Err: &planError{err: pe, note: "; looking for a new MTA-STS policy failed", also: err}})
			return nil
		case !changed:
			dd.failAll(&DeliveryError{Domain: dd.domain, Status: EnhancedCode{5, 7, 0},
				Err: &planError{err: pe, note: "; a fresh look found the same MTA-STS policy (RFC 8461 §5.1)"}})
			return nil
		}
		dd.usePlan(ctx, np)
		if np.Err == nil {
			return np
		}
		if errors.As(np.Err, &pe) && pe.Recheck {
			dd.failAll(&DeliveryError{Domain: dd.domain, Status: EnhancedCode{5, 7, 0},
				Err: &planError{err: pe, note: "; the new MTA-STS policy lists none of the MX hosts either"}})
			return nil
		}
		return dd.planFailure(ctx, np)
	}
	status := EnhancedCode{5, 4, 4} // no usable host
	switch {
	case pe.Temporary && errors.Is(pe, policy.ErrMXLookup):
		status = EnhancedCode{4, 4, 3}
	case pe.Temporary:
		status = EnhancedCode{4, 4, 4}
	case errors.Is(pe, policy.ErrNullMX):
		status = EnhancedCode{5, 1, 10} // RFC 7505 §4.3: "556 5.1.10"
	case errors.Is(pe, policy.ErrNoSuchDomain), errors.Is(pe, policy.ErrNoMailHost):
		status = EnhancedCode{5, 1, 2}
	}
	dd.failAll(&DeliveryError{Domain: dd.domain, Temporary: pe.Temporary, Status: status, Err: &planError{err: pe}})
	return nil
}

// planError is the cause of a delivery its plan ruled out: the plan's
// *policy.Error, and what Deliver learnt after it (a note, and the error of
// a recheck), which errors.As and errors.Is reach. Its message is the
// policy error's cause, without the advice meant for a program that follows
// plans itself.
type planError struct {
	err  *policy.Error
	note string
	also error
}

// Error returns the cause, the note and the later error.
func (e *planError) Error() string {
	s := e.err.Err.Error() + e.note
	if e.also != nil {
		s += ": " + e.also.Error()
	}
	return s
}

// Unwrap returns the *policy.Error and the later error.
func (e *planError) Unwrap() []error {
	if e.also == nil {
		return []error{e.err}
	}
	return []error{e.err, e.also}
}

// asPlanError wraps a *policy.Error in a planError; other errors are
// returned as they are.
func asPlanError(err error) error {
	if pe, ok := err.(*policy.Error); ok {
		return &planError{err: pe}
	}
	return err
}

// deliver tries the plan's hosts in order, and each of a host's addresses,
// until every recipient is settled or the hosts run out.
func (dd *domainDelivery) deliver(ctx context.Context, plan *policy.Plan) {
	for _, h := range plan.Usable() {
		if len(dd.pending()) == 0 {
			return
		}
		if dd.m.env.RequireTLS && !h.RequireTLS {
			// RFC 8689 §4.2.1: only a host found through DNSSEC or listed
			// by an MTA-STS policy in mode enforce, and authenticated.
			for _, r := range dd.pending() {
				dd.fail(r, &DeliveryError{Host: h.Name, Source: h.Source, Requirement: h.Requirement.String(),
					Status: CodeRequireTLSUnsupported,
					Err:    fmt.Errorf("%w: the plan does not allow REQUIRETLS messages to %s (neither a DNSSEC-validated MX lookup nor an MTA-STS policy in mode enforce vouches for it)", ErrRequireTLS, h.Name)})
			}
			continue
		}
		for _, addr := range h.Addrs {
			rcpts := dd.pending()
			if len(rcpts) == 0 {
				return
			}
			if stop := dd.attempt(ctx, h, addr, rcpts); stop {
				return
			}
		}
	}
}

// attempt sends the message to rcpts over a session with h at addr, and
// settles or records a failure for each. The session is a new one, or,
// with Deliverer.Pool, one that met the host's requirement before; a
// reused session found closed before anything of the message was written
// gives its place to a new one. It reports whether the domain's delivery
// must stop: the context ended, the outcome is uncertain, or no other host
// can do better.
func (dd *domainDelivery) attempt(ctx context.Context, h *policy.Host, addr netip.Addr, rcpts []string) (stop bool) {
	for fresh := false; ; fresh = true {
		l, att, err := dd.d.acquire(ctx, h, addr, dd.m.mode, dd.m.env.RequireTLS, fresh)
		if att == nil {
			// The configuration, not the host: no attempt was made.
			dd.failAll(&DeliveryError{Host: h.Name, Addr: addr, Temporary: true, Status: EnhancedCode{4, 3, 5}, Err: err})
			return true
		}
		dd.attempts = append(dd.attempts, *att)
		at := &dd.attempts[len(dd.attempts)-1]
		if err != nil {
			return dd.sessionFailed(ctx, h, addr, at, rcpts, err)
		}
		env := dd.m.env
		env.To = rcpts
		res, err := l.c.send(ctx, &env, io.NewSectionReader(dd.m.src, 0, dd.m.src.Size()), !l.pooled)
		at.Err = err
		if dd.d.release(ctx, l, err) {
			continue // ErrIdleClosed on a reused session: nothing was sent
		}
		return dd.settleAttempt(ctx, h, addr, at, rcpts, res, err)
	}
}

// attemptErr is the *DeliveryError of a failure of the attempt at.
func attemptErr(h *policy.Host, addr netip.Addr, at *Attempt, temporary bool, status EnhancedCode, err error) *DeliveryError {
	return &DeliveryError{Host: h.Name, Addr: addr, Source: h.Source, Requirement: at.Requirement,
		Temporary: temporary, Status: status, Err: err}
}

// sessionFailed records an attempt whose session could not be had.
func (dd *domainDelivery) sessionFailed(ctx context.Context, h *policy.Host, addr netip.Addr, at *Attempt, rcpts []string, err error) (stop bool) {
	if ctx.Err() != nil {
		dd.failAll(attemptErr(h, addr, at, true, EnhancedCode{4, 0, 0}, err))
		return true
	}
	// Connection refused or lost, a 4xx or 5xx greeting, a session that
	// does not meet the requirement: the next address or host.
	for _, r := range rcpts {
		dd.fail(r, attemptErr(h, addr, at, true, statusOf(err, true), err))
	}
	return false
}

// settleAttempt settles or records a failure for each recipient of an
// attempt whose transaction gave res and err.
func (dd *domainDelivery) settleAttempt(ctx context.Context, h *policy.Host, addr netip.Addr, at *Attempt, rcpts []string, res *SendResult, err error) (stop bool) {
	where := func(temporary bool, status EnhancedCode, err error) *DeliveryError {
		return attemptErr(h, addr, at, temporary, status, err)
	}
	if res == nil {
		res = &SendResult{}
	}
	delivered := func(r string) {
		dd.settle(r, OutcomeDelivered, nil, at)
		rr := dd.state[r].res
		rr.Code, rr.Reply = 250, res.Reply
	}
	for _, rj := range res.Rejected {
		// RFC 5321 §4.2.5: 5xx ends the recipient; 4xx may succeed
		// elsewhere or later.
		de := where(rj.Err.Temporary(), statusOf(rj.Err, rj.Err.Temporary()), rj.Err)
		if rj.Err.Temporary() {
			dd.fail(rj.Recipient, de)
		} else {
			dd.settle(rj.Recipient, OutcomePermanent, de, at)
		}
	}
	// The recipients of the transaction: those not refused at RCPT.
	var tx []string
	for _, r := range rcpts {
		if dd.state[r].res == nil && !refused(res, r) {
			tx = append(tx, r)
		}
	}
	var (
		se *SMTPError
		ue *UncertainDeliveryError
		xe *ExtensionError
		me *MessageError
		re *RecipientsError
		ae *AddressError
	)
	switch {
	case err == nil:
		for _, r := range res.Accepted {
			delivered(r)
		}
	case errors.As(err, &re):
		// Every recipient refused: handled above.
	case errors.As(err, &ue):
		// The whole message went out and the answer did not come back: its
		// recipients may have it. Another host would risk a duplicate.
		for _, r := range tx {
			dd.settle(r, OutcomeTemporary, where(true, EnhancedCode{4, 4, 2}, err), at)
		}
		return true
	case ctx.Err() != nil:
		dd.failAll(where(true, EnhancedCode{4, 0, 0}, err))
		return true
	case errors.As(err, &me), errors.As(err, &ae), errors.Is(err, ErrInvalidOptions):
		// The message or the envelope, not the host: no other host can do
		// better now.
		temporary := me != nil
		for _, r := range tx {
			dd.settle(r, outcomeOf(temporary), where(temporary, statusOf(err, temporary), err), at)
		}
		return true
	case errors.As(err, &se) && se.Permanent():
		// RFC 5321 §4.2.5: a 5xx reply to MAIL or to the message fails the
		// transaction for good.
		for _, r := range tx {
			dd.settle(r, OutcomePermanent, where(false, statusOf(se, false), err), at)
		}
	case errors.As(err, &xe), errors.Is(err, ErrMessageTooLarge):
		// This host lacks what the message needs; another may have it.
		for _, r := range tx {
			dd.fail(r, where(false, statusOf(err, false), err))
		}
	default:
		// A 4xx reply to MAIL or to the message, a 421, a connection lost
		// before the end of the message: the next address or host.
		for _, r := range tx {
			dd.fail(r, where(true, statusOf(err, true), err))
		}
	}
	return false
}

// refused reports whether the server refused r at RCPT.
func refused(res *SendResult, r string) bool {
	for _, rj := range res.Rejected {
		if rj.Recipient == r {
			return true
		}
	}
	return false
}

func outcomeOf(temporary bool) Outcome {
	if temporary {
		return OutcomeTemporary
	}
	return OutcomePermanent
}

// pending returns the recipients not yet settled, in order.
func (dd *domainDelivery) pending() []string {
	var out []string
	for _, r := range dd.rcpts {
		if dd.state[r].res == nil {
			out = append(out, r)
		}
	}
	return out
}

// fail records a failure of an attempt for a recipient that stays open for
// the next host.
func (dd *domainDelivery) fail(r string, de *DeliveryError) {
	st := dd.state[r]
	if de.Temporary {
		st.tempErr = de
	} else {
		st.permErr = de
	}
}

// failAll settles every open recipient with de.
func (dd *domainDelivery) failAll(de *DeliveryError) {
	for _, r := range dd.pending() {
		dd.settle(r, outcomeOf(de.Temporary), de, nil)
	}
}

// settle gives a recipient its outcome; at is the attempt that decided it,
// if any.
func (dd *domainDelivery) settle(r string, o Outcome, de *DeliveryError, at *Attempt) {
	st := dd.state[r]
	if st.res != nil {
		return
	}
	res := &RecipientResult{Recipient: r, Domain: dd.domain, Outcome: o}
	if de != nil {
		e := *de
		e.Recipient, e.Domain = r, dd.domain
		res.Err = &e
		var se *SMTPError
		if errors.As(e.Err, &se) {
			res.Code, res.Enhanced, res.Reply = se.Code, se.Enhanced, se.Message()
		}
		res.Host, res.Addr, res.Source = e.Host, e.Addr, e.Source
	}
	if at != nil {
		res.Host, res.Addr, res.Source = at.Host, at.Addr, at.Source
		res.TLS, res.ServerAuth, res.DANEMatch = at.TLS, at.ServerAuth, at.DANEMatch
	}
	st.res = res
}

// finish settles the recipients still open after the last host (the last
// temporary failure if there was one, else the last permanent one), fills
// in what the recipients of the domain share, and logs each outcome.
func (dd *domainDelivery) finish(ctx context.Context) {
	for _, r := range dd.pending() {
		st := dd.state[r]
		de := st.tempErr
		if de == nil {
			de = st.permErr
		}
		if de == nil {
			de = &DeliveryError{Domain: dd.domain, Temporary: true, Status: EnhancedCode{4, 4, 4},
				Err: errors.New("no MX host was tried")}
		}
		dd.settle(r, outcomeOf(de.Temporary), de, dd.attemptAt(de.Host, de.Addr))
	}
	dd.results = make(map[string]*RecipientResult, len(dd.rcpts))
	for _, r := range dd.rcpts {
		res := dd.state[r].res
		res.Plan, res.Attempts, res.PlanReports = dd.plan, dd.attempts, dd.planReports
		if dd.plan != nil {
			res.DANEChecked = dd.plan.DANEChecked
		}
		dd.results[r] = res
		dd.d.logResult(ctx, res)
	}
}

// attemptAt returns the last attempt at host and addr, if any.
func (dd *domainDelivery) attemptAt(host string, addr netip.Addr) *Attempt {
	for i := len(dd.attempts) - 1; i >= 0; i-- {
		if a := &dd.attempts[i]; a.Host == host && a.Addr == addr {
			return a
		}
	}
	return nil
}

// statusOf returns the enhanced status code for err: the server's when it
// sent one, else one that names the failure, of class 4 or 5 as temporary
// says.
func statusOf(err error, temporary bool) EnhancedCode {
	class := 5
	if temporary {
		class = 4
	}
	var (
		se *SMTPError
		xe *ExtensionError
		dg *DowngradeError
		ce *ConnError
		pe *ProtocolError
		me *MessageError
	)
	switch {
	case errors.As(err, &se):
		if se.Enhanced.Class != 0 {
			return se.Enhanced
		}
		return EnhancedCode{se.Code / 100, 0, 0}
	case errors.As(err, &xe):
		return xe.EnhancedCode()
	case errors.Is(err, ErrMessageTooLarge):
		return EnhancedCode{class, 3, 4}
	case errors.As(err, &dg):
		return EnhancedCode{class, 7, 5} // TLS or certificate failure
	case errors.As(err, &ce):
		if strings.HasPrefix(ce.Op, "connecting") {
			return EnhancedCode{class, 4, 1} // no answer from host
		}
		return EnhancedCode{class, 4, 2} // bad connection
	case errors.As(err, &pe):
		return EnhancedCode{class, 5, 0}
	case errors.As(err, &me):
		return EnhancedCode{class, 3, 0}
	}
	return EnhancedCode{class, 0, 0}
}
