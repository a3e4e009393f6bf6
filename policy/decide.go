package policy

import (
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// decide sets the requirement of one host that survived its lookups, by
// the precedence of the package documentation.
func (p *Planner) decide(pl *Plan, t *target) {
	h := t.h
	if h.Excluded != nil {
		return
	}
	rule := pl.Rule
	switch rule.Level {
	case LevelInsecurePlaintext:
		h.Requirement = Requirement{TLS: TLSInsecurePlaintext}
		h.Source = SourceLocal
		h.why(fmt.Sprintf("local rule %q: no TLS at all; the message crosses the network in plaintext", rule.String()))
		h.why("not counted in TLS reports: a local rule, not the domain's policy, decided")
	case LevelEncrypt:
		h.Requirement = p.requirement(TLSRequired, AuthNone, h.Name)
		h.Source = SourceLocal
		h.why(fmt.Sprintf("local rule %q: TLS required, certificate not checked; DANE and MTA-STS are not consulted", rule.String()))
		h.why("not counted in TLS reports: a local rule, not the domain's policy, decided")
	case LevelVerify:
		h.Requirement = p.requirement(TLSRequired, AuthWebPKI, h.Name)
		h.Requirement.WebPKINames = rule.Names
		if len(rule.Names) == 0 {
			h.Requirement.WebPKINames = []string{h.Name}
		}
		h.Source = SourceLocal
		h.why(fmt.Sprintf("local rule %q: TLS and a Web PKI certificate valid for %s required; DANE and MTA-STS are not consulted",
			rule.String(), orList(h.Requirement.WebPKINames)))
		h.why("not counted in TLS reports: a local rule, not the domain's policy, decided")
	case LevelDANEOnly:
		if t.tl != nil && t.tl.Decision == dane.DANERequired {
			if p.useDANE(pl, t) {
				h.Source = SourceLocal
				h.why(fmt.Sprintf("local rule %q: DANE authentication is mandatory; the host's TLSA records at %s provide it (RFC 7672 §6)", rule.String(), t.tl.Owner))
				h.RequireTLS = pl.MX.Secure
				h.explainRequireTLS(pl.MX.Secure, false)
			}
			return
		}
		exclude(h, ExcludedDANERequired, true, rfc8460.DANERequired, nil,
			fmt.Sprintf("local rule %q requires DANE, and the host has no usable DNSSEC-validated TLSA records (%s) (RFC 7672 §6)", rule.String(), noDANEReason(pl, t)))
		h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: pl.Domain, Strings: h.TLSA, MXHosts: []string{h.Name}}
	default:
		p.published(pl, t)
	}
}

// requirement returns a requirement with the Planner's roots and clock.
func (p *Planner) requirement(tls TLS, auth Auth, serverName string) Requirement {
	return Requirement{TLS: tls, Auth: auth, ServerName: serverName, roots: p.RootCAs, now: p.Time}
}

// useDANE sets a DANE requirement from the host's usable TLSA records.
func (p *Planner) useDANE(pl *Plan, t *target) bool {
	h := t.h
	v, err := t.tl.Verifier(pl.MX.NextHopNames...)
	if err != nil {
		exclude(h, ExcludedTLSALookup, true, rfc8460.TLSAInvalid, err, "the host's TLSA records cannot be used: "+err.Error())
		return false
	}
	h.Requirement = p.requirement(TLSRequired, AuthDANE, v.ServerName())
	h.Requirement.DANE = v
	for _, r := range v.Records() {
		h.Requirement.TLSA = append(h.Requirement.TLSA, r.String())
	}
	h.Requirement.DANENames = v.ReferenceIDs()
	h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: pl.Domain, Strings: h.TLSA, MXHosts: []string{h.Name}}
	return true
}

// published applies the domain's published policy: DANE first, then
// MTA-STS, then the default.
func (p *Planner) published(pl *Plan, t *target) {
	h := t.h
	sts := pl.sts
	enforce, testing := sts.Enforced(), sts.Testing()
	decision := dane.NoDANE
	if t.tl != nil {
		decision = t.tl.Decision
	}
	switch decision {
	case dane.DANERequired:
		if !p.useDANE(pl, t) {
			return
		}
		h.Source = SourceDANE
		h.why(fmt.Sprintf("%d usable DNSSEC-validated TLSA record(s) at %s: TLS and DANE authentication are mandatory, and a failure means the next MX host or a deferral, never a weaker session (RFC 7672 §2.2)",
			len(h.Requirement.TLSA), t.tl.Owner))
		h.why(fmt.Sprintf("SNI is the TLSA base domain %s (RFC 7672 §8.1); a DANE-TA certificate may name %s (RFC 7672 §3.2.2)",
			h.Requirement.ServerName, orList(h.Requirement.DANENames)))
		if !pl.MX.Secure && !h.Implicit {
			h.why("the MX RRset is not DNSSEC-validated, so the recipient domain is not among those names (RFC 7672 §2.2.1, §3.2.2)")
		}
		inPolicy := sts.Policy.Match(h.Name)
		switch {
		case enforce && p.RequireDANEAndMTASTS:
			if !inPolicy {
				excludeNotInPolicy(h, sts, "RequireDANEAndMTASTS is set and ")
				return
			}
			h.Requirement.Auth = AuthDANEAndWebPKI
			h.Requirement.WebPKINames = []string{h.Name}
			h.why(fmt.Sprintf("the MTA-STS policy in mode enforce lists the host (%s), and RequireDANEAndMTASTS is set: the certificate must also be valid under the Web PKI for %s", matchedPattern(sts.Policy, h.Name), h.Name))
		case enforce || testing:
			h.why(fmt.Sprintf("the MTA-STS policy (mode %s) also applies, but DANE decides for this host: no MTA-STS result, passing or testing, overrides a failing DANE validation (RFC 8461 §2)", sts.Policy.Mode))
		}
		h.RequireTLS = pl.MX.Secure || (enforce && inPolicy)
		h.explainRequireTLS(pl.MX.Secure, enforce && inPolicy)
		return
	case dane.TLSRequired:
		if enforce {
			h.why(fmt.Sprintf("the TLSA RRset at %s is DNSSEC-validated but has no usable record: TLS is mandatory (RFC 7672 §2.2); the MTA-STS policy adds Web PKI authentication", t.tl.Owner))
			p.enforce(pl, t)
			return
		}
		h.Requirement = p.requirement(TLSRequired, AuthNone, t.tl.ServerName())
		h.Source = SourceDANE
		h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: pl.Domain, Strings: h.TLSA, MXHosts: []string{h.Name}}
		h.why(fmt.Sprintf("the TLSA RRset at %s is DNSSEC-validated but has no usable record (%s): TLS is mandatory, the certificate is not authenticated (RFC 7672 §2.2, §3.1.3)",
			t.tl.Owner, unusableReason(t.tl)))
		if testing {
			h.why("the MTA-STS policy in mode testing is not evaluated for this host: its TLSA RRset decides")
		}
		return
	}
	h.why(noDANEReason(pl, t))
	switch {
	case enforce:
		p.enforce(pl, t)
	case testing:
		p.testing(pl, t)
	default:
		p.fallback(pl, t)
	}
}

// enforce applies an MTA-STS policy in mode enforce (RFC 8461 §4, §5).
func (p *Planner) enforce(pl *Plan, t *target) {
	h, sts := t.h, pl.sts
	if !sts.Policy.Match(h.Name) {
		excludeNotInPolicy(h, sts, "")
		return
	}
	h.Requirement = p.requirement(TLSRequired, AuthWebPKI, h.Name)
	h.Requirement.WebPKINames = []string{h.Name}
	h.Source = SourceMTASTSEnforce
	h.Report = stsReport(pl.Domain, sts)
	h.why(fmt.Sprintf("the MTA-STS policy in mode enforce lists the host (%s): TLS and a Web PKI certificate valid for %s are mandatory, SNI %s (RFC 8461 §4.2, §5)",
		matchedPattern(sts.Policy, h.Name), h.Name, h.Name))
	h.RequireTLS = true
	h.explainRequireTLS(pl.MX.Secure && h.AddrsSecure, true)
}

// testing applies an MTA-STS policy in mode testing: deliver as without a
// policy, report what enforce would have refused (RFC 8461 §5).
func (p *Planner) testing(pl *Plan, t *target) {
	h, sts := t.h, pl.sts
	p.fallbackRequirement(pl, h)
	h.Source = SourceMTASTSTesting
	h.Report = stsReport(pl.Domain, sts)
	in := sts.Policy.Match(h.Name)
	h.Testing = &Testing{InPolicy: in, Requirement: p.requirement(TLSRequired, AuthWebPKI, h.Name)}
	h.Testing.Requirement.WebPKINames = []string{h.Name}
	listed := "lists the host (" + matchedPattern(sts.Policy, h.Name) + ")"
	if !in {
		listed = "does not list the host"
	}
	h.why(fmt.Sprintf("the MTA-STS policy in mode testing %s: delivery goes on as without a policy; a session without TLS or without a Web PKI certificate valid for %s is reported as a failure, not refused (RFC 8461 §5)", listed, h.Name))
}

// fallback applies when no published policy decides.
func (p *Planner) fallback(pl *Plan, t *target) {
	h := t.h
	p.fallbackRequirement(pl, h)
	h.Source = SourceDefault
	if pl.Rule.Level == LevelInsecureOpportunistic {
		h.Source = SourceLocal
	}
	h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyNone, Domain: pl.Domain}
}

// fallbackRequirement sets the requirement for a host without a policy
// that decides.
func (p *Planner) fallbackRequirement(pl *Plan, h *Host) {
	if pl.Rule.Level == LevelInsecureOpportunistic {
		h.Requirement = p.requirement(TLSInsecureOpportunistic, AuthNone, h.Name)
		h.why(fmt.Sprintf("local rule %q: STARTTLS when the server offers it, plaintext when it does not, which an attacker on the path can force", pl.Rule.String()))
		return
	}
	h.Requirement = p.requirement(TLSRequired, AuthNone, h.Name)
	h.why("STARTTLS is required; the certificate is not checked, because the name of a host found through DNS that nothing authenticates proves nothing (RFC 7672 §1.3); plaintext only through a local insecure-… rule")
}

func excludeNotInPolicy(h *Host, sts *mtasts.Result, prefix string) {
	exclude(h, ExcludedNotInPolicy, false, "", nil,
		fmt.Sprintf("%sthe MTA-STS policy in mode enforce (id %s) does not list the host (mx: %s): it must not receive the mail (RFC 8461 §4.1, §5)",
			prefix, sts.ID, strings.Join(sts.Policy.MX, ", ")))
}

// explainRequireTLS says whether the host may take REQUIRETLS messages.
func (h *Host) explainRequireTLS(mxSecure, stsListed bool) {
	if !h.RequireTLS {
		h.why("REQUIRETLS messages may not go to this host: the MX RRset is not DNSSEC-validated and no MTA-STS policy in mode enforce lists the host (RFC 8689 §4.2.1)")
		return
	}
	via := "the MX lookup is DNSSEC-validated"
	if !mxSecure && stsListed {
		via = "an MTA-STS policy in mode enforce lists the host"
	}
	h.why("REQUIRETLS messages may go to this host if it advertises REQUIRETLS: " + via + " and the certificate is authenticated (RFC 8689 §4.2.1)")
}

// noDANEReason says why DANE does not apply to a host.
func noDANEReason(pl *Plan, t *target) string {
	switch {
	case !pl.DANEChecked:
		return "DANE could not be checked: the resolver gives no DNSSEC answers (no trusted validating upstream)"
	case t.ip != nil && !t.ip.Secure():
		return "no DANE: the host's address records are not DNSSEC-validated (an unsigned zone), so its TLSA records are not looked up (RFC 7672 §2.2.3)"
	case t.tl != nil && t.tl.Owner != "":
		return "no DANE: the TLSA RRset at " + t.tl.Owner + " is not usable"
	default:
		return "no DANE: no DNSSEC-validated TLSA records for the host (RFC 7672 §2.2)"
	}
}

func unusableReason(h *dane.HostTLSA) string {
	if len(h.Records) == 0 {
		return "empty"
	}
	return h.Records[0].UnusableReason()
}

// matchedPattern returns the policy's mx pattern that host matches.
func matchedPattern(pol *mtasts.Policy, host string) string {
	if pol == nil {
		return ""
	}
	for _, m := range pol.MX {
		if (&mtasts.Policy{MX: []string{m}}).Match(host) {
			return "mx: " + m
		}
	}
	return ""
}

// stsReport is the TLS-RPT identity of an MTA-STS policy.
func stsReport(domain string, sts *mtasts.Result) *tlsrpt.Policy {
	return &tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: domain, Strings: sts.PolicyStrings(), MXHosts: sts.Policy.MX}
}
