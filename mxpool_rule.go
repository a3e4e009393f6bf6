package smtpsecure

import (
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/policy"
)

// mxSecurity is what one MX session proved when it was made: the rule of
// MXPool compares it with what the next message requires. It is recorded
// from the session itself (Client) and from what verified it (the
// requirement's DANE verifier, the Deliverer's roots), never from the plan
// of the message it was made for.
type mxSecurity struct {
	host string     // the MX host name, A-labels
	addr netip.Addr // the address connected to
	tls  bool       // the session is TLS
	auth ServerAuth // how the server was authenticated
	// webPKI are the names (A-labels) the certificate was verified for
	// under the Web PKI, against roots; nil when it was not.
	webPKI []string
	roots  *x509.CertPool
	// tlsa and daneNames are the usable TLSA records (presentation form)
	// and reference identifiers the DANE verification used, sorted; nil
	// without DANE.
	tlsa, daneNames []string
	// requireTLS: REQUIRETLS was offered in the EHLO reply after STARTTLS.
	requireTLS bool
}

// securityOf records what the session c proved. rq is the requirement it
// was made to meet (it holds the DANE verifier and the names the Web PKI
// half of DANE-and-Web-PKI was checked for) and roots the Web PKI roots of
// the Deliverer.
func securityOf(c *Client, host string, addr netip.Addr, rq *policy.Requirement, roots *x509.CertPool) mxSecurity {
	s := mxSecurity{host: canonName(host), addr: addr, tls: c.tlsState != nil, auth: c.ServerAuth()}
	if !s.tls {
		return s
	}
	s.requireTLS = c.ext.Has("REQUIRETLS")
	switch {
	case s.auth == ServerAuthWebPKI:
		s.webPKI, s.roots = []string{canonName(c.verifiedAs)}, roots
	case s.auth.DANE() && rq.DANE != nil:
		s.tlsa, s.daneNames = daneIdentity(rq.DANE)
		if rq.Auth == policy.AuthDANEAndWebPKI && len(c.tlsState.PeerCertificates) > 0 {
			// The handshake's hook (Requirement.VerifyWebPKI) verified the
			// chain against the roots, which holds whatever the name, and
			// found the certificate valid for one of the names: it is
			// verified for each name it is valid for.
			leaf := c.tlsState.PeerCertificates[0]
			for _, n := range rq.WebPKINames {
				if leaf.VerifyHostname(n) == nil {
					s.webPKI = append(s.webPKI, canonName(n))
				}
			}
			if len(s.webPKI) > 0 {
				s.roots = roots
			}
		}
	}
	return s
}

// daneIdentity returns what a DANE verifier authenticates with: its
// usable records in presentation form and its reference identifiers, each
// sorted.
func daneIdentity(v *dane.Verifier) (tlsa, names []string) {
	for _, r := range v.Records() {
		tlsa = append(tlsa, r.String())
	}
	for _, n := range v.ReferenceIDs() {
		names = append(names, canonName(n))
	}
	slices.Sort(tlsa)
	slices.Sort(names)
	return tlsa, names
}

// canonName is a host name in lower-case A-labels, for comparison; a name
// that cannot be converted is only lower-cased, and so matches only itself.
func canonName(n string) string {
	if a, err := idn.ToASCII(n); err == nil {
		return a
	}
	return strings.ToLower(n)
}

// mxWant is what a message needs of a session to one MX host: the host and
// address of the attempt, the host's requirement in the message's plan,
// whether the plan allows a REQUIRETLS message there, whether the message
// asks for REQUIRETLS, and the Web PKI roots of the Deliverer.
type mxWant struct {
	host       string
	addr       netip.Addr
	rq         *policy.Requirement
	hostReqTLS bool // policy.Host.RequireTLS
	requireTLS bool // MailOptions.RequireTLS
	roots      *x509.CertPool
}

// meets is the rule of MXPool: whether a session that proved s may carry a
// message that needs w. It never lets a session stand in for a stronger
// requirement than it met, and never compares Web PKI with DANE
// authentication, which prove different things.
func (s *mxSecurity) meets(w *mxWant) bool {
	rq := w.rq
	if s.host != canonName(w.host) || s.addr != w.addr {
		return false
	}
	switch rq.TLS {
	case policy.TLSRequired:
		if !s.tls {
			return false
		}
	case policy.TLSInsecureOpportunistic, policy.TLSInsecurePlaintext:
		// Whatever the session is, it is what these levels accept.
	default:
		return false
	}
	switch rq.Auth {
	case policy.AuthNone:
	case policy.AuthWebPKI:
		if !s.webPKIFor(rq.WebPKINames, w.roots) {
			return false
		}
	case policy.AuthDANE:
		if !s.daneFor(rq.DANE) {
			return false
		}
	case policy.AuthDANEAndWebPKI:
		if !s.daneFor(rq.DANE) || !s.webPKIFor(rq.WebPKINames, w.roots) {
			return false
		}
	default:
		return false
	}
	if w.requireTLS {
		// RFC 8689 §4.2.1: a host the plan vouches for, authenticated, and
		// offering REQUIRETLS after STARTTLS.
		return w.hostReqTLS && rq.Auth.Authenticated() && s.tls && s.auth != ServerAuthNone && s.requireTLS
	}
	return true
}

// webPKIFor reports whether the session's certificate was verified under
// the Web PKI, against the same roots, for one of names.
func (s *mxSecurity) webPKIFor(names []string, roots *x509.CertPool) bool {
	if len(s.webPKI) == 0 || s.roots != roots {
		return false
	}
	for _, n := range names {
		if slices.Contains(s.webPKI, canonName(n)) {
			return true
		}
	}
	return false
}

// daneFor reports whether the session was authenticated by DANE against
// exactly the records and reference identifiers of v: after a TLSA
// rollover, or for names the session was not checked against, a new
// session is made.
func (s *mxSecurity) daneFor(v *dane.Verifier) bool {
	if v == nil || !s.auth.DANE() || s.tlsa == nil {
		return false
	}
	tlsa, names := daneIdentity(v)
	return slices.Equal(s.tlsa, tlsa) && slices.Equal(s.daneNames, names)
}

// requirementKey is the canonical form of a requirement, the key of the
// sessions made for it (and of their TLS session cache) in an MXPool:
// equal requirements give equal keys, whatever the order of their names
// and records.
func requirementKey(rq *policy.Requirement) string {
	var b strings.Builder
	b.WriteString(rq.TLS.String())
	b.WriteByte('|')
	b.WriteString(rq.Auth.String())
	b.WriteByte('|')
	b.WriteString(canonName(rq.ServerName))
	list := func(l []string, canon bool) {
		b.WriteByte('|')
		c := make([]string, len(l))
		for i, x := range l {
			if canon {
				x = canonName(x)
			}
			c[i] = x
		}
		slices.Sort(c)
		b.WriteString(strings.Join(c, ","))
	}
	list(rq.WebPKINames, true)
	if rq.DANE != nil {
		tlsa, names := daneIdentity(rq.DANE)
		list(tlsa, false)
		list(names, false)
	} else {
		list(rq.TLSA, false)
		list(rq.DANENames, true)
	}
	return b.String()
}
