package mtasts

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// CertificateError reports an MX certificate that does not satisfy
// RFC 8461 §4.2, with its RFC 8460 result type.
type CertificateError struct {
	// Host is the MX host name (A-labels).
	Host string
	// ResultType is the RFC 8460 result type (see package tlsrpt):
	// certificate-host-mismatch, certificate-expired,
	// certificate-not-trusted or validation-failure.
	ResultType string
	// Err is the x509 error.
	Err error
}

// Error names the MX host and the certificate problem.
func (e *CertificateError) Error() string {
	return fmt.Sprintf("mtasts: certificate of MX host %s is not valid under the MTA-STS policy [%s]: %v", e.Host, e.ResultType, e.Err)
}

// Unwrap returns the x509 error.
func (e *CertificateError) Unwrap() error { return e.Err }

// ReportResultType returns the RFC 8460 result type.
func (e *CertificateError) ReportResultType() string { return e.ResultType }

// MXVerifyOptions returns the x509.VerifyOptions that check the certificate
// of the MX host host under an MTA-STS policy (RFC 8461 §4.2): chained to
// roots (the system roots if nil), valid at now (time.Now if zero), for TLS
// server authentication, with a subject alternative name DNS-ID matching
// host in A-label form (the common name is never used; a wildcard covers
// only a whole left-most label). Check Policy.Match(host) first: the mx
// patterns themselves are never used as reference identifiers.
func MXVerifyOptions(host string, roots *x509.CertPool, intermediates []*x509.Certificate, now time.Time) (x509.VerifyOptions, error) {
	h, err := idn.ToASCII(host)
	if err != nil {
		return x509.VerifyOptions{}, fmt.Errorf("mtasts: MX host %q: %w", host, err)
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	return x509.VerifyOptions{
		DNSName:       h,
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil
}

// VerifyMXCertificate checks the chain an MX host presented (leaf first, as
// in tls.ConnectionState.PeerCertificates) as MXVerifyOptions describes. It
// is meant for a tls.Config VerifyConnection hook on port 25 connections to
// MX hosts of a domain with an MTA-STS policy in enforce or testing mode.
// The error is a *CertificateError whose result type distinguishes a name
// mismatch, an expired certificate and an untrusted chain.
func VerifyMXCertificate(host string, chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	h, err := idn.ToASCII(host)
	if err != nil {
		return &CertificateError{Host: host, ResultType: rfc8460.ValidationFailure, Err: err}
	}
	if len(chain) == 0 {
		return &CertificateError{Host: h, ResultType: rfc8460.ValidationFailure, Err: errors.New("no certificate presented")}
	}
	if now.IsZero() {
		now = time.Now()
	}
	opts, _ := MXVerifyOptions(h, roots, chain[1:], now)
	// Check the chain first, without the name, so that the result type
	// names the first thing that is wrong.
	nameless := opts
	nameless.DNSName = ""
	if _, err := chain[0].Verify(nameless); err != nil {
		return &CertificateError{Host: h, ResultType: chainResultType(err, now), Err: err}
	}
	if err := chain[0].VerifyHostname(h); err != nil {
		return &CertificateError{Host: h, ResultType: rfc8460.CertificateHostMismatch, Err: err}
	}
	return nil
}

// chainResultType classifies a chain verification error as every package
// of this module does (internal/rfc8460).
func chainResultType(err error, now time.Time) string {
	if rt, ok := rfc8460.CertificateResult(err, now); ok {
		return rt
	}
	return rfc8460.ValidationFailure
}
