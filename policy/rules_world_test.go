package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	r "github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// Local rules sit above the published policy: they tighten (dane-only,
// verify) or visibly loosen (encrypt, insecure-…).
func TestLocalRulesInTheWorld(t *testing.T) {
	w := mxworld.New(t)
	rules, err := ParseRules(strings.NewReader(`
dane-ee.example dane-only
nopolicy.example dane-only
unsigned-host.example verify relay.partner.example
sts-untrusted.example verify
dane-mismatch.example encrypt
.example insecure-opportunistic
dane-sts.example insecure-plaintext
`))
	if err != nil {
		t.Fatal(err)
	}
	p := worldPlanner(w, rules)
	tests := []struct {
		domain string
		host   wantHost
		sts    bool     // the plan consulted MTA-STS
		tlsa   bool     // the host's TLSA records were looked up
		report []string // ReportResults
	}{
		// STD-84: mandatory DANE, met and not met.
		{"dane-ee.example", wantHost{name: "mx.dane-ee.example", auth: AuthDANE, sni: "mx.dane-ee.example", source: SourceLocal,
			report: tlsrpt.PolicyTLSA, reqTLS: true, why: "DANE authentication is mandatory"}, false, true, nil},
		{"nopolicy.example", wantHost{name: "mx.nopolicy.example", excluded: ExcludedDANERequired, temp: true, report: tlsrpt.PolicyTLSA,
			why: "requires DANE"}, false, false, []string{r.DANERequired}},
		{"unsigned-host.example", wantHost{name: "mx.unsigned-hosting.example", auth: AuthWebPKI, sni: "mx.unsigned-hosting.example", source: SourceLocal,
			names: []string{"relay.partner.example"}, why: "not counted in TLS reports"}, false, false, nil},
		{"sts-untrusted.example", wantHost{name: "mx.sts-untrusted.example", auth: AuthWebPKI, sni: "mx.sts-untrusted.example", source: SourceLocal,
			names: []string{"mx.sts-untrusted.example"}}, false, false, nil},
		// encrypt loosens a DANE domain to unauthenticated TLS, and says so.
		{"dane-mismatch.example", wantHost{name: "mx.dane-mismatch.example", auth: AuthNone, sni: "mx.dane-mismatch.example", source: SourceLocal,
			why: "DANE and MTA-STS are not consulted"}, false, false, nil},
		// insecure-opportunistic keeps published policies…
		{"failover.example", wantHost{name: "mx1.failover.example", auth: AuthDANE, sni: "mx1.failover.example", source: SourceDANE,
			report: tlsrpt.PolicyTLSA, reqTLS: true}, true, true, nil},
		{"sts-enforce.example", wantHost{name: "mx.sts-enforce.example", auth: AuthWebPKI, sni: "mx.sts-enforce.example", source: SourceMTASTSEnforce,
			report: tlsrpt.PolicySTS, reqTLS: true}, true, false, nil},
		{"dane-unusable.example", wantHost{name: "mx.dane-unusable.example", auth: AuthNone, sni: "mx.dane-unusable.example", source: SourceDANE,
			report: tlsrpt.PolicyTLSA}, true, true, nil},
		// … and only hosts without one may get plaintext.
		{"nopolicy-nostarttls.example", wantHost{name: "mx.nopolicy-nostarttls.example", tls: TLSInsecureOpportunistic, auth: AuthNone,
			sni: "mx.nopolicy-nostarttls.example", source: SourceLocal, report: tlsrpt.PolicyNone, why: "an attacker on the path can force"}, true, false, nil},
		{"sts-testing.example", wantHost{name: "mx.sts-testing.example", tls: TLSInsecureOpportunistic, auth: AuthNone, sni: "mx.sts-testing.example",
			source: SourceMTASTSTesting, report: tlsrpt.PolicySTS, testing: "listed"}, true, false, nil},
		{"dane-sts.example", wantHost{name: "mx.dane-sts.example", tls: TLSInsecurePlaintext, auth: AuthNone, source: SourceLocal,
			why: "plaintext"}, false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			pl := mustPlan(t, p, tt.domain)
			h := pl.Host(tt.host.name)
			if h == nil {
				t.Fatalf("no host %s in\n%s", tt.host.name, pl)
			}
			checkHost(t, h, tt.host)
			if (pl.MTASTS != nil) != tt.sts {
				t.Errorf("MTA-STS consulted: %v, want %v", pl.MTASTS != nil, tt.sts)
			}
			if (len(h.TLSA) > 0) != tt.tlsa {
				t.Errorf("TLSA records %q, want looked up: %v", h.TLSA, tt.tlsa)
			}
			var got []string
			for _, rr := range pl.ReportResults(time.Now()) {
				got = append(got, rr.ResultType)
				if rr.ResultType == r.DANERequired && (rr.Policy.Type != tlsrpt.PolicyTLSA || rr.ReceivingMXHostname != h.Name) {
					t.Errorf("dane-required record %+v", rr)
				}
			}
			if !slices.Equal(got, tt.report) {
				t.Errorf("ReportResults %q, want %q", got, tt.report)
			}
			if t.Failed() {
				t.Logf("plan:\n%s", pl)
			}
		})
	}
}

// RequireDANEAndMTASTS: where a host has DANE and an enforce policy
// applies, both must pass, and the host must be listed.
func TestRequireDANEAndMTASTS(t *testing.T) {
	w := mxworld.New(t)
	p := worldPlanner(w, nil)
	p.RequireDANEAndMTASTS = true

	pl := mustPlan(t, p, "dane-sts.example")
	checkHost(t, pl.Hosts[0], wantHost{name: "mx.dane-sts.example", auth: AuthDANEAndWebPKI, sni: "mx.dane-sts.example", source: SourceDANE,
		report: tlsrpt.PolicyTLSA, reqTLS: true, why: "RequireDANEAndMTASTS is set"})
	if rq := pl.Hosts[0].Requirement; rq.DANE == nil || !slices.Equal(rq.WebPKINames, []string{"mx.dane-sts.example"}) {
		t.Errorf("requirement %+v, want a verifier and the MX name for the Web PKI", rq)
	}

	pl = mustPlan(t, p, "dane-sts-unlisted.example")
	checkHost(t, pl.Hosts[0], wantHost{name: "mx.dane-sts-unlisted.example", excluded: ExcludedNotInPolicy, why: "RequireDANEAndMTASTS"})
	var e *Error
	if pl.Err == nil || !asError(pl.Err, &e) || !e.Recheck {
		t.Errorf("Err = %v, want an error asking for a recheck", pl.Err)
	}

	// Without a policy to require, DANE alone still decides.
	pl = mustPlan(t, p, "dane-ee.example")
	if a := pl.Hosts[0].Requirement.Auth; a != AuthDANE {
		t.Errorf("dane-ee.example: %s, want dane", a)
	}
}
