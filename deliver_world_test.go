package smtpsecure

import (
	"errors"
	"slices"
	"testing"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// worldCause checks the typed cause of a failed delivery, per domain.
var worldCause = map[string]func(t *testing.T, err error){
	"dane-mismatch.example":       downgradeCause(ReasonDANE),
	"dane-ta-wrongname.example":   downgradeCause(ReasonDANE),
	"dane-insecure-mx.example":    downgradeCause(ReasonDANE),
	"dane-nostarttls.example":     downgradeCause(ReasonSTARTTLSNotOffered),
	"tlsa-bogus.example":          planCause(policy.ErrNoUsableHost, EnhancedCode{4, 4, 4}),
	"mx-bogus.example":            planCause(dane.ErrBogus, EnhancedCode{4, 4, 3}),
	"sts-untrusted.example":       downgradeCause(ReasonCertificateUntrusted),
	"sts-nomatch.example":         planCause(policy.ErrNoUsableHost, EnhancedCode{5, 7, 0}),
	"dane-fail-sts.example":       downgradeCause(ReasonDANE),
	"nopolicy-nostarttls.example": downgradeCause(ReasonSTARTTLSNotOffered),
	"nullmx.example":              planCause(policy.ErrNullMX, EnhancedCode{5, 1, 10}),
	"nxdomain.example":            planCause(policy.ErrNoSuchDomain, EnhancedCode{5, 1, 2}),
	"alldown.example": func(t *testing.T, err error) {
		var ce *ConnError
		var de *DeliveryError
		if !errors.As(err, &ce) || !errors.As(err, &de) || de.Status != (EnhancedCode{4, 4, 1}) || de.Host != "mx2.alldown.example" {
			t.Errorf("error %v, want a *ConnError at the last host, status 4.4.1", err)
		}
	},
	"rcpt550.example": func(t *testing.T, err error) {
		var se *SMTPError
		var de *DeliveryError
		if !errors.As(err, &se) || se.Code != 550 || !errors.As(err, &de) || de.Status != (EnhancedCode{5, 1, 1}) || de.Host != "mx1.rcpt550.example" {
			t.Errorf("error %v, want the server's 550 5.1.1 from mx1", err)
		}
	},
}

func downgradeCause(reason DowngradeReason) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var dg *DowngradeError
		var de *DeliveryError
		if !errors.As(err, &dg) || dg.Reason != reason || !errors.As(err, &de) || de.Host == "" || de.Status.Subject != 7 {
			t.Errorf("error %v, want a *DowngradeError (%s) at a host", err, reason)
		}
	}
}

func planCause(sentinel error, status EnhancedCode) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var pe *policy.Error
		var de *DeliveryError
		if !errors.As(err, &pe) || !errors.Is(err, sentinel) || !errors.As(err, &de) || de.Status != status || de.Host != "" {
			t.Errorf("error %v, want a *policy.Error matching %v with status %s and no host", err, sentinel, status)
		}
	}
}

// Deliver to every domain of the world, with the world's four knobs and
// nothing else: where the message went (and nowhere else, once), over what
// TLS authentication, the outcome and its typed error, the TLS-RPT results
// recorded, hosts that must not be contacted, and that nothing crossed to
// any host in plaintext.
//
// STD-54 (enforce skips unlisted hosts), STD-55 (testing delivers and
// reports), STD-57 (recheck before permanent), STD-62 (SNI), STD-63 (DANE
// failure not overridden by MTA-STS), STD-66, STD-71, STD-73, STD-74,
// STD-78, STD-79, STD-83, STD-86 (one result per session).
func TestDeliverWorld(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	d := worldDeliverer(w, rec)
	t.Run("domains", func(t *testing.T) {
		for _, dom := range mxworld.Domains {
			t.Run(dom.Name, func(t *testing.T) {
				t.Parallel()
				checkWorldDomain(t, w, d, rec, dom)
			})
		}
	})
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("mail-transaction commands reached hosts in plaintext: %q", l)
	}
}

func checkWorldDomain(t *testing.T, w *mxworld.World, d *Deliverer, rec *memRecorder, dom mxworld.Domain) {
	a, err := idn.ToASCII(dom.Name)
	if err != nil {
		t.Fatal(err)
	}
	rcpt := "user@" + dom.Name
	id, msg := testMessage(t, rcpt)
	res := deliver(t, d, &Envelope{From: "a@sender.example", To: []string{rcpt}}, msg)
	r := res[0]
	e := dom.Expect
	if r.Recipient != rcpt || r.Domain != a {
		t.Errorf("result for %q in %q, want %q in %q", r.Recipient, r.Domain, rcpt, a)
	}
	if r.Outcome.String() != e.Outcome.String() {
		t.Fatalf("outcome %s (%v), want %s", r.Outcome, r.Err, e.Outcome)
	}
	got := receivedBy(w, id)
	if e.Outcome == mxworld.Delivered {
		if r.Err != nil || r.Code != 250 || r.Host != e.Host || !r.TLS || authName(r.ServerAuth) != e.Auth {
			t.Errorf("delivered by %s (code %d, TLS %v, %s, err %v), want %s over TLS, %s",
				r.Host, r.Code, r.TLS, r.ServerAuth, r.Err, e.Host, e.Auth)
		}
		if r.ServerAuth.DANE() != (r.DANEMatch != nil) {
			t.Errorf("ServerAuth %s with DANE match %v", r.ServerAuth, r.DANEMatch)
		}
		if len(got) != 1 || got[e.Host] != 1 {
			t.Errorf("message received by %v, want once by %s", got, e.Host)
		}
	} else {
		var de *DeliveryError
		if !errors.As(r.Err, &de) || de.Temporary != (e.Outcome == mxworld.Temporary) || de.Recipient != rcpt || de.Domain != a {
			t.Errorf("error %#v, want a *DeliveryError for %s, temporary %v", r.Err, rcpt, e.Outcome == mxworld.Temporary)
		}
		if len(got) != 0 {
			t.Errorf("message received by %v, want nowhere", got)
		}
		if check := worldCause[dom.Name]; check != nil {
			check(t, r.Err)
		} else {
			t.Errorf("no cause check for %s (error %v)", dom.Name, r.Err)
		}
	}
	if !r.DANEChecked || r.Plan == nil && !errors.Is(r.Err, policy.ErrInvalidDomain) {
		t.Errorf("DANEChecked %v, plan %v", r.DANEChecked, r.Plan)
	}

	// TLS-RPT: what was recorded is what the result shows, and the types
	// are the world's.
	recorded := rec.forDomain(a)
	shown := slices.Clone(r.PlanReports)
	for _, at := range r.Attempts {
		if at.Report != nil {
			shown = append(shown, *at.Report)
			if at.Report.ReceivingMXHostname != at.Host || at.Report.ReceivingIP != at.Addr || !at.Report.SendingIP.IsValid() {
				t.Errorf("report of the session with %s [%s]: %+v", at.Host, at.Addr, at.Report)
			}
			if at.Report.ReceivingMXHelo == "" {
				t.Errorf("report of the session with %s has no receiving-mx-helo", at.Host)
			}
		}
	}
	if len(recorded) != len(shown) || !slices.Equal(failureTypes(recorded), failureTypes(shown)) {
		t.Errorf("recorded %d results %q, the result shows %d %q", len(recorded), failureTypes(recorded), len(shown), failureTypes(shown))
	}
	want := slices.Clone(e.Report)
	slices.Sort(want)
	if gotTypes := failureTypes(recorded); !slices.Equal(gotTypes, want) {
		t.Errorf("TLS-RPT failures %q, want %q", gotTypes, want)
	}
	if e.Outcome == mxworld.Delivered && hostReported(r.Plan, e.Host) &&
		!slices.ContainsFunc(recorded, func(rr tlsrpt.Result) bool { return rr.ReceivingMXHostname == e.Host }) {
		t.Errorf("no TLS-RPT result for the delivering session with %s", e.Host)
	}
	for _, rr := range recorded {
		if rr.Policy.Domain != a || (rr.Policy.Type != tlsrpt.PolicyTLSA && rr.Policy.Type != tlsrpt.PolicySTS && rr.Policy.Type != tlsrpt.PolicyNone) {
			t.Errorf("result under policy %+v", rr.Policy)
		}
	}

	for _, u := range e.Untouched {
		if s := w.MX(u); s != nil && len(s.Sessions()) != 0 {
			t.Errorf("%s was contacted %d times, want never", u, len(s.Sessions()))
		}
	}
	if dom.Name == "cname-mx.example" {
		for _, s := range w.MX("mail.cname-mx.example").Sessions() {
			if cs, ok := s.TLSState(); ok && cs.ServerName != "mx.cname-target.example" {
				t.Errorf("SNI %q, want the TLSA base domain mx.cname-target.example (RFC 7672 §8.1)", cs.ServerName)
			}
		}
	}
	if t.Failed() {
		if r.Plan != nil {
			t.Logf("plan:\n%s", r.Plan)
		}
		for _, at := range r.Attempts {
			t.Logf("attempt %s [%s]: %s, TLS %v, %s, err %v, report %+v", at.Host, at.Addr, at.Requirement, at.TLS, at.ServerAuth, at.Err, at.Report)
		}
	}
}

// hostReported reports whether the plan counts sessions with host in TLS
// reports.
func hostReported(pl *policy.Plan, host string) bool {
	if pl == nil {
		return false
	}
	h := pl.Host(host)
	return h != nil && h.Report != nil
}
