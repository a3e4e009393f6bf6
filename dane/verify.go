package dane

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// Verifier authenticates an SMTP server's certificate chain with its usable
// TLSA records, by the rules of RFC 7672 §3:
//
//   - DANE-EE(3): the server certificate (or its public key) must match;
//     its names and validity dates are not checked.
//   - DANE-TA(2): a certificate of the chain the server sent (or a full
//     certificate or public key in the record itself) is the trust anchor;
//     a valid chain from the server certificate to it must exist, with
//     dates checked, and the server certificate must name one of the
//     reference identifiers. The server certificate itself can be the
//     trust anchor only if it is self-issued.
//   - For each usage and selector only the strongest digest published is
//     used (digest agility, RFC 7671 §9).
//
// A Verifier is immutable and safe for concurrent use.
type Verifier struct {
	records    []TLSA
	serverName string
	names      []string
	owner      string
	now        func() time.Time
}

// NewVerifier returns a verifier for the usable records among records (see
// TLSA.Usable), with serverName (the TLSA base domain) for SNI and names as
// further reference identifiers for DANE-TA(2); serverName is always one.
// It fails if no record is usable or a name is invalid.
func NewVerifier(records []TLSA, serverName string, names ...string) (*Verifier, error) {
	sni, err := idn.ToASCII(serverName)
	if err != nil {
		return nil, fmt.Errorf("dane: server name: %w", err)
	}
	v := &Verifier{serverName: sni, names: []string{sni}, now: time.Now}
	for _, n := range names {
		a, err := idn.ToASCII(n)
		if err != nil {
			return nil, fmt.Errorf("dane: reference identifier: %w", err)
		}
		if !containsString(v.names, a) {
			v.names = append(v.names, a)
		}
	}
	var usable []TLSA
	for _, r := range records {
		if r.Usable() {
			usable = append(usable, TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: bytes.Clone(r.Data)})
		}
	}
	v.records = agile(usable)
	if len(v.records) == 0 {
		return nil, &LookupError{Name: sni, Type: "TLSA", Status: Secure, Rcode: -1,
			Err: fmt.Errorf("%w among the %d record(s) given", ErrUnusableTLSA, len(records))}
	}
	return v, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ServerName returns the name to send in SNI: the TLSA base domain
// (RFC 7672 §8.1).
func (v *Verifier) ServerName() string { return v.serverName }

// ReferenceIDs returns the names a server certificate may match under a
// DANE-TA(2) record.
func (v *Verifier) ReferenceIDs() []string { return append([]string(nil), v.names...) }

// Records returns the records the verifier uses: the usable ones, after
// digest agility.
func (v *Verifier) Records() []TLSA { return append([]TLSA(nil), v.records...) }

// Match says how a chain was authenticated.
type Match struct {
	// Record is the TLSA record that matched.
	Record TLSA
	// Depth is the position in the presented chain of the certificate the
	// record matched (0 is the server certificate), or -1 when the trust
	// anchor was the record's own certificate or key.
	Depth int
	// Name is the reference identifier the server certificate matched
	// (DANE-TA(2) only).
	Name string
}

// VerifyConnection checks the server's certificate chain in cs. It has the
// signature of tls.Config.VerifyConnection, for a configuration with
// InsecureSkipVerify set so that it replaces Web PKI verification (as
// TLSConfig builds). Its errors are *VerifyError. With smtpsecure, set
// Dialer.DANE to the Verifier instead: a Dialer's VerifyConnection hook
// runs in addition to Web PKI verification, not in its place.
func (v *Verifier) VerifyConnection(cs tls.ConnectionState) error {
	_, err := v.Verify(cs.PeerCertificates)
	return err
}

// TLSConfig returns a copy of base (or a new configuration if base is nil)
// that authenticates the server with v instead of the Web PKI: ServerName
// is the TLSA base domain, InsecureSkipVerify is set and VerifyConnection
// runs v (then base's own VerifyConnection, if any; base's
// VerifyPeerCertificate, if any, still runs too, with no verified chains).
// base is not modified.
func (v *Verifier) TLSConfig(base *tls.Config) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	next := c.VerifyConnection
	c.ServerName = v.serverName
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := v.VerifyConnection(cs); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

// Verify checks a certificate chain as presented by a server, server
// certificate first. It returns how the chain was authenticated, or a
// *VerifyError.
func (v *Verifier) Verify(chain []*x509.Certificate) (*Match, error) {
	now := v.now()
	fail := func(err error) (*Match, error) {
		return nil, &VerifyError{Host: v.serverName, Owner: v.owner, Records: v.records, Err: err, at: now}
	}
	if len(chain) == 0 || chain[0] == nil {
		return fail(ErrNoCertificate)
	}
	leaf := chain[0]
	// DANE-EE(3): the leaf alone; no names, no dates (RFC 7672 §3.1.1, §3.2.1).
	for _, r := range v.records {
		if r.Usage == DANEEE && r.Matches(leaf) {
			return &Match{Record: r, Depth: 0}, nil
		}
	}

	// DANE-TA(2) (RFC 7672 §3.1.2, §3.2.2; RFC 7671 §5.2).
	var bestErr error
	note := func(err error) {
		if bestErr == nil || rank(err) > rank(bestErr) {
			bestErr = err
		}
	}
	for _, r := range v.records {
		if r.Usage != DANETA {
			continue
		}
		for _, ta := range v.anchors(r, chain) {
			if err := verifyToAnchor(chain, ta, now); err != nil {
				note(err)
				continue
			}
			name, ok := matchName(leaf, v.names)
			if !ok {
				note(fmt.Errorf("%w: it names %s; wanted %s", ErrNameMismatch, certNames(leaf), strings.Join(v.names, ", ")))
				continue
			}
			return &Match{Record: r, Depth: ta.depth, Name: name}, nil
		}
	}
	if bestErr == nil {
		bestErr = fmt.Errorf("%w (server certificate %s, %d certificate(s) presented)", ErrNoMatch, certNames(leaf), len(chain))
	}
	return fail(bestErr)
}

// rank orders DANE-TA failures: the one that got furthest is reported.
func rank(err error) int {
	switch {
	case errors.Is(err, ErrNameMismatch):
		return 3
	case errors.Is(err, ErrExpired):
		return 2
	case errors.Is(err, ErrChain):
		return 1
	}
	return 0
}

// anchor is a DANE-TA trust anchor: a certificate (from the chain or from
// the record) or, for a "2 1 0" record not matching a presented
// certificate, a bare public key.
type anchor struct {
	cert  *x509.Certificate // nil for a bare key
	spki  []byte            // DER SubjectPublicKeyInfo of a bare key
	depth int               // position in the chain, -1 when from DNS
}

// anchors returns the trust anchors a DANE-TA record designates among the
// presented certificates and in its own data.
func (v *Verifier) anchors(r TLSA, chain []*x509.Certificate) []anchor {
	// The server certificate is a trust anchor only if it is self-issued.
	// A DANE-TA record that designates a plain leaf is a publishing error
	// (the leaf is no trust anchor), and like Postfix we reject it whether
	// the leaf was presented or not.
	if !selfIssued(chain[0]) && r.Matches(chain[0]) {
		return nil
	}
	var out []anchor
	for i, c := range chain {
		if c == nil || (i == 0 && !selfIssued(c)) {
			continue
		}
		if r.Matches(c) {
			out = append(out, anchor{cert: c, depth: i})
		}
	}
	if len(out) > 0 || r.MatchingType != MatchFull {
		return out
	}
	// A full certificate or key in the record: the trust anchor need not
	// be presented (RFC 7671 §5.2).
	switch r.Selector {
	case SelectorCert:
		if c, err := x509.ParseCertificate(r.Data); err == nil {
			out = append(out, anchor{cert: c, depth: -1})
		}
	case SelectorSPKI:
		if _, err := x509.ParsePKIXPublicKey(r.Data); err == nil {
			out = append(out, anchor{spki: r.Data, depth: -1})
		}
	}
	return out
}

func selfIssued(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject)
}

// verifyToAnchor checks that a valid chain leads from chain[0] to the trust
// anchor: signatures, validity dates, CA constraints and the server
// authentication key purpose, with the presented certificates as
// intermediates. Names are checked by the caller.
func verifyToAnchor(chain []*x509.Certificate, ta anchor, now time.Time) error {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ta.cert != nil {
		opts.Roots = x509.NewCertPool()
		opts.Roots.AddCert(ta.cert)
		_, err := leaf.Verify(opts)
		return chainError(err)
	}
	// A bare public key: find the presented certificate it signed, then
	// check the chain from the leaf up to that certificate, which stands
	// in for the anchor.
	pub, err := x509.ParsePKIXPublicKey(ta.spki)
	if err != nil {
		return fmt.Errorf("%w: trust anchor key in the TLSA record does not parse: %v", ErrChain, err)
	}
	holder := &x509.Certificate{PublicKey: pub}
	var last error = fmt.Errorf("%w: no presented certificate is signed by the TLSA trust anchor key", ErrChain)
	for i, c := range chain {
		if c == nil || holder.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
			continue
		}
		if i > 0 && !(c.BasicConstraintsValid && c.IsCA) {
			last = fmt.Errorf("%w: certificate %d (%s) signed by the trust anchor key is not a CA", ErrChain, i, c.Subject)
			continue
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			last = fmt.Errorf("%w: certificate %d (%s) is valid from %s to %s: %w", ErrExpired, i,
				c.Subject, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339),
				x509.CertificateInvalidError{Cert: c, Reason: x509.Expired})
			continue
		}
		o := opts
		o.Roots = x509.NewCertPool()
		o.Roots.AddCert(c)
		_, err := leaf.Verify(o)
		if err = chainError(err); err == nil {
			return nil
		}
		last = err
	}
	return last
}

// chainError wraps an x509 verification error in ErrExpired or ErrChain,
// keeping it reachable for the RFC 8460 classification.
func chainError(err error) error {
	if err == nil {
		return nil
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return fmt.Errorf("%w: %w", ErrExpired, err)
	}
	return fmt.Errorf("%w: %w", ErrChain, err)
}

// matchName checks the server certificate's names against the reference
// identifiers (RFC 7672 §3.2.3, RFC 6125 §6.4): DNS-ID subject alternative
// names, or the subject common name only if there are none; a "*" matches
// one whole left-most label; comparison in lower-case A-label form.
func matchName(cert *x509.Certificate, refs []string) (string, bool) {
	ids := cert.DNSNames
	if len(ids) == 0 && cert.Subject.CommonName != "" {
		ids = []string{cert.Subject.CommonName}
	}
	for _, id := range ids {
		pat, ok := presentedID(id)
		if !ok {
			continue
		}
		for _, ref := range refs {
			if matchPattern(pat, ref) {
				return ref, true
			}
		}
	}
	return "", false
}

// presentedID normalises a certificate name: lower-case A-labels without a
// trailing dot, with an optional "*." prefix.
func presentedID(id string) (string, bool) {
	id = strings.TrimSuffix(id, ".")
	wild := strings.HasPrefix(id, "*.")
	rest := id
	if wild {
		rest = id[2:]
	}
	if strings.Contains(rest, "*") {
		return "", false // wildcards only as the whole left-most label
	}
	a, err := idn.ToASCII(rest)
	if err != nil {
		return "", false
	}
	if wild {
		return "*." + a, true
	}
	return a, true
}

// matchPattern matches a normalised presented identifier against a
// reference identifier (already lower-case A-labels).
func matchPattern(pat, ref string) bool {
	if rest, ok := strings.CutPrefix(pat, "*."); ok {
		i := strings.IndexByte(ref, '.')
		return i > 0 && ref[i+1:] == rest
	}
	return pat == ref
}

// certNames describes the names of a certificate for messages.
func certNames(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		n := c.DNSNames
		if len(n) > 5 {
			return "DNS:" + strings.Join(n[:5], ", DNS:") + ", …"
		}
		return "DNS:" + strings.Join(n, ", DNS:")
	}
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	return "no names"
}
