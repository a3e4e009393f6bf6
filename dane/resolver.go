package dane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Status is the DNSSEC status of an answer, as RFC 7672 §2.1.1 classifies
// it.
type Status uint8

const (
	// Indeterminate is the zero value: no usable answer (a lookup error).
	Indeterminate Status = iota
	// Insecure means the answer did not validate as secure: the zone is
	// unsigned, or the resolver is not trusted to say otherwise.
	Insecure
	// Secure means a trusted validating resolver set the AD bit: every
	// record in the answer, and every CNAME that led to it, validated.
	Secure
	// Bogus means the resolver found the answer's signatures invalid.
	Bogus
)

// String returns "indeterminate", "insecure", "secure" or "bogus".
func (s Status) String() string {
	switch s {
	case Indeterminate:
		return "indeterminate"
	case Insecure:
		return "insecure"
	case Secure:
		return "secure"
	case Bogus:
		return "bogus"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// weaker returns the status of an answer made of two parts.
func weaker(a, b Status) Status {
	rank := func(s Status) int {
		switch s {
		case Secure:
			return 0
		case Insecure:
			return 1
		case Indeterminate:
			return 2
		}
		return 3 // Bogus
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Defaults of a Resolver.
const (
	DefaultTimeout    = 3 * time.Second
	DefaultAttempts   = 2
	DefaultResolvConf = "/etc/resolv.conf"
)

const (
	ednsUDPSize  = 1232 // the DNS flag day 2020 size, avoids fragmentation
	udpReadSize  = 4096 // what we accept from a server that ignores it
	maxChainLen  = 16   // CNAME links followed in one lookup
	maxServerLen = 8    // upstream servers used
)

// Resolver is a DNSSEC-aware stub resolver. It asks upstream validating
// resolvers over UDP (TCP when an answer is truncated) with EDNS0 and the
// DO and AD bits, and tells a secure answer from an insecure, bogus or
// failed one.
//
// The AD bit is believed only from an upstream on a loopback address or one
// listed in TrustedServers; see the package documentation for why. When at
// least one upstream is trusted, only the trusted upstreams are asked: an
// untrusted upstream never answers a query, not even after every trusted
// one failed, so that a failed or bogus lookup can never be turned into an
// insecure answer (and "no DANE") by another resolver. Untrusted upstreams
// are used only when none is trusted, and their answers are then never
// Secure.
//
// With a Validator set, the Resolver is in validating mode instead: it
// checks every signature itself, from the trust anchors down, and asks any
// upstream, trusted or not, since a forged answer cannot pass validation.
//
// The zero value reads its upstreams from /etc/resolv.conf at each lookup.
// A Resolver is safe for concurrent use. Without a Validator it keeps no
// cache: run it against a caching validating resolver such as Unbound on the
// same host. In validating mode the Validator caches what it validated.
type Resolver struct {
	// Servers are the upstream resolvers, as "ip:port" or "ip" (port 53);
	// IPv6 addresses in brackets with a port: "[::1]:53". Empty means the
	// nameserver lines of ResolvConf. At most 8 are used.
	Servers []string

	// TrustedServers lists upstream addresses, "ip" or "ip:port" (the port
	// is ignored), that are not on a loopback address but whose AD bit is
	// to be believed: a validating resolver reached over a network path the
	// caller trusts (a private link, IPsec). Loopback upstreams are always
	// trusted. Answers from any other upstream are never Secure. Ignored in
	// validating mode.
	TrustedServers []string

	// Timeout bounds one query to one server. Zero means the resolv.conf
	// "options timeout:" value when Servers is empty, else 3 seconds.
	Timeout time.Duration

	// Attempts is how many rounds over Servers are made before a lookup
	// fails. Zero means the resolv.conf "options attempts:" value when
	// Servers is empty, else 2.
	Attempts int

	// ResolvConf is the file read when Servers is empty; default
	// /etc/resolv.conf. Its "options trust-ad" line is not honoured:
	// trusting a remote resolver is a choice made in code, with
	// TrustedServers.
	ResolvConf string

	// Validator, when set, switches the Resolver to validating mode: it
	// asks every upstream with the DO and CD bits, checks the DNSSEC
	// signatures itself from the Validator's trust anchors, and ignores
	// the AD bit and TrustedServers. Nil (the default) means the AD bit
	// of a trusted upstream decides. See "Validating mode" in the package
	// documentation.
	Validator *Validator

	// loopbackUntrusted makes loopback upstreams untrusted, so that tests
	// on 127.0.0.1 can exercise the untrusted path.
	loopbackUntrusted bool
	// untrustedServers lists upstreams ("ip:port", as netip.AddrPort
	// prints them) to treat as untrusted although they are on loopback, so
	// that a test can mix a trusted and an untrusted upstream on 127.0.0.1.
	untrustedServers []string

	// exchangeFn, when set, replaces the network: tests and fuzzing feed
	// replies to the resolver through it.
	exchangeFn func(ctx context.Context, server netip.AddrPort, m *dns.Msg) (*dns.Msg, error)
}

// upstream is one configured server.
type upstream struct {
	addr    netip.AddrPort
	trusted bool
}

// parseServer parses "ip", "ip:port" or "[ipv6]:port".
func parseServer(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("upstream %q is not an IP address with an optional port", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}

// config returns the upstreams, the timeout and the attempts to use.
func (r *Resolver) config() ([]upstream, time.Duration, int, error) {
	servers, timeout, attempts := r.Servers, r.Timeout, r.Attempts
	if len(servers) == 0 {
		path := r.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		cc, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("no upstream resolver: reading %s: %w", path, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if timeout == 0 && cc.Timeout > 0 {
			timeout = time.Duration(cc.Timeout) * time.Second
		}
		if attempts == 0 && cc.Attempts > 0 {
			attempts = cc.Attempts
		}
		if len(servers) == 0 {
			return nil, 0, 0, fmt.Errorf("no upstream resolver: %s lists no nameserver", path)
		}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	trusted := map[netip.Addr]bool{}
	for _, s := range r.TrustedServers {
		ap, err := parseServer(s)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("trusted server: %w", err)
		}
		trusted[ap.Addr().Unmap().WithZone("")] = true
	}
	var ups []upstream
	for _, s := range servers {
		ap, err := parseServer(s)
		if err != nil {
			return nil, 0, 0, err
		}
		a := ap.Addr().Unmap()
		ups = append(ups, upstream{
			addr: ap,
			trusted: ((a.IsLoopback() && !r.loopbackUntrusted) || trusted[a.WithZone("")]) &&
				!slices.Contains(r.untrustedServers, ap.String()),
		})
		if len(ups) == maxServerLen {
			break
		}
	}
	return ups, timeout, attempts, nil
}

// response is one reply and where it came from.
type response struct {
	msg     *dns.Msg
	server  string
	trusted bool
}

// failure describes a failed query for a LookupError.
type failure struct {
	server string
	rcode  int
	ede    []ExtendedError
	bogus  bool
	err    error
}

// query asks the upstreams for qname (an FQDN) and qtype, over UDP and
// then TCP if truncated, trying each server in turn for the configured
// attempts. It returns a NOERROR or NXDOMAIN response, or a failure.
//
// Only the upstreams that askedUpstreams selects are asked. An upstream
// that answered with an error code is not asked again in later rounds;
// one that timed out is. Once a trusted upstream has reported the answer
// bogus (SERVFAIL with a DNSSEC extended error), only a Secure answer
// (the AD bit from another trusted upstream) can still decide the query:
// an insecure answer would turn "bogus" into "no DANE".
func (r *Resolver) query(ctx context.Context, qname string, qtype uint16) (*response, *failure) {
	ups, timeout, attempts, err := r.config()
	if err != nil {
		return nil, &failure{rcode: -1, err: err}
	}
	validating := r.validating()
	if !validating {
		ups = askedUpstreams(ups)
	}
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = true
	if validating {
		// RFC 4035 §3.2.2: CD asks for the data even when the upstream
		// (if it validates) finds it bogus; the validator decides.
		m.CheckingDisabled = true
	} else {
		m.AuthenticatedData = true // RFC 6840 §5.7: we understand AD
	}
	m.SetEdns0(ednsUDPSize, true)

	var last, bogus *failure
	trustedBogus := false
	answered := make([]bool, len(ups)) // servers that gave an error answer are not asked again
	for range attempts {
		for i, up := range ups {
			if answered[i] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, &failure{rcode: -1, err: err}
			}
			resp, err := r.exchange(ctx, up.addr, m, timeout)
			if err != nil {
				if ctx.Err() != nil {
					return nil, &failure{server: up.addr.String(), rcode: -1, err: ctx.Err()}
				}
				last = &failure{server: up.addr.String(), rcode: -1, err: err}
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				if trustedBogus && !validating && !(up.trusted && resp.AuthenticatedData) {
					answered[i] = true
					continue
				}
				return &response{msg: resp, server: up.addr.String(), trusted: up.trusted}, nil
			}
			answered[i] = true
			f := &failure{server: up.addr.String(), rcode: resp.Rcode, ede: extendedErrors(resp)}
			if resp.Rcode == dns.RcodeServerFailure {
				for _, x := range f.ede {
					if x.DNSSEC() {
						f.bogus = true
					}
				}
			}
			if f.bogus {
				bogus = f
				trustedBogus = trustedBogus || up.trusted
			} else {
				last = f
			}
		}
	}
	if bogus != nil {
		return nil, bogus
	}
	return nil, last
}

// askedUpstreams returns the upstreams a query may go to: when at least
// one upstream is trusted, only the trusted ones, in their configured
// order; otherwise all of them.
//
// An untrusted upstream's answer is never Secure. Asking one after a
// trusted upstream failed (SERVFAIL, REFUSED, a timeout, a malformed
// reply) could therefore only turn a failed lookup, which makes a host
// unusable, into an insecure answer, which means "no DANE": exactly the
// downgrade that an attacker who can make the validating resolver fail
// and answer for the other one wants (RFC 7672 §2.1.1, §2.2). Asking the
// trusted upstreams first would not be enough either, since a trusted
// upstream that times out in one round may answer SERVFAIL in the next.
// So untrusted upstreams are not asked at all while a trusted one is
// configured, whatever their order in the list.
func askedUpstreams(ups []upstream) []upstream {
	var trusted []upstream
	for _, u := range ups {
		if u.trusted {
			trusted = append(trusted, u)
		}
	}
	if len(trusted) == 0 {
		return ups
	}
	return trusted
}

// extendedErrors returns the RFC 8914 options of a reply.
func extendedErrors(m *dns.Msg) []ExtendedError {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	var out []ExtendedError
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			out = append(out, ExtendedError{Code: e.InfoCode, Text: e.ExtraText})
		}
	}
	return out
}

var (
	errTruncatedTCP = errors.New("truncated reply over TCP")
	errMismatch     = errors.New("reply does not answer the question asked")
)

// exchange sends m to one server over UDP, and over TCP if the UDP reply
// was truncated.
func (r *Resolver) exchange(ctx context.Context, server netip.AddrPort, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	if r.exchangeFn != nil {
		return r.exchangeFn(ctx, server, m)
	}
	resp, err := exchangeNet(ctx, "udp", server, m, timeout)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		resp, err = exchangeNet(ctx, "tcp", server, m, timeout)
		if err != nil {
			return nil, err
		}
		if resp.Truncated {
			return nil, fmt.Errorf("%s: %w", server, errTruncatedTCP)
		}
	}
	return resp, nil
}

// exchangeNet sends one query over one transport. Cancelling ctx
// interrupts it at once.
func exchangeNet(ctx context.Context, network string, server netip.AddrPort, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	co := &dns.Conn{Conn: conn, UDPSize: udpReadSize}
	if err := co.WriteMsg(m); err != nil {
		return nil, fmt.Errorf("%s query to %s: %w", network, server, err)
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			if resp != nil || errors.Is(err, dns.ErrShortRead) {
				return nil, fmt.Errorf("malformed %s reply from %s: %w", network, server, err)
			}
			return nil, fmt.Errorf("%s query to %s: %w", network, server, err)
		}
		if resp.Id != m.Id {
			if network == "udp" {
				continue // a late reply to an earlier query
			}
			return nil, fmt.Errorf("%s reply from %s: %w", network, server, errMismatch)
		}
		if !resp.Response || len(resp.Question) != 1 ||
			!strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) ||
			resp.Question[0].Qtype != m.Question[0].Qtype {
			if resp.Truncated && len(resp.Question) == 0 && resp.Response {
				return resp, nil // some servers drop the question from a TC reply
			}
			return nil, fmt.Errorf("%s reply from %s: %w", network, server, errMismatch)
		}
		return resp, nil
	}
}
