package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

const checkUsage = `Usage: smtpsecure check [options] domain

Reports how well domain protects the mail sent to it: its MX records and their
DNSSEC, its MTA-STS policy, its TLS-RPT record, and for each MX host and
address a live STARTTLS probe on port 25 (TLS version and cipher, the
certificate chain and its expiry, the Web PKI verdict, each TLSA record, the
MTA-STS verdict, REQUIRETLS). Every finding is ok, warning or error with one
line of advice. It sends no mail.

Exit code 0 when nothing is an error (warnings allowed), 1 when something is,
64 for a usage mistake, 78 for a configuration mistake.

Options:
`

// check runs "smtpsecure check".
func (c *cli) check(ctx context.Context, args []string) error {
	fs := c.newFlagSet("check", checkUsage)
	var nf netFlags
	nf.register(fs, false)
	asJSON := fs.Bool("json", false, "print the report as JSON (a stable shape, see the README)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each step of a probe (connect, greeting, each reply, the handshake)")
	verbose := fs.Bool("v", false, "show each probe's SMTP dialogue on standard error")
	local := fs.String("ehlo", "", "name to send in EHLO (default localhost)")
	pos, err := c.parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("check takes one domain")
	}
	p, err := nf.planner(c.now(), c.dial)
	if err != nil {
		return err
	}
	prog := newProgress(c.stderr, c.terminal)
	defer prog.done()
	rep, err := c.runCheck(ctx, pos[0], p, *timeout, *verbose, *local, prog)
	prog.done()
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(c.stdout)
	}
	if rep.Verdict == statusError {
		return codef(1, "%s: %s", rep.Domain, plural(rep.Counts[statusError], "error"))
	}
	return nil
}

// runCheck gathers everything check reports on.
func (c *cli) runCheck(ctx context.Context, domain string, p *policy.Planner, timeout time.Duration, verbose bool, local string, prog *progress) (*checkReport, error) {
	rep := &checkReport{Domain: domain, CheckedAt: c.now().UTC()}
	rep.DNSSEC.Source, rep.DNSSEC.Detail = dnssecSource(p.Resolver)

	prog.say("looking up the MX, TLSA and MTA-STS records of %s", domain)
	var tr tlsrptReport
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tr = lookupTLSRPT(ctx, p.Resolver, domain)
	}()
	plan, err := p.Plan(ctx, domain)
	wg.Wait()
	if err != nil {
		if errors.Is(err, policy.ErrInvalidDomain) {
			return nil, usageError("%v", err)
		}
		return nil, withCode(exitConfig, err)
	}
	rep.Domain = plan.Domain
	rep.TLSRPT = tr
	rep.MTASTS = c.stsDetails(ctx, p, plan)
	rep.MX = mxDetails(plan)

	var pol *mtasts.Policy
	if plan.MTASTS != nil && (plan.MTASTS.Mode == string(mtasts.ModeEnforce) || plan.MTASTS.Mode == string(mtasts.ModeTesting)) {
		pol = &mtasts.Policy{Mode: mtasts.Mode(plan.MTASTS.Mode), MX: plan.MTASTS.MX}
	}
	pr := &prober{roots: p.RootCAs, timeout: timeout, dial: p.DialContext, now: c.now, local: local}
	if verbose {
		pr.logger = slog.New(newTranscript(c.stderr, true))
	}
	probes := c.runProbes(ctx, plan, pr, prog)
	for _, pb := range probes {
		if pol != nil && pb.STARTTLS {
			pb.MTASTS = &stsMatchReport{Listed: pol.Match(pb.Host)}
			pb.MTASTS.Accepted = pb.MTASTS.Listed && pb.WebPKIValid
			switch {
			case !pb.MTASTS.Listed:
				pb.MTASTS.Error = "the host is not listed in the policy's mx patterns"
			case !pb.WebPKIValid:
				pb.MTASTS.Error = pb.WebPKIError
			}
		}
	}
	rep.Probes = probes

	judgeDNS(rep, plan)
	judgeMTASTS(rep, plan)
	judgeTLSRPT(rep)
	judgeHosts(rep, plan, probes, c.now())
	rep.conclude()
	return rep, nil
}

// runProbes probes every address of every host that has addresses, in
// parallel (at most 8 at once), and returns the reports in plan order.
func (c *cli) runProbes(ctx context.Context, plan *policy.Plan, pr *prober, prog *progress) []*probeReport {
	type job struct {
		h    *policy.Host
		addr netip.Addr
		i    int
	}
	var jobs []job
	for _, h := range plan.Hosts {
		for _, a := range h.Addrs {
			jobs = append(jobs, job{h, a, len(jobs)})
		}
	}
	out := make([]*probeReport, len(jobs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	doneCount := 0
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[j.i] = pr.probe(ctx, j.h, j.addr)
			mu.Lock()
			doneCount++
			prog.say("probed %d of %d MX addresses (%s %s)", doneCount, len(jobs), j.h.Name, j.addr)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// lookupTLSRPT looks up the domain's TLS-RPT record.
func lookupTLSRPT(ctx context.Context, r *dane.Resolver, domain string) tlsrptReport {
	rec, err := tlsrpt.LookupRecord(ctx, r, domain)
	if err != nil {
		if errors.Is(err, tlsrpt.ErrNoRecord) {
			return tlsrptReport{}
		}
		return tlsrptReport{Error: err.Error()}
	}
	return tlsrptReport{Record: rec.String(), RUA: rec.RUAs}
}

// stsDetails describes the MTA-STS outcome of the plan, with the TXT
// record and the policy's max_age.
func (c *cli) stsDetails(ctx context.Context, p *policy.Planner, plan *policy.Plan) stsReport {
	var s stsReport
	if plan.MTASTS == nil {
		return s
	}
	s.Mode, s.ID, s.MX, s.Source = plan.MTASTS.Mode, plan.MTASTS.ID, plan.MTASTS.MX, plan.MTASTS.Source
	s.Error, s.ResultType = plan.MTASTS.Error, plan.MTASTS.ResultType
	if rec, err := mtasts.LookupRecord(ctx, p.Resolver, plan.Domain); err == nil {
		s.Record = rec.String()
	}
	if cl, err := p.MTASTSClient(); err == nil && s.Mode != "" {
		if res, err := cl.Get(ctx, plan.Domain); err == nil && res.Policy != nil {
			s.MaxAgeSeconds = int64(res.Policy.MaxAge / time.Second)
		}
	}
	return s
}

// mxDetails copies the plan's MX lookup and hosts.
func mxDetails(plan *policy.Plan) mxReport {
	m := mxReport{Secure: plan.MX.Secure, Null: plan.MX.Null, Implicit: plan.MX.Implicit, Hosts: []hostReport{}}
	if plan.Err != nil {
		m.Error = plan.Err.Error()
	}
	for _, h := range plan.Hosts {
		hr := hostReport{Name: h.Name, Preference: h.Preference, AddrsSecure: h.AddrsSecure, TLSA: h.TLSA, TLSAOwner: h.TLSAOwner, Addrs: []string{}}
		if hr.TLSA == nil {
			hr.TLSA = []string{}
		}
		for _, a := range h.Addrs {
			hr.Addrs = append(hr.Addrs, a.String())
		}
		if h.Excluded != nil {
			hr.Excluded = fmt.Sprintf("%s: %s", h.Excluded.Code, h.Excluded.Detail)
		} else {
			hr.Requirement, hr.Source = h.Requirement.String(), h.Source.String()
		}
		m.Hosts = append(m.Hosts, hr)
	}
	return m
}
