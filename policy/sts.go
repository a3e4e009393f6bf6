package policy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// dialViaResolver is the MTA-STS client's DialContext: it resolves the
// policy host through the Planner's resolver, so that the TXT record and
// the policy host's addresses come from the same place, and dials the
// addresses in turn with DialContext.
func (p *Planner) dialViaResolver(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return p.dial(ctx, network, addr)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid port in %q", addr)
	}
	ans, err := p.res.LookupIP(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var errs []error
	for _, a := range ans.Addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		c, err := p.dial(ctx, network, netip.AddrPortFrom(a, uint16(pn)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: ans.Server, IsNotFound: true}
	}
	return nil, errors.Join(errs...)
}

// Recheck is what RFC 8461 §5.1 requires before a delivery that failed
// because of an MTA-STS policy in mode enforce fails permanently (every
// host excluded as not listed, see Error.Recheck, or every listed host
// failing TLS or certificate checks): it looks up the _mta-sts TXT record
// again and, when its id changed, fetches the new policy and plans again.
//
// It returns the new plan and true when the policy changed: deliver under
// that plan. It returns pl and false with a nil error when the policy did
// not change (or pl has no enforce policy): the failure may become
// permanent. It returns pl, false and an error when the check could not be
// completed: treat the failure as temporary.
func (p *Planner) Recheck(ctx context.Context, pl *Plan) (*Plan, bool, error) {
	if err := p.init(); err != nil {
		return pl, false, err
	}
	if pl == nil || !pl.sts.Enforced() {
		return pl, false, nil
	}
	_, changed, err := p.sts.Recheck(ctx, pl.sts)
	if err != nil {
		return pl, false, fmt.Errorf("policy: rechecking the MTA-STS policy of %s: %w", pl.Domain, err)
	}
	if !changed {
		return pl, false, nil
	}
	np, err := p.Plan(ctx, pl.Domain)
	if err != nil {
		return pl, false, err
	}
	if np.Input == "" {
		np.Input = pl.Input
	}
	return np, true, nil
}

// stsInfo summarises an MTA-STS result for the plan.
func stsInfo(r *mtasts.Result) *STSInfo {
	info := &STSInfo{Source: r.Source.String(), ID: r.ID, ResultType: r.ReportResultType()}
	if r.Policy != nil {
		info.Mode = string(r.Policy.Mode)
		info.MX = r.Policy.MX
		info.Expires = r.Expires()
	}
	if r.Err != nil && !errors.Is(r.Err, mtasts.ErrNoRecord) {
		info.Error = r.Err.Error()
	}
	return info
}
