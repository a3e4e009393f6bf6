// Package rfc8460 is the one definition of the SMTP TLS Reporting result
// types (RFC 8460 §4.3) and of how a certificate verification error maps to
// one of them. The public packages (the root package, dane, mta_sts, tlsrpt)
// return and re-export these strings; none defines its own.
package rfc8460

import (
	"crypto/x509"
	"errors"
	"time"
)

// Result types, RFC 8460 §4.3.
const (
	// Negotiation failures, §4.3.1.
	STARTTLSNotSupported    = "starttls-not-supported"
	CertificateHostMismatch = "certificate-host-mismatch"
	CertificateExpired      = "certificate-expired"
	CertificateNotTrusted   = "certificate-not-trusted"
	ValidationFailure       = "validation-failure"

	// DANE policy failures, §4.3.2.1.
	TLSAInvalid   = "tlsa-invalid"
	DNSSECInvalid = "dnssec-invalid"
	DANERequired  = "dane-required"

	// MTA-STS policy failures, §4.3.2.2.
	STSPolicyFetchError = "sts-policy-fetch-error"
	STSPolicyInvalid    = "sts-policy-invalid"
	STSWebPKIInvalid    = "sts-webpki-invalid"
)

// All lists every result type in the order RFC 8460 §4.3 gives them.
var All = []string{
	STARTTLSNotSupported, CertificateHostMismatch, CertificateExpired,
	CertificateNotTrusted, ValidationFailure,
	TLSAInvalid, DNSSECInvalid, DANERequired,
	STSPolicyFetchError, STSPolicyInvalid, STSWebPKIInvalid,
}

// Known reports whether s is one of the result types of RFC 8460 §4.3.
func Known(s string) bool {
	for _, t := range All {
		if s == t {
			return true
		}
	}
	return false
}

// CertificateResult maps an error from Web PKI certificate verification
// (an x509 error, possibly wrapped in a *tls.CertificateVerificationError)
// to its result type. now is the time the chain was verified at (zero means
// time.Now), to tell an expired certificate from one not yet valid. ok is
// false when err carries no x509 verification error.
//
//   - a name mismatch is certificate-host-mismatch;
//   - an expired certificate is certificate-expired;
//   - a chain that leads to no trusted root (unknown authority, no system
//     roots) is certificate-not-trusted;
//   - anything else (not yet valid, wrong extended key usage, a CA not
//     allowed to sign, name constraints, a bad signature) is
//     validation-failure, RFC 8460 §4.3.3's type for what has no other.
func CertificateResult(err error, now time.Time) (result string, ok bool) {
	if err == nil {
		return "", false
	}
	var (
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		unknown x509.UnknownAuthorityError
		roots   x509.SystemRootsError
		sig     x509.InsecureAlgorithmError
		constr  x509.ConstraintViolationError
	)
	switch {
	case errors.As(err, &host):
		return CertificateHostMismatch, true
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired && Expired(invalid.Cert, now) {
			return CertificateExpired, true
		}
		return ValidationFailure, true
	case errors.As(err, &unknown), errors.As(err, &roots):
		return CertificateNotTrusted, true
	case errors.As(err, &sig), errors.As(err, &constr):
		return ValidationFailure, true
	}
	var uh x509.UnhandledCriticalExtension
	if errors.As(err, &uh) {
		return ValidationFailure, true
	}
	return "", false
}

// Expired reports whether cert is past its NotAfter at now (zero means
// time.Now). A nil certificate counts as expired: x509 reports the reason
// Expired for a certificate outside its validity window, and without the
// certificate the error cannot be told apart.
func Expired(cert *x509.Certificate, now time.Time) bool {
	if cert == nil {
		return true
	}
	if now.IsZero() {
		now = time.Now()
	}
	return now.After(cert.NotAfter)
}
