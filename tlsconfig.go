package smtpsecure

import (
	"crypto/tls"
	"net/netip"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// tlsPlan is how one connection is secured: the TLS configuration, and what
// a successful handshake proves about the server. It belongs to one
// connection: the handshake hook records the DANE match in it.
type tlsPlan struct {
	cfg *tls.Config
	// auth is what a successful handshake proves: ServerAuthNone,
	// ServerAuthWebPKI, or, with dane set, DANE (refined by the match).
	auth ServerAuth
	// name is the name the certificate is verified for (A-labels, or an IP
	// address), "" when it is not verified.
	name string
	// dane authenticates the server instead of the Web PKI, if set.
	dane *dane.Verifier
	// match is how the DANE verifier authenticated the chain, set during
	// the handshake.
	match *dane.Match
}

// policyFailure marks an error returned by a caller's VerifyConnection hook,
// so that the handshake error is classified by where it came from, never by
// its shape.
type policyFailure struct{ err error }

// Error returns the hook's message.
func (p *policyFailure) Error() string { return p.err.Error() }

// daneFailure marks a failure of Dialer.DANE's verification.
type daneFailure struct{ err error }

// Error returns the verifier's message.
func (d *daneFailure) Error() string { return d.err.Error() }

// serverName returns the name to verify and send as SNI: the caller's
// TLSConfig.ServerName or the host, as A-labels; for an IP literal the
// address (crypto/tls sends no SNI for it, RFC 6066 §3, and verifies the IP
// SAN).
func serverName(cfgName, host string) (string, error) {
	name := cfgName
	field := "Dialer.TLSConfig.ServerName"
	if name == "" {
		name, field = host, "Dialer.Host"
	}
	if addr, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return addr.String(), nil
	}
	a, err := idn.ToASCII(name)
	if err != nil {
		return "", optionsErr("%s: %w", field, err)
	}
	return a, nil
}

// tlsFor builds the TLS configuration for one connection to host. The
// caller's TLSConfig is cloned, never changed.
//
// Verification works as in crypto/tls: the Web PKI chain and host name are
// checked unless an Insecure option says otherwise, and the hooks
// (Dialer.VerifyConnection, then TLSConfig.VerifyConnection) run after that
// succeeded, so that they can only make it stricter. With Dialer.DANE the
// verifier replaces the Web PKI check, SNI is its TLSA base domain, and the
// hooks run after it.
func (d *Dialer) tlsFor(host string) (*tlsPlan, error) {
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12 {
		return nil, optionsErr("Dialer.TLSConfig.MaxVersion is below TLS 1.2")
	}
	p := &tlsPlan{cfg: cfg}
	hooks := verifyHooks(d.VerifyConnection, cfg.VerifyConnection)

	if v := d.DANE; v != nil {
		if cfg.InsecureSkipVerify {
			return nil, optionsErr("Dialer.DANE cannot be combined with TLSConfig.InsecureSkipVerify: DANE authenticates the server, and skipping verification would throw that away")
		}
		sni := v.ServerName()
		if cfg.ServerName != "" && !idn.Equal(cfg.ServerName, sni) {
			return nil, optionsErr("Dialer.TLSConfig.ServerName %q contradicts Dialer.DANE, whose TLSA base domain %q is the name to send in SNI (RFC 7672 §8.1); leave ServerName empty", cfg.ServerName, sni)
		}
		cfg.ServerName = sni
		// The verifier replaces the Web PKI check: crypto/tls must not run
		// it, and the hook below always runs.
		cfg.InsecureSkipVerify = true
		p.auth, p.name, p.dane = ServerAuthDANEEE, sni, v
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			m, err := v.Verify(cs.PeerCertificates)
			if err != nil {
				return &daneFailure{err}
			}
			p.match = m
			if hooks != nil {
				return hooks(cs)
			}
			return nil
		}
		return p, nil
	}

	name, err := serverName(cfg.ServerName, host)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = name
	if d.InsecureSkipVerify || cfg.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
		p.auth = ServerAuthNone
	} else {
		p.auth, p.name = ServerAuthWebPKI, name
	}
	cfg.VerifyConnection = hooks
	return p, nil
}

// verifyHooks chains the Dialer's and the TLSConfig's VerifyConnection
// hooks; an error of either is marked as a policy failure. It returns nil
// when there is no hook.
func verifyHooks(own, theirs func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	if own == nil && theirs == nil {
		return nil
	}
	return func(cs tls.ConnectionState) error {
		for _, h := range []func(tls.ConnectionState) error{own, theirs} {
			if h == nil {
				continue
			}
			if err := h(cs); err != nil {
				return &policyFailure{err}
			}
		}
		return nil
	}
}

// serverAuth returns how a completed handshake authenticated the server.
func (p *tlsPlan) serverAuth() ServerAuth {
	if p.dane != nil && p.match != nil && p.match.Record.Usage == dane.DANETA {
		return ServerAuthDANETA
	}
	return p.auth
}
