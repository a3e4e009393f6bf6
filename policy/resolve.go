package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// target is a host of the plan with the DNS answers its decision needs.
type target struct {
	h  *Host
	ip *dane.IPAnswer
	tl *dane.HostTLSA // nil when TLSA records were not looked up
}

// resolveMX looks up the domain's MX records and returns the hosts to
// consider, in order. It sets pl.Err when the domain cannot receive mail.
func (p *Planner) resolveMX(ctx context.Context, pl *Plan) []*target {
	d := pl.Domain
	mx, err := p.res.LookupMX(ctx, d)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		pl.Err = &Error{Domain: d, Temporary: true, Err: fmt.Errorf("%w: %w", ErrMXLookup, err)}
		if errors.Is(err, dane.ErrBogus) {
			pl.why("the MX RRset failed DNSSEC validation (bogus): delivery is deferred, never attempted with unvalidated data (RFC 7672 §2.1.1, §2.1.2)")
		} else {
			pl.why("the MX lookup failed: delivery is deferred; a failed lookup is never taken as \"no MX\" (RFC 7672 §2.1.2)")
		}
		return nil
	}
	pl.MX.Secure = mx.Secure()
	if mx.Canonical != "" && mx.Canonical != mx.Name {
		pl.MX.Canonical = mx.Canonical
	}
	pl.MX.NextHopNames = dane.NextHopNames(mx)
	switch {
	case mx.NullMX:
		pl.MX.Null = true
		pl.Err = &Error{Domain: d, Err: ErrNullMX}
		pl.why("the domain publishes a null MX (\"MX 0 .\"): it accepts no mail; no connection is made (RFC 7505 §3)")
		return nil
	case len(mx.MX) == 0 && mx.NXDomain:
		pl.Err = &Error{Domain: d, Err: ErrNoSuchDomain}
		pl.why("the domain does not exist (NXDOMAIN)")
		return nil
	case len(mx.MX) == 0:
		pl.MX.Implicit = true
		pl.why("the domain has no MX records: its own addresses are the implicit MX, preference 0 (RFC 5321 §5.1)")
		return []*target{{h: &Host{Name: d, Implicit: true}}}
	}
	if pl.MX.Secure {
		pl.why(fmt.Sprintf("the MX RRset is DNSSEC-validated: DANE may also match the certificate against %s (RFC 7672 §2.2.1, §3.2.2)", orList(pl.MX.NextHopNames)))
	} else {
		pl.why("the MX RRset is not DNSSEC-validated: DANE can still apply to hosts in signed zones, but only their own names are reference identifiers (RFC 7672 §2.2.1)")
	}
	var hosts []*Host
	seen := map[string]bool{}
	for _, m := range mx.MX {
		if seen[m.Host] {
			continue
		}
		seen[m.Host] = true
		hosts = append(hosts, &Host{Name: m.Host, Preference: m.Preference})
	}
	p.shuffle(hosts)
	targets := make([]*target, len(hosts))
	for i, h := range hosts {
		targets[i] = &target{h: h}
		if i >= MaxHosts {
			exclude(h, ExcludedOverLimit, false, "", nil,
				fmt.Sprintf("only the first %d MX hosts are considered", MaxHosts))
		}
	}
	return targets
}

// lookupHosts looks up the addresses and, when the rule needs them, the
// TLSA records of every host not yet excluded, a few at a time.
func (p *Planner) lookupHosts(ctx context.Context, pl *Plan, targets []*target) {
	sem := make(chan struct{}, lookupParallelism)
	var wg sync.WaitGroup
	for _, t := range targets {
		if t.h.Excluded != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.lookupHost(ctx, pl, t)
		}()
	}
	wg.Wait()
}

// lookupHost does the RFC 7672 §2.2 lookups for one host.
func (p *Planner) lookupHost(ctx context.Context, pl *Plan, t *target) {
	h := t.h
	if _, err := netip.ParseAddr(h.Name); err == nil {
		exclude(h, ExcludedIPLiteral, false, "", nil,
			"the MX target is an IP address; an MX record must name a host (RFC 5321 §5.1), and such a host cannot be authenticated")
		return
	}
	if _, err := idn.ToASCII(h.Name); err != nil {
		exclude(h, ExcludedInvalidName, false, "", err, "the MX target is not a valid host name: "+err.Error())
		return
	}
	ip, err := p.res.LookupIP(ctx, h.Name)
	if err != nil {
		if errors.Is(err, dane.ErrBogus) {
			exclude(h, ExcludedAddressBogus, true, rfc8460.DNSSECInvalid, err,
				"the host's address records failed DNSSEC validation (bogus): it is not used until they validate (RFC 7672 §2.1.1)")
			h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: pl.Domain, MXHosts: []string{h.Name}}
		} else {
			exclude(h, ExcludedAddressLookup, true, "", err, "the host's address lookup failed: "+err.Error())
		}
		return
	}
	t.ip = ip
	h.AddrsSecure = ip.Secure()
	if ip.Canonical != "" && ip.Canonical != ip.Name {
		h.Canonical = ip.Canonical
	}
	if len(ip.Addrs) == 0 {
		exclude(h, ExcludedNoAddress, false, "", nil, "the host has no A or AAAA records")
		return
	}
	h.Addrs = ip.Addrs
	if !pl.Rule.Level.usesTLSA() {
		return
	}
	tl, err := p.res.LookupHostTLSA(ctx, ip, Port)
	if tl != nil {
		h.TLSAOwner = tl.Owner
		for _, r := range tl.Records {
			h.TLSA = append(h.TLSA, r.String())
		}
	}
	if err != nil {
		code := ExcludedTLSALookup
		detail := "the host's TLSA lookup failed: it is unusable, never treated as having no TLSA records, which is what an attacker who drops DNS answers would want (RFC 7672 §2.1.2, §2.2)"
		if errors.Is(err, dane.ErrBogus) {
			code = ExcludedTLSABogus
			detail = "the host's TLSA records failed DNSSEC validation (bogus): it is unusable, never treated as having no TLSA records (RFC 7672 §2.2)"
		}
		exclude(h, code, true, rfc8460.DNSSECInvalid, err, detail)
		h.Report = &tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: pl.Domain, MXHosts: []string{h.Name}}
		return
	}
	t.tl = tl
}

// exclude marks a host as not to be used.
func exclude(h *Host, code ExclusionCode, temporary bool, resultType string, err error, detail string) {
	h.Excluded = &Exclusion{Code: code, Temporary: temporary, ResultType: resultType, Detail: detail, Err: err}
	h.Requirement, h.Source, h.Report, h.Testing, h.RequireTLS = Requirement{}, SourceDefault, nil, nil, false
	h.why("excluded: " + detail)
}

func (h *Host) why(s string) { h.Why = append(h.Why, s) }

func (p *Plan) why(s string) { p.Why = append(p.Why, s) }
