package dane

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/miekg/dns"
)

// Decision is what RFC 7672 §2.2 requires for connections to one SMTP
// server host, given its address and TLSA lookups.
type Decision uint8

const (
	// HostUnusable means the host must not be used: its address or TLSA
	// lookup failed or was bogus (RFC 7672 §2.1.2, §2.2). Try the next MX
	// host or defer; never fall back to a connection without DANE. It is
	// the zero value.
	HostUnusable Decision = iota
	// NoDANE means DANE does not apply: the host's addresses or TLSA
	// records are not DNSSEC-validated, or validated as absent. Deliver as
	// without DANE (other policies, such as MTA-STS, may still apply).
	NoDANE
	// TLSRequired means the host has a validated TLSA RRset with no usable
	// record: TLS is mandatory, but the certificate is not authenticated
	// (RFC 7672 §2.2). If TLS fails, try the next MX host or defer.
	TLSRequired
	// DANERequired means the host has usable TLSA records: TLS and
	// authentication by those records are mandatory (RFC 7672 §2.2). If
	// either fails, try the next MX host or defer.
	DANERequired
)

// String returns the decision's name.
func (d Decision) String() string {
	switch d {
	case HostUnusable:
		return "host unusable"
	case NoDANE:
		return "no DANE"
	case TLSRequired:
		return "TLS required, unauthenticated"
	case DANERequired:
		return "DANE authentication required"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// HostTLSA is the outcome of the RFC 7672 TLSA procedure for one host and
// port.
type HostTLSA struct {
	// Host is the host name as looked up (the MX host), A-labels.
	Host string
	// Canonical is Host after CNAME expansion of its address records.
	Canonical string
	// Port is the TCP port, 25 for MX delivery.
	Port int
	// Decision is what connections to the host require.
	Decision Decision
	// BaseDomain is the TLSA base domain: the name whose TLSA RRset was
	// used, Canonical or Host (RFC 7672 §2.2.3). Empty without one.
	BaseDomain string
	// Owner is the owner name of that RRset, "_25._tcp." + BaseDomain.
	Owner string
	// Records are all the records of the RRset; Usable are those an SMTP
	// client may use, after digest agility (RFC 7671 §9).
	Records, Usable []TLSA
	// Reason explains a HostUnusable decision (the lookup error) or a
	// TLSRequired one (ErrUnusableTLSA); it is nil otherwise.
	Reason error
}

// ServerName returns the name to send in SNI: the TLSA base domain when
// there is one (RFC 7672 §8.1), else the host name.
func (h *HostTLSA) ServerName() string {
	if h.BaseDomain != "" {
		return h.BaseDomain
	}
	return h.Host
}

// ReferenceIDs returns the names a server certificate may match under a
// DANE-TA(2) record (RFC 7672 §3.2.2): the TLSA base domain and the host
// name with its CNAME expansion (each reached through validated DNS), plus
// nextHop: pass the next-hop (recipient) domain and its CNAME expansion
// only if its MX RRset was secure (see NextHopNames); with an insecure MX
// RRset pass nothing, and only the MX host's names are accepted.
func (h *HostTLSA) ReferenceIDs(nextHop ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range append([]string{h.BaseDomain, h.Host, h.Canonical}, nextHop...) {
		if n == "" {
			continue
		}
		a, err := toQueryName(n)
		if err != nil || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

// NextHopNames returns the next-hop domain and its CNAME expansion from an
// MX answer when that answer is secure, and nothing otherwise: the extra
// reference identifiers to pass to HostTLSA.ReferenceIDs or
// HostTLSA.Verifier (RFC 7672 §3.2.2).
func NextHopNames(mx *MXAnswer) []string {
	if mx == nil || mx.Status != Secure {
		return nil
	}
	if mx.Canonical != "" && mx.Canonical != mx.Name {
		return []string{mx.Name, mx.Canonical}
	}
	return []string{mx.Name}
}

// Verifier returns the certificate verifier for a DANERequired host, with
// SNI set to the TLSA base domain and the reference identifiers of
// ReferenceIDs(nextHop...). For any other decision it returns an error:
// the lookup error for HostUnusable, and a *VerifyError wrapping
// ErrDANERequired (RFC 8460 "dane-required") otherwise, so that a caller
// that insists on DANE for a destination (RFC 7672 §6) gets a typed error.
func (h *HostTLSA) Verifier(nextHop ...string) (*Verifier, error) {
	switch h.Decision {
	case DANERequired:
		v, err := NewVerifier(h.Usable, h.BaseDomain, h.ReferenceIDs(nextHop...)...)
		if err != nil {
			return nil, err
		}
		v.owner = h.Owner
		return v, nil
	case HostUnusable:
		if h.Reason != nil {
			return nil, h.Reason
		}
	}
	return nil, &VerifyError{Host: h.ServerName(), Owner: h.Owner,
		Err: fmt.Errorf("%w (%s for port %d)", ErrDANERequired, h.Decision, h.Port)}
}

// tlsaOwner returns "_<port>._tcp.<host>".
func tlsaOwner(port int, host string) string {
	return "_" + strconv.Itoa(port) + "._tcp." + host
}

// LookupHostTLSA applies RFC 7672 §2.2.3 to a host whose addresses were
// looked up with LookupIP (or LookupA/LookupAAAA) and returns the decision
// for connections to it on port (25 for MX delivery):
//
//   - Addresses not secure (including any CNAME leading to them): no TLSA
//     lookup, NoDANE.
//   - Otherwise TLSA records are looked up at _port._tcp of the CNAME
//     expansion of the host first, if there was one, then of the host
//     itself; the first secure non-empty RRset decides and its owner's
//     base is the TLSA base domain. An insecure answer or a validated
//     denial moves on to the next name, and after the last gives NoDANE.
//   - A failed or bogus TLSA lookup makes the host unusable: HostUnusable,
//     returned with the error as well, never NoDANE.
//   - A secure RRset with usable records gives DANERequired; with none,
//     TLSRequired.
//
// The error is non-nil only for HostUnusable.
func (r *Resolver) LookupHostTLSA(ctx context.Context, addrs *IPAnswer, port int) (*HostTLSA, error) {
	if addrs == nil {
		return nil, errors.New("dane: LookupHostTLSA needs the host's address answer")
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("dane: port %d out of range", port)
	}
	h := &HostTLSA{Host: addrs.Name, Canonical: addrs.Canonical, Port: port, Decision: NoDANE}
	if addrs.Status != Secure {
		return h, nil
	}
	if len(addrs.Addrs) == 0 {
		h.Decision = HostUnusable
		h.Reason = &LookupError{Name: addrs.Name, Type: "A/AAAA", Server: addrs.Server, Status: addrs.Status, Rcode: -1, Err: ErrNoAddresses}
		return h, h.Reason
	}
	names := []string{addrs.Name}
	if addrs.Canonical != "" && addrs.Canonical != addrs.Name {
		names = []string{addrs.Canonical, addrs.Name}
	}
	for _, base := range names {
		owner := tlsaOwner(port, base)
		ans, err := r.LookupTLSA(ctx, owner)
		if err != nil {
			h.Decision = HostUnusable
			h.Owner = owner
			h.Reason = err
			return h, err
		}
		if ans.Status != Secure || len(ans.TLSA) == 0 {
			continue
		}
		h.BaseDomain, h.Owner, h.Records = base, owner, ans.TLSA
		var usable []TLSA
		for _, t := range ans.TLSA {
			if t.Usable() {
				usable = append(usable, t)
			}
		}
		h.Usable = agile(usable)
		if len(h.Usable) == 0 {
			h.Decision = TLSRequired
			h.Reason = &LookupError{Name: owner, Type: dns.TypeToString[dns.TypeTLSA], Server: ans.Server, Status: Secure,
				Err: fmt.Errorf("%w: %d record(s), none DANE-TA(2) or DANE-EE(3) with a known selector and matching type: %s",
					ErrUnusableTLSA, len(ans.TLSA), ans.TLSA[0].UnusableReason())}
			return h, nil
		}
		h.Decision = DANERequired
		return h, nil
	}
	return h, nil
}
