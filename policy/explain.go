package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// explainRule records which local rule applies.
func (p *Plan) explainRule(matched bool) {
	r := p.Rule
	how := "the default rule"
	if matched {
		how = "the local rule for " + r.Domain
	}
	switch r.Level {
	case LevelDANE:
		if matched {
			p.why(how + " is level dane: the domain's published policy decides")
		}
	case LevelInsecureOpportunistic:
		p.why(how + " is level insecure-opportunistic: published policies still apply, and hosts without one may get the mail in plaintext")
	case LevelInsecurePlaintext:
		p.why(how + " is level insecure-plaintext: no TLS; published policies are not consulted")
	default:
		p.why(how + " is level " + r.Level.String() + ": it decides instead of the published policy")
	}
	if !p.DANEChecked && r.Level.usesTLSA() {
		p.why("DANE could not be checked: the resolver cannot give DNSSEC answers (no trusted validating upstream), so every answer counts as unsigned; run a validating resolver on this host or list a trusted one")
	}
}

// explainSTS records the MTA-STS outcome.
func (p *Plan) explainSTS(r *mtasts.Result) {
	switch {
	case r.Policy == nil && (r.Err == nil || errors.Is(r.Err, mtasts.ErrNoRecord)):
		p.why("no MTA-STS policy: the domain publishes no _mta-sts TXT record")
	case r.Policy == nil:
		p.why(fmt.Sprintf("no MTA-STS policy could be had, and none is cached: delivery goes on as without one, and the failure is reported as %s (RFC 8461 §3.3)", orNone(r.ReportResultType())))
	case r.Source == mtasts.SourceCachedAfterFailure:
		p.why(fmt.Sprintf("MTA-STS discovery failed, so the cached policy (id %s, mode %s, valid until %s) applies (RFC 8461 §3.3, §5.1); the failure is reported as %s",
			r.ID, r.Policy.Mode, r.Expires().UTC().Format("2006-01-02 15:04 MST"), orNone(r.ReportResultType())))
	case r.Policy.Mode == mtasts.ModeNone:
		p.why("the MTA-STS policy is in mode none: treated as no policy (RFC 8461 §5)")
	default:
		p.why(fmt.Sprintf("MTA-STS policy in mode %s (id %s, %s), for the recipient domain itself (RFC 8461 §3.4)", r.Policy.Mode, r.ID, r.Source))
	}
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// summarize sets Err when no host may be used.
func (p *Plan) summarize() {
	if p.Err != nil || len(p.Usable()) > 0 {
		return
	}
	e := &Error{Domain: p.Domain}
	recheck := false
	var reasons []string
	for _, h := range p.Hosts {
		if h.Excluded == nil {
			continue
		}
		if h.Excluded.Temporary {
			e.Temporary = true
		}
		if h.Excluded.Code == ExcludedNotInPolicy {
			recheck = true
		}
		reasons = append(reasons, h.Name+": "+string(h.Excluded.Code))
	}
	e.Recheck = recheck && !e.Temporary
	if p.MX.Implicit && len(p.Hosts) == 1 && p.Hosts[0].Excluded.Code == ExcludedNoAddress {
		e.Err = ErrNoMailHost
		p.why("the domain has neither MX records nor addresses of its own (RFC 5321 §5.1)")
	} else {
		e.Err = fmt.Errorf("%w (%s)", ErrNoUsableHost, strings.Join(reasons, "; "))
		switch {
		case e.Temporary:
			p.why("no MX host may be used now: delivery is deferred")
		case e.Recheck:
			p.why("no MX host is listed in the MTA-STS policy: check for a new policy before failing permanently (RFC 8461 §5.1)")
		default:
			p.why("no MX host may be used")
		}
	}
	p.Err = e
}

// String explains the plan on several lines, for people: the domain, the
// local rule, the DNSSEC and MTA-STS situation, then each host in the
// order it will be tried, with its requirement, the rule that decided it
// and why, or why it is excluded.
func (p *Plan) String() string {
	var b strings.Builder
	name := p.Domain
	if u := idn.ToUnicode(p.Domain); u != p.Domain {
		name = u + " (" + p.Domain + ")"
	}
	fmt.Fprintf(&b, "Delivery plan for %s\n", name)
	fmt.Fprintf(&b, "  local rule: %s\n", p.Rule.String())
	if p.DANEChecked {
		b.WriteString("  DNSSEC: the resolver validates; DANE checked\n")
	} else {
		b.WriteString("  DNSSEC: no trusted validating resolver; DANE NOT checked\n")
	}
	b.WriteString("  MX: " + p.mxLine() + "\n")
	if s := p.MTASTS; s != nil {
		b.WriteString("  MTA-STS: " + s.line() + "\n")
	}
	if p.Err != nil {
		b.WriteString("  outcome: " + p.Err.Error() + "\n")
	} else {
		fmt.Fprintf(&b, "  outcome: %d of %d host(s) may be tried\n", len(p.Usable()), len(p.Hosts))
	}
	for _, w := range p.Why {
		b.WriteString("  - " + w + "\n")
	}
	for i, h := range p.Hosts {
		h.write(&b, i+1)
	}
	return b.String()
}

func (p *Plan) mxLine() string {
	var s string
	switch {
	case errors.Is(p.Err, ErrMXLookup):
		return "lookup failed"
	case errors.Is(p.Err, ErrNoSuchDomain):
		return "the domain does not exist"
	case p.MX.Null:
		s = "null MX"
	case p.MX.Implicit:
		s = "none; implicit MX " + p.Domain
	default:
		s = fmt.Sprintf("%d host(s)", len(p.Hosts))
	}
	if p.MX.Secure {
		s += ", DNSSEC-validated"
	} else {
		s += ", not DNSSEC-validated"
	}
	if p.MX.Canonical != "" {
		s += ", via CNAME " + p.MX.Canonical
	}
	return s
}

func (s *STSInfo) line() string {
	var parts []string
	if s.Mode == "" {
		parts = append(parts, "no policy")
	} else {
		parts = append(parts, "mode "+s.Mode, "id "+s.ID, s.Source)
		if !s.Expires.IsZero() {
			parts = append(parts, "valid until "+s.Expires.UTC().Format("2006-01-02 15:04 MST"))
		}
		if len(s.MX) > 0 {
			parts = append(parts, "mx "+strings.Join(s.MX, " "))
		}
	}
	if s.Error != "" {
		parts = append(parts, "discovery failed: "+s.Error)
	}
	if s.ResultType != "" && !strings.Contains(s.Error, "["+s.ResultType+"]") {
		parts = append(parts, "reported as "+s.ResultType)
	}
	return strings.Join(parts, "; ")
}

func (h *Host) write(b *strings.Builder, n int) {
	fmt.Fprintf(b, "  %d. %s (preference %d", n, h.Name, h.Preference)
	if h.Implicit {
		b.WriteString(", implicit MX")
	}
	b.WriteString(")")
	if h.Canonical != "" {
		b.WriteString(" = CNAME " + h.Canonical)
	}
	if len(h.Addrs) > 0 {
		addrs := make([]string, len(h.Addrs))
		for i, a := range h.Addrs {
			addrs[i] = a.String()
		}
		b.WriteString(" " + strings.Join(addrs, " "))
		if h.AddrsSecure {
			b.WriteString(" [DNSSEC]")
		}
	}
	b.WriteString("\n")
	if e := h.Excluded; e != nil {
		kind := "permanent"
		switch {
		case e.Temporary:
			kind = "temporary"
		case e.Code == ExcludedNotInPolicy:
			kind = "until the MTA-STS policy changes"
		}
		fmt.Fprintf(b, "     EXCLUDED (%s, %s)\n", e.Code, kind)
	} else {
		fmt.Fprintf(b, "     requires: %s\n", h.Requirement.String())
		fmt.Fprintf(b, "     decided by: %s\n", h.Source)
		if h.Testing != nil {
			fmt.Fprintf(b, "     MTA-STS testing would require: %s (host listed: %v)\n", h.Testing.Requirement.String(), h.Testing.InPolicy)
		}
		if h.RequireTLS {
			b.WriteString("     REQUIRETLS: allowed if the host advertises it\n")
		} else {
			b.WriteString("     REQUIRETLS: not allowed\n")
		}
	}
	if len(h.TLSA) > 0 {
		fmt.Fprintf(b, "     TLSA at %s: %s\n", h.TLSAOwner, strings.Join(shortAll(h.TLSA), "; "))
	}
	if r := h.Report; r != nil {
		fmt.Fprintf(b, "     TLS report: policy %s for %s\n", r.Type, r.Domain)
	}
	for _, w := range h.Why {
		b.WriteString("     - " + w + "\n")
	}
}

func shortAll(recs []string) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = shortTLSA(r)
	}
	return out
}

// MarshalJSON encodes the plan with Err as a string field "error", so that
// a plan can be printed with encoding/json.
func (p *Plan) MarshalJSON() ([]byte, error) {
	type plain Plan // without the MarshalJSON method
	v := struct {
		*plain
		Error     string `json:"error,omitempty"`
		Temporary bool   `json:"temporary,omitempty"`
		Recheck   bool   `json:"recheck,omitempty"`
	}{plain: (*plain)(p)}
	var e *Error
	if errors.As(p.Err, &e) {
		v.Temporary, v.Recheck = e.Temporary, e.Recheck
	}
	if p.Err != nil {
		v.Error = p.Err.Error()
	}
	return json.Marshal(v)
}
