package smtpsecure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"time"

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
		var buf [64]byte
		if s := strings.Trim(name, "[]"); string(addr.AppendTo(buf[:0])) == s {
			return s, nil // already in canonical form: no new string
		}
		return addr.String(), nil
	}
	a, err := idn.ToASCII(name)
	if err != nil {
		return "", optionsErr("%s: %w", field, err)
	}
	return a, nil
}

// tlsFor builds into p the TLS configuration for one connection to host.
// The caller's TLSConfig is cloned, never changed.
//
// Verification works as in crypto/tls: the Web PKI chain and host name are
// checked unless an Insecure option says otherwise, and the hooks
// (Dialer.VerifyConnection, then TLSConfig.VerifyConnection) run after that
// succeeded, so that they can only make it stricter. With Dialer.DANE the
// verifier replaces the Web PKI check, SNI is its TLSA base domain, and the
// hooks run after it.
func (d *Dialer) tlsFor(p *tlsPlan, host string) error {
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
		return optionsErr("Dialer.TLSConfig.MaxVersion is below TLS 1.2")
	}
	*p = tlsPlan{cfg: cfg}
	hooks := verifyHooks(d.VerifyConnection, cfg.VerifyConnection)

	if v := d.DANE; v != nil {
		if cfg.InsecureSkipVerify {
			return optionsErr("Dialer.DANE cannot be combined with TLSConfig.InsecureSkipVerify: DANE authenticates the server, and skipping verification would throw that away")
		}
		sni := v.ServerName()
		if cfg.ServerName != "" && !idn.Equal(cfg.ServerName, sni) {
			return optionsErr("Dialer.TLSConfig.ServerName %q contradicts Dialer.DANE, whose TLSA base domain %q is the name to send in SNI (RFC 7672 §8.1); leave ServerName empty", cfg.ServerName, sni)
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
		return nil
	}

	name, err := serverName(cfg.ServerName, host)
	if err != nil {
		return err
	}
	cfg.ServerName = name
	switch {
	case d.InsecureSkipVerify || cfg.InsecureSkipVerify:
		cfg.InsecureSkipVerify = true
		p.auth = ServerAuthNone
	case len(d.webPKINames) > 0:
		return p.verifyNames(d.webPKINames, hooks)
	default:
		p.auth, p.name = ServerAuthWebPKI, name
	}
	cfg.VerifyConnection = hooks
	return nil
}

// verifyNames makes the connection verify the server's chain as crypto/tls
// does (the roots of the configuration, the intermediates the server sent,
// the configuration's time, the server-authentication key usage) and then
// require the certificate to be valid for one of names, rather than for
// the server name alone. crypto/tls checks only one name, so its own check
// is replaced by this one, which runs in every handshake: nothing is
// skipped. The hooks run after it, as after the usual check.
func (p *tlsPlan) verifyNames(names []string, hooks func(tls.ConnectionState) error) error {
	want := make([]string, 0, len(names))
	for _, n := range names {
		a, err := idn.ToASCII(n)
		if err != nil {
			return optionsErr("certificate name %q: %w", n, err)
		}
		want = append(want, a)
	}
	cfg := p.cfg
	roots, now := cfg.RootCAs, cfg.Time
	cfg.InsecureSkipVerify = true
	p.auth = ServerAuthWebPKI
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		name, err := verifyChainForNames(cs.PeerCertificates, roots, now, want)
		if err != nil {
			return err
		}
		p.name = name
		if hooks != nil {
			return hooks(cs)
		}
		return nil
	}
	return nil
}

// verifyChainForNames verifies chain (leaf first) against roots (nil: the
// system roots) at now() (nil: the current time) for server authentication,
// and returns the first of names the leaf is valid for. A bad chain is
// reported before a name mismatch, as the x509 error wrapped in a
// *tls.CertificateVerificationError, so that the handshake failure is
// classified as any other.
func verifyChainForNames(chain []*x509.Certificate, roots *x509.CertPool, now func() time.Time, names []string) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if now != nil {
		opts.CurrentTime = now()
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return "", &tls.CertificateVerificationError{UnverifiedCertificates: chain, Err: err}
	}
	var first error
	for _, n := range names {
		err := chain[0].VerifyHostname(n)
		if err == nil {
			return n, nil
		}
		if first == nil {
			first = err
		}
	}
	return "", &tls.CertificateVerificationError{UnverifiedCertificates: chain, Err: first}
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
