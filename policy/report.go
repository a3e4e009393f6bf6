package policy

import (
	"time"

	"errors"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// ReportResults returns the TLS-RPT records (RFC 8460) that the plan
// itself calls for, apart from any session: a failed MTA-STS discovery
// (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), a bogus
// MX RRset (dnssec-invalid), and each excluded host whose exclusion has a
// result type (dnssec-invalid for a bogus or failed address or TLSA
// lookup, dane-required under a dane-only rule). A program records them
// once per delivery attempt that uses the plan, with Time set to at, next
// to one record per session (see Host.Report).
func (p *Plan) ReportResults(at time.Time) []tlsrpt.Result {
	var out []tlsrpt.Result
	if s := p.sts; s != nil {
		if rt := s.ReportResultType(); rt != "" {
			pol := tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: p.Domain, Strings: s.PolicyStrings()}
			if s.Policy != nil {
				pol.MXHosts = s.Policy.MX
			}
			info := ""
			if s.Err != nil {
				info = s.Err.Error()
			}
			out = append(out, tlsrpt.Result{Time: at, Policy: pol, ResultType: rt, AdditionalInfo: info})
		}
	}
	var e *Error
	if errors.As(p.Err, &e) && errors.Is(e.Err, ErrMXLookup) && errors.Is(e.Err, dane.ErrBogus) {
		out = append(out, tlsrpt.Result{
			Time:           at,
			Policy:         tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: p.Domain},
			ResultType:     rfc8460.DNSSECInvalid,
			AdditionalInfo: e.Err.Error(),
		})
	}
	for _, h := range p.Hosts {
		x := h.Excluded
		if x == nil || x.ResultType == "" || h.Report == nil {
			continue
		}
		r := tlsrpt.Result{Time: at, Policy: *h.Report, ResultType: x.ResultType, ReceivingMXHostname: h.Name, AdditionalInfo: x.Detail}
		if x.Err != nil {
			r.AdditionalInfo = x.Err.Error()
		}
		out = append(out, r)
	}
	return out
}
