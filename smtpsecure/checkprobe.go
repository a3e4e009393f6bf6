package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
	"github.com/smtpsecure/smtpsecure/policy"
)

// probeReport is what a live STARTTLS probe of one MX address found.
type probeReport struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	// Connected reports whether a TCP connection and a greeting were had.
	Connected bool `json:"connected"`
	// Error says what failed, if the probe did not reach TLS.
	Error string `json:"error,omitempty"`
	// STARTTLS reports whether the server offered STARTTLS and the
	// handshake completed.
	STARTTLS   bool   `json:"starttls"`
	TLSVersion string `json:"tls_version,omitempty"`
	Cipher     string `json:"cipher,omitempty"`
	// ServerName is the SNI sent: the TLSA base domain under DANE, else
	// the MX host name.
	ServerName string `json:"server_name,omitempty"`
	// RequireTLS reports whether REQUIRETLS was offered after STARTTLS.
	RequireTLS bool `json:"requiretls"`
	// Certificates is the chain the server sent, leaf first.
	Certificates []certReport `json:"certificates,omitempty"`
	// WebPKIValid reports whether the chain is valid under the Web PKI
	// roots for the MX host name (what MTA-STS requires); WebPKIError and
	// WebPKIResult say why not.
	WebPKIValid  bool   `json:"webpki_valid"`
	WebPKIError  string `json:"webpki_error,omitempty"`
	WebPKIResult string `json:"webpki_result_type,omitempty"`
	// TLSA is the outcome against the host's usable TLSA records: absent
	// when the host has none.
	TLSA *tlsaMatchReport `json:"tlsa,omitempty"`
	// MTASTS is whether the host passes the domain's MTA-STS policy:
	// absent without a policy in mode enforce or testing.
	MTASTS *stsMatchReport `json:"mta_sts,omitempty"`

	chain []*x509.Certificate
}

// certReport describes one certificate of a chain.
type certReport struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Names     []string  `json:"names,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
}

// tlsaMatchReport is a chain checked against TLSA records.
type tlsaMatchReport struct {
	Matched bool   `json:"matched"`
	Record  string `json:"record,omitempty"` // the record that matched
	Depth   *int   `json:"depth,omitempty"`  // where in the chain (0: leaf; -1: the record's own key)
	Name    string `json:"name,omitempty"`   // the reference identifier a DANE-TA match named
	Error   string `json:"error,omitempty"`
	Result  string `json:"result_type,omitempty"`
	// Summary says in a few words why the chain did not match.
	Summary string `json:"-"`
}

// stsMatchReport is a host checked against an MTA-STS policy.
type stsMatchReport struct {
	Listed   bool   `json:"listed"`
	Accepted bool   `json:"accepted"`
	Error    string `json:"error,omitempty"`
}

// prober runs STARTTLS probes.
type prober struct {
	roots   *x509.CertPool
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	logger  *slog.Logger
	now     func() time.Time
	local   string // EHLO name
}

// probe connects to one address of an MX host on port 25, says EHLO and
// STARTTLS, completes the handshake whatever the certificate (the chain
// is judged afterwards, against the Web PKI and the TLSA records), reads
// the extensions offered inside TLS, and quits. It sends no mail and no
// credential.
func (p *prober) probe(ctx context.Context, h *policy.Host, addr netip.Addr) *probeReport {
	r := &probeReport{Host: h.Name, Address: addr.String()}
	sni := h.Requirement.ServerName
	if sni == "" {
		sni = h.Name
	}
	r.ServerName = sni
	target := net.JoinHostPort(addr.String(), strconv.Itoa(policy.Port))
	dial := p.dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	d := &smtpsecure.Dialer{
		Host:            sni,
		Port:            policy.Port,
		Security:        smtpsecure.SecuritySTARTTLS,
		LocalName:       p.local,
		ConnectTimeout:  p.timeout,
		GreetingTimeout: p.timeout,
		CommandTimeout:  p.timeout,
		DataTimeout:     p.timeout,
		Logger:          p.logger,
		// The probe must see every certificate, good or bad, to report
		// on it; it is judged below. Nothing but EHLO, STARTTLS and QUIT
		// is ever sent.
		InsecureSkipVerify: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, target)
		},
	}
	if p.logger != nil {
		d.Logger = p.logger.With("probe", target)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*p.timeout)
	defer cancel()
	cl, err := d.Dial(ctx)
	if err != nil {
		var dg *smtpsecure.DowngradeError
		var ce *smtpsecure.ConnError
		switch {
		case errors.As(err, &dg):
			r.Connected = true
			r.Error = err.Error()
		case errors.As(err, &ce) && ce.Op == "dial":
			r.Error = err.Error()
		default:
			r.Connected = !errors.As(err, &ce)
			r.Error = err.Error()
		}
		return r
	}
	defer cl.Close()
	r.Connected = true
	cs, ok := cl.TLSConnectionState()
	if ok {
		r.STARTTLS = true
		r.TLSVersion = tls.VersionName(cs.Version)
		r.Cipher = tls.CipherSuiteName(cs.CipherSuite)
		r.chain = cs.PeerCertificates
		now := p.now()
		for _, c := range cs.PeerCertificates {
			r.Certificates = append(r.Certificates, describeCert(c, now))
		}
	}
	r.RequireTLS, _ = cl.Extension("REQUIRETLS")
	cl.Quit(ctx)
	p.judge(r, h)
	return r
}

// judge checks the chain against the Web PKI for the MX host name and
// against the host's usable TLSA records.
func (p *prober) judge(r *probeReport, h *policy.Host) {
	if len(r.chain) == 0 {
		return
	}
	if err := mtasts.VerifyMXCertificate(h.Name, r.chain, p.roots, p.now()); err != nil {
		r.WebPKIError = err.Error()
		var ce *mtasts.CertificateError
		if errors.As(err, &ce) {
			r.WebPKIResult = ce.ReportResultType()
		}
	} else {
		r.WebPKIValid = true
	}
	v := h.Requirement.DANE
	if v == nil {
		return
	}
	m, err := v.Verify(r.chain)
	if err != nil {
		r.TLSA = &tlsaMatchReport{Error: err.Error(), Summary: daneSummary(err)}
		var ve *dane.VerifyError
		if errors.As(err, &ve) {
			r.TLSA.Result = ve.ReportResultType()
		}
		return
	}
	r.TLSA = &tlsaMatchReport{Matched: true, Record: m.Record.String(), Depth: &m.Depth, Name: m.Name}
}

// daneSummary says in a few words why TLSA records did not authenticate a
// chain; the whole error goes to the JSON report.
func daneSummary(err error) string {
	switch {
	case errors.Is(err, dane.ErrNoMatch):
		return "no usable TLSA record matches the server's certificate chain"
	case errors.Is(err, dane.ErrNameMismatch):
		return "a DANE-TA record matches, but the certificate names none of the reference identifiers"
	case errors.Is(err, dane.ErrExpired):
		return "a DANE-TA record matches, but a certificate of the chain is expired or not yet valid"
	case errors.Is(err, dane.ErrChain):
		return "a DANE-TA record matches, but no valid chain leads to its trust anchor"
	case errors.Is(err, dane.ErrNoCertificate):
		return "the server presented no certificate"
	}
	return "the TLSA records do not authenticate the chain: " + err.Error()
}

// describeCert summarises a certificate.
func describeCert(c *x509.Certificate, now time.Time) certReport {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	days := int(c.NotAfter.Sub(now).Hours() / 24)
	if c.NotAfter.Before(now) {
		days = -int(now.Sub(c.NotAfter).Hours()/24) - 1
	}
	return certReport{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		Names:     names,
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		DaysLeft:  days,
	}
}

// shortName returns a certificate's subject for one line: its CN, or the
// whole subject.
func shortName(c certReport) string {
	for part := range strings.SplitSeq(c.Subject, ",") {
		if cn, ok := strings.CutPrefix(part, "CN="); ok {
			return cn
		}
	}
	if c.Subject == "" {
		return "(no subject)"
	}
	return c.Subject
}
