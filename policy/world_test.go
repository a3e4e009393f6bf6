package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	r "github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// wantHost is what the plan must say about one host.
type wantHost struct {
	name     string
	excluded ExclusionCode // "" for a usable host
	temp     bool          // the exclusion is temporary
	tls      TLS
	auth     Auth
	sni      string
	source   Source
	report   string // the TLS-RPT policy type, "" for none
	reqTLS   bool   // REQUIRETLS allowed
	testing  string // "listed" or "unlisted" under MTA-STS testing
	names    []string
	why      string // a substring of one Why line
}

// wantPlan is what the plan of a domain must say.
type wantPlan struct {
	err      error // sentinel of Plan.Err
	temp     bool
	recheck  bool
	mxSecure bool
	sts      string // MTA-STS mode, "" for none
	hosts    []wantHost
	reports  []string // result types of ReportResults
}

// The plan of every domain of the world: hosts in order, requirements,
// sources, exclusions and their reasons.
//
// STD-54, STD-55, STD-56, STD-59, STD-60, STD-62, STD-63, STD-66, STD-67,
// STD-68, STD-69, STD-70, STD-71, STD-72, STD-73, STD-74, STD-80, STD-83,
// STD-92, STD-95 (see the comments on the rows).
func TestWorldPlans(t *testing.T) {
	w := mxworld.New(t)
	p := worldPlanner(w, nil)
	dane := func(name string, names ...string) wantHost {
		return wantHost{name: name, auth: AuthDANE, sni: name, source: SourceDANE, report: tlsrpt.PolicyTLSA, reqTLS: true, names: names}
	}
	none := func(name string) wantHost {
		return wantHost{name: name, auth: AuthNone, sni: name, source: SourceDefault, report: tlsrpt.PolicyNone, why: "RFC 7672 §1.3"}
	}
	enforce := func(name string) wantHost {
		return wantHost{name: name, auth: AuthWebPKI, sni: name, source: SourceMTASTSEnforce, report: tlsrpt.PolicySTS, reqTLS: true, names: []string{name}}
	}
	tests := map[string]wantPlan{
		// STD-74, STD-83: usable TLSA → DANE mandatory, SNI = base domain.
		"dane-ee.example":           {mxSecure: true, hosts: []wantHost{dane("mx.dane-ee.example", "mx.dane-ee.example", "dane-ee.example")}},
		"dane-mismatch.example":     {mxSecure: true, hosts: []wantHost{dane("mx.dane-mismatch.example")}},
		"dane-expired.example":      {mxSecure: true, hosts: []wantHost{dane("mx.dane-expired.example")}},
		"dane-ta.example":           {mxSecure: true, hosts: []wantHost{dane("mx.dane-ta.example", "mx.dane-ta.example", "dane-ta.example")}},
		"dane-ta-wrongname.example": {mxSecure: true, hosts: []wantHost{dane("mx.dane-ta-wrongname.example")}},
		// STD-80: a secure MX RRset adds the next-hop domain.
		"dane-ta-nexthop.example": {mxSecure: true, hosts: []wantHost{dane("mx.dane-ta-nexthop.example", "mx.dane-ta-nexthop.example", "dane-ta-nexthop.example")}},
		// STD-68, STD-80: an insecure MX RRset still allows DANE, with the
		// MX host as the only reference identifier, and no REQUIRETLS.
		"dane-insecure-mx.example": {hosts: []wantHost{{name: "mx.dane-hosting.example", auth: AuthDANE, sni: "mx.dane-hosting.example", source: SourceDANE,
			report: tlsrpt.PolicyTLSA, names: []string{"mx.dane-hosting.example"}, why: "recipient domain is not among those names"}}},
		// STD-73: only unusable TLSA → TLS mandatory, unauthenticated.
		"dane-unusable.example": {mxSecure: true, hosts: []wantHost{{name: "mx.dane-unusable.example", auth: AuthNone, sni: "mx.dane-unusable.example",
			source: SourceDANE, report: tlsrpt.PolicyTLSA, why: "no usable record"}}},
		"dane-nostarttls.example": {mxSecure: true, hosts: []wantHost{dane("mx.dane-nostarttls.example")}},
		// STD-71: a bogus TLSA RRset makes the host unusable, temporary.
		"tlsa-bogus.example": {err: ErrNoUsableHost, temp: true, mxSecure: true, reports: []string{r.DNSSECInvalid},
			hosts: []wantHost{{name: "mx.tlsa-bogus.example", excluded: ExcludedTLSABogus, temp: true, report: tlsrpt.PolicyTLSA, why: "never treated as having no TLSA"}}},
		// STD-66: a bogus MX lookup defers delivery.
		"mx-bogus.example": {err: ErrMXLookup, temp: true, reports: []string{r.DNSSECInvalid}},
		// STD-69, STD-72: host addresses in an unsigned zone → no TLSA lookup, no DANE.
		"unsigned-host.example": {mxSecure: true, hosts: []wantHost{none("mx.unsigned-hosting.example")}},
		// STD-70: a CNAME MX host: TLSA at the target first; the target is SNI.
		"cname-mx.example": {mxSecure: true, hosts: []wantHost{{name: "mail.cname-mx.example", auth: AuthDANE, sni: "mx.cname-target.example",
			source: SourceDANE, report: tlsrpt.PolicyTLSA, reqTLS: true, names: []string{"mx.cname-target.example", "mail.cname-mx.example", "cname-mx.example"}}}},
		// STD-67: preference order kept.
		"failover.example": {mxSecure: true, hosts: []wantHost{dane("mx1.failover.example"), dane("mx2.failover.example")}},
		// STD-62: SNI is the MX host name under MTA-STS.
		"sts-enforce.example":   {sts: "enforce", hosts: []wantHost{enforce("mx.sts-enforce.example")}},
		"sts-untrusted.example": {sts: "enforce", hosts: []wantHost{enforce("mx.sts-untrusted.example")}},
		// STD-54: enforce skips hosts the policy does not list.
		"sts-notinpolicy.example": {sts: "enforce", hosts: []wantHost{
			{name: "mx1.sts-notinpolicy.example", excluded: ExcludedNotInPolicy, why: "does not list the host"},
			enforce("mx2.sts-notinpolicy.example"),
		}},
		"sts-nomatch.example": {err: ErrNoUsableHost, recheck: true, sts: "enforce", hosts: []wantHost{
			{name: "mx.sts-nomatch.example", excluded: ExcludedNotInPolicy}}},
		"sts-wildcard.example": {sts: "enforce", hosts: []wantHost{enforce("mx.sts-wildcard.example")}},
		// STD-55: testing delivers as without a policy and reports.
		"sts-testing.example": {sts: "testing", hosts: []wantHost{{name: "mx.sts-testing.example", auth: AuthNone, sni: "mx.sts-testing.example",
			source: SourceMTASTSTesting, report: tlsrpt.PolicySTS, testing: "listed", why: "reported as a failure, not refused"}}},
		// STD-59: fetch fails, nothing cached → as without MTA-STS, reported.
		"sts-fetchfail.example": {reports: []string{r.STSPolicyFetchError}, hosts: []wantHost{none("mx.sts-fetchfail.example")}},
		// STD-60: fetch fails, a cached policy applies.
		"sts-cached.example": {sts: "enforce", reports: []string{r.STSPolicyFetchError}, hosts: []wantHost{enforce("mx.sts-cached.example")}},
		// STD-63: DANE decides when both apply, whatever MTA-STS says.
		"dane-sts.example":            {mxSecure: true, sts: "enforce", hosts: []wantHost{dane("mx.dane-sts.example")}},
		"dane-fail-sts.example":       {mxSecure: true, sts: "enforce", hosts: []wantHost{{name: "mx.dane-fail-sts.example", auth: AuthDANE, sni: "mx.dane-fail-sts.example", source: SourceDANE, report: tlsrpt.PolicyTLSA, reqTLS: true, why: "overrides a failing DANE validation"}}},
		"dane-sts-unlisted.example":   {mxSecure: true, sts: "enforce", hosts: []wantHost{dane("mx.dane-sts-unlisted.example")}},
		"nopolicy.example":            {hosts: []wantHost{none("mx.nopolicy.example")}},
		"nopolicy-nostarttls.example": {hosts: []wantHost{none("mx.nopolicy-nostarttls.example")}},
		"nullmx.example":              {err: ErrNullMX, mxSecure: true},
		"implicit.example":            {hosts: []wantHost{none("implicit.example")}},
		"greet4xx.example":            {hosts: []wantHost{none("mx1.greet4xx.example"), none("mx2.greet4xx.example")}},
		"alldown.example":             {hosts: []wantHost{none("mx1.alldown.example"), none("mx2.alldown.example")}},
		"rcpt550.example":             {hosts: []wantHost{none("mx1.rcpt550.example"), none("mx2.rcpt550.example")}},
		// STD-95: U-labels become A-labels for DNS, SNI and the policy.
		"bücher.example":     {sts: "enforce", hosts: []wantHost{enforce("mx.xn--bcher-kva.example")}},
		"requiretls.example": {mxSecure: true, hosts: []wantHost{dane("mx.requiretls.example")}},
		"ip-literal-mx.example": {hosts: []wantHost{
			{name: "192.0.2.250", excluded: ExcludedIPLiteral, why: "IP address"},
			none("mx.ip-literal-mx.example"),
		}},
		"nxdomain.example": {err: ErrNoSuchDomain},
		"addr-bogus.example": {mxSecure: true, reports: []string{r.DNSSECInvalid}, hosts: []wantHost{
			{name: "mx1.addr-bogus.example", excluded: ExcludedAddressBogus, temp: true, report: tlsrpt.PolicyTLSA},
			dane("mx2.addr-bogus.example"),
		}},
	}
	for _, d := range mxworld.Domains {
		want, ok := tests[d.Name]
		if !ok {
			t.Errorf("%s: no expected plan", d.Name)
			continue
		}
		delete(tests, d.Name)
		t.Run(d.Name, func(t *testing.T) {
			pl := mustPlan(t, p, d.Name)
			checkPlan(t, pl, want)
			checkAgainstWorld(t, pl, d)
			if t.Failed() {
				t.Logf("plan:\n%s", pl)
			}
		})
	}
	for name := range tests {
		t.Errorf("%s: expected plan for a domain not in the world", name)
	}
}

func checkPlan(t *testing.T, pl *Plan, want wantPlan) {
	t.Helper()
	if want.err == nil && pl.Err != nil {
		t.Errorf("Err = %v, want none", pl.Err)
	}
	if want.err != nil {
		var e *Error
		if !errors.As(pl.Err, &e) || !errors.Is(pl.Err, want.err) {
			t.Errorf("Err = %v, want an *Error matching %v", pl.Err, want.err)
		} else if e.Temporary != want.temp || e.Recheck != want.recheck {
			t.Errorf("Err temporary=%v recheck=%v, want %v %v", e.Temporary, e.Recheck, want.temp, want.recheck)
		}
	}
	if pl.MX.Secure != want.mxSecure && !errors.Is(want.err, ErrMXLookup) {
		t.Errorf("MX.Secure = %v, want %v", pl.MX.Secure, want.mxSecure)
	}
	mode := ""
	if pl.MTASTS != nil {
		mode = pl.MTASTS.Mode
	}
	if mode != want.sts {
		t.Errorf("MTA-STS mode %q, want %q", mode, want.sts)
	}
	var reports []string
	for _, rr := range pl.ReportResults(time.Now()) {
		if rr.Policy.Domain != pl.Domain {
			t.Errorf("report record for policy domain %q, want %q", rr.Policy.Domain, pl.Domain)
		}
		reports = append(reports, rr.ResultType)
	}
	if !slices.Equal(reports, want.reports) {
		t.Errorf("ReportResults types %q, want %q", reports, want.reports)
	}
	if len(pl.Hosts) != len(want.hosts) {
		t.Fatalf("%d hosts, want %d", len(pl.Hosts), len(want.hosts))
	}
	for i, wh := range want.hosts {
		h := pl.Hosts[i]
		if h.Name != wh.name {
			t.Errorf("host %d is %s, want %s", i+1, h.Name, wh.name)
			continue
		}
		checkHost(t, h, wh)
	}
}

func checkHost(t *testing.T, h *Host, wh wantHost) {
	t.Helper()
	if len(h.Why) == 0 {
		t.Errorf("%s: no Why", h.Name)
	}
	if wh.why != "" && !slices.ContainsFunc(h.Why, func(s string) bool { return strings.Contains(s, wh.why) }) {
		t.Errorf("%s: no Why line contains %q: %q", h.Name, wh.why, h.Why)
	}
	reportType := ""
	if h.Report != nil {
		reportType = h.Report.Type
	}
	if reportType != wh.report {
		t.Errorf("%s: report policy %q, want %q", h.Name, reportType, wh.report)
	}
	if wh.excluded != "" {
		if h.Excluded == nil || h.Excluded.Code != wh.excluded || h.Excluded.Temporary != wh.temp {
			t.Errorf("%s: excluded %+v, want %s (temporary %v)", h.Name, h.Excluded, wh.excluded, wh.temp)
		}
		return
	}
	if h.Excluded != nil {
		t.Errorf("%s: excluded (%s: %s), want usable", h.Name, h.Excluded.Code, h.Excluded.Detail)
		return
	}
	rq := h.Requirement
	if rq.TLS != wh.tls || rq.Auth != wh.auth || rq.ServerName != wh.sni || h.Source != wh.source {
		t.Errorf("%s: %s/%s SNI %q source %s, want %s/%s SNI %q source %s",
			h.Name, rq.TLS, rq.Auth, rq.ServerName, h.Source, wh.tls, wh.auth, wh.sni, wh.source)
	}
	if h.RequireTLS != wh.reqTLS {
		t.Errorf("%s: RequireTLS %v, want %v", h.Name, h.RequireTLS, wh.reqTLS)
	}
	daneAuth := rq.Auth == AuthDANE || rq.Auth == AuthDANEAndWebPKI
	if daneAuth != (rq.DANE != nil) || daneAuth != (len(rq.TLSA) > 0) {
		t.Errorf("%s: auth %s with verifier %v and %d records", h.Name, rq.Auth, rq.DANE, len(rq.TLSA))
	}
	if rq.DANE != nil && rq.DANE.ServerName() != rq.ServerName {
		t.Errorf("%s: verifier SNI %q, requirement SNI %q", h.Name, rq.DANE.ServerName(), rq.ServerName)
	}
	if wh.names != nil {
		got := rq.WebPKINames
		if rq.Auth == AuthDANE {
			got = rq.DANENames
		}
		if !slices.Equal(got, wh.names) {
			t.Errorf("%s: names %q, want %q", h.Name, got, wh.names)
		}
	}
	switch wh.testing {
	case "":
		if h.Testing != nil {
			t.Errorf("%s: unexpected MTA-STS testing %+v", h.Name, h.Testing)
		}
	default:
		if h.Testing == nil || h.Testing.InPolicy != (wh.testing == "listed") ||
			h.Testing.Requirement.Auth != AuthWebPKI || !slices.Equal(h.Testing.Requirement.WebPKINames, []string{h.Name}) {
			t.Errorf("%s: testing %+v, want %s", h.Name, h.Testing, wh.testing)
		}
	}
}

// checkAgainstWorld checks the plan against what the world says delivery
// must do: the receiving host is usable and authenticated as expected,
// untouched hosts are excluded (or nothing may be tried), and the plan's own
// report records are among the delivery's.
func checkAgainstWorld(t *testing.T, pl *Plan, d mxworld.Domain) {
	t.Helper()
	e := d.Expect
	if e.Outcome == mxworld.Delivered {
		h := pl.Host(e.Host)
		if h == nil || !h.Usable() {
			t.Errorf("world expects delivery to %s, which the plan does not allow", e.Host)
		} else if want := map[string]Auth{"dane-ee": AuthDANE, "dane-ta": AuthDANE, "webpki": AuthWebPKI, "none": AuthNone}[e.Auth]; h.Requirement.Auth != want {
			t.Errorf("world expects %s at %s, plan requires %s", e.Auth, e.Host, h.Requirement.Auth)
		}
	}
	for _, u := range e.Untouched {
		if h := pl.Host(u); h != nil && h.Usable() && pl.Err == nil {
			// Only a host before the receiving one, or a refusing one, may be
			// untouched while usable: rcpt550's second MX.
			if e.Outcome != mxworld.Permanent {
				t.Errorf("world expects %s untouched, plan allows it", u)
			}
		}
	}
	for _, rr := range pl.ReportResults(time.Now()) {
		if !slices.Contains(e.Report, rr.ResultType) {
			t.Errorf("plan reports %s, not among the world's expected %q", rr.ResultType, e.Report)
		}
	}
	if (e.Outcome == mxworld.Permanent || e.Outcome == mxworld.Temporary) && pl.Err != nil {
		var pe *Error
		if errors.As(pl.Err, &pe) && (pe.Temporary || pe.Recheck) != (e.Outcome == mxworld.Temporary || pe.Recheck) {
			t.Errorf("plan error temporary=%v, world expects %s", pe.Temporary, e.Outcome)
		}
	}
}
