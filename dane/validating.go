package dane

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// validating reports whether the Resolver checks DNSSEC itself
// (Resolver.Validator is set). In that mode any answer can be Secure,
// whatever upstream it came from, so Resolver.CanValidate must report
// true.
func (r *Resolver) validating() bool { return r.Validator != nil }

// cachedAnswer is a validated reply kept in the Validator's cache, or the
// reason it was bogus.
type cachedAnswer struct {
	msg    *dns.Msg
	status Status
	server string
	err    error // a *ValidationError when status is Bogus
}

// answer returns the reply to (name, qtype) and its validated status,
// from the cache or from upstream.
func (vl *vlookup) answer(name string, qtype uint16) (*response, Status, error) {
	k := cacheKey{name, qtype, kindAnswer}
	if v, ok := vl.v.cache.get(k, vl.now); ok {
		ca := v.(*cachedAnswer)
		return &response{msg: ca.msg, server: ca.server}, ca.status, ca.err
	}
	m, server, err := vl.ask(name, qtype)
	if err != nil {
		return nil, statusOf(err), err
	}
	vl.exp = vl.now.Add(maxCacheTTL)
	st, err := vl.validate(m, name, qtype)
	if err != nil {
		if st == Bogus {
			vl.v.cache.put(k, &cachedAnswer{msg: m, status: st, server: server, err: err}, vl.now.Add(bogusTTL), vl.now)
		}
		return &response{msg: m, server: server}, st, err
	}
	vl.v.cache.put(k, &cachedAnswer{msg: m, status: st, server: server}, vl.exp, vl.now)
	return &response{msg: m, server: server}, st, nil
}

// failure turns an error from validation into the LookupError for the
// name and type looked up.
func (vl *vlookup) failure(name string, qtype uint16, server string, err error) *LookupError {
	le := &LookupError{Name: name, Type: typeString(qtype), Server: server, Rcode: -1, Status: statusOf(err)}
	var ve *ValidationError
	var qe *queryError
	switch {
	case errors.As(err, &ve):
		le.EDE = []ExtendedError{{Code: ve.Code}}
		le.Err = fmt.Errorf("%w: %w", ErrBogus, err)
	case errors.As(err, &qe):
		le.Server, le.Rcode, le.EDE = qe.f.server, qe.f.rcode, qe.f.ede
		if qe.f.bogus {
			le.Err = fmt.Errorf("%w: %w", ErrBogus, err)
		} else {
			le.Err = fmt.Errorf("%w: %w", ErrLookup, err)
		}
	default:
		le.Err = fmt.Errorf("%w: %w", ErrLookup, err)
	}
	return le
}

// copyRRs returns copies of records, so that a caller may change what a
// lookup returned without changing the cache.
func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
