package smtpsecure

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// DowngradeReason says why a secure connection could not be had.
type DowngradeReason int

// The reasons a *DowngradeError gives.
const (
	// ReasonSTARTTLSNotOffered: the server's EHLO reply did not list
	// STARTTLS (or the server did not accept EHLO at all).
	ReasonSTARTTLSNotOffered DowngradeReason = iota + 1
	// ReasonSTARTTLSRefused: the server answered STARTTLS with an error.
	ReasonSTARTTLSRefused
	// ReasonSTARTTLSInjection: the server, or someone in the path, sent
	// bytes that were not asked for around STARTTLS (response injection).
	ReasonSTARTTLSInjection
	// ReasonHandshakeFailed: the TLS handshake failed for a reason other
	// than the certificate (no common version or cipher, an alert, reset).
	ReasonHandshakeFailed
	// ReasonCertificateUntrusted: the chain does not lead to a trusted root
	// (self-signed, unknown CA, missing intermediate).
	ReasonCertificateUntrusted
	// ReasonCertificateExpired: a certificate of the chain has expired.
	ReasonCertificateExpired
	// ReasonCertificateHostMismatch: the certificate is not valid for the
	// host name the caller named.
	ReasonCertificateHostMismatch
	// ReasonCertificateInvalid: any other certificate failure (not yet
	// valid, wrong extended key usage, bad signature, malformed
	// certificate).
	ReasonCertificateInvalid
	// ReasonPolicy: a caller's VerifyConnection hook (Dialer's or
	// TLSConfig's) rejected the server; Err is the hook's error.
	ReasonPolicy
	// ReasonDANE: the server's certificate chain does not satisfy the TLSA
	// records of Dialer.DANE; Err is the *dane.VerifyError.
	ReasonDANE
)

var reasonText = map[DowngradeReason]string{
	ReasonSTARTTLSNotOffered:      "server did not offer STARTTLS",
	ReasonSTARTTLSRefused:         "server refused STARTTLS",
	ReasonSTARTTLSInjection:       "unsolicited data around STARTTLS (response injection)",
	ReasonHandshakeFailed:         "TLS handshake failed",
	ReasonCertificateUntrusted:    "certificate not trusted",
	ReasonCertificateExpired:      "certificate expired",
	ReasonCertificateHostMismatch: "certificate not valid for the host name",
	ReasonCertificateInvalid:      "certificate invalid",
	ReasonPolicy:                  "server failed the TLS policy check",
	ReasonDANE:                    "certificate does not match the server's DANE TLSA records",
}

// String describes the reason in a few words.
func (r DowngradeReason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("DowngradeReason(%d)", int(r))
}

// DowngradeError reports that TLS, or a verified TLS, could not be had with
// the server. Nothing but QUIT was sent after the failure, and no credential,
// envelope address or message byte was sent at all.
type DowngradeError struct {
	// Host is the server, as the caller named it.
	Host string
	// Reason says which step failed.
	Reason DowngradeReason
	// Err is the cause: the server's *SMTPError for a missing or refused
	// STARTTLS, the x509 or TLS error for a failed handshake (reachable with
	// errors.As, e.g. x509.HostnameError or tls.AlertError), the
	// *dane.VerifyError, or the VerifyConnection hook's error.
	Err error

	dropIn bool // from SendMail, whose callers have no Dialer
	mx     bool // from MX delivery, where the advice for submission does not apply
}

// Error says what failed, where, and what the caller can do.
func (e *DowngradeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtpsecure: %s: %s", e.Host, e.Reason)
	var se *SMTPError
	switch {
	case e.Err == nil:
	case e.Reason == ReasonSTARTTLSRefused && errors.As(e.Err, &se):
		b.WriteString(": ")
		b.WriteString(se.reply())
	default:
		b.WriteString(": ")
		b.WriteString(nested(e.Err, e.Host))
	}
	b.WriteString(e.advice())
	return b.String()
}

// advice says what the caller can do, after a "; ".
func (e *DowngradeError) advice() string {
	if e.mx {
		// The next MX host or a later attempt is the remedy, which the
		// delivery error says; the server is not the caller's to fix.
		if e.Reason == ReasonSTARTTLSNotOffered || e.Reason == ReasonSTARTTLSRefused {
			return "; nothing was sent in the clear"
		}
		return ""
	}
	switch e.Reason {
	case ReasonSTARTTLSNotOffered, ReasonSTARTTLSRefused:
		return "; nothing was sent in the clear (a network attacker can strip STARTTLS; use implicit TLS on port 465 if the server has it)"
	case ReasonSTARTTLSInjection:
		return "; the connection was closed (this is the signature of a man-in-the-middle attack)"
	case ReasonCertificateUntrusted:
		if e.dropIn {
			return "; SendMail verifies against the system's roots only: add the server's CA to the system's trust store (or point SSL_CERT_FILE at it), or use a Dialer with TLSConfig.RootCAs"
		}
		return "; check the server's chain, or add its CA to Dialer.TLSConfig.RootCAs"
	case ReasonCertificateHostMismatch:
		return "; connect to a name the certificate is issued for"
	case ReasonHandshakeFailed:
		var rh tls.RecordHeaderError
		if errors.As(e.Err, &rh) {
			return "; the server does not speak TLS first on this port: it probably expects STARTTLS (port 587 or 25)"
		}
	}
	return ""
}

// Unwrap returns ErrDowngrade and the cause.
func (e *DowngradeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDowngrade}
	}
	return []error{ErrDowngrade, e.Err}
}

// ReportResultType returns the RFC 8460 result type for a TLS report (see
// package tlsrpt): starttls-not-supported, certificate-host-mismatch,
// certificate-expired, certificate-not-trusted, or validation-failure. The
// *dane.VerifyError of ReasonDANE, or a hook's error that has a
// ReportResultType method (an MTA-STS certificate check, say), gives its
// own.
func (e *DowngradeError) ReportResultType() string {
	switch e.Reason {
	case ReasonSTARTTLSNotOffered, ReasonSTARTTLSRefused:
		return rfc8460.STARTTLSNotSupported
	case ReasonCertificateHostMismatch:
		return rfc8460.CertificateHostMismatch
	case ReasonCertificateExpired:
		return rfc8460.CertificateExpired
	case ReasonCertificateUntrusted:
		return rfc8460.CertificateNotTrusted
	case ReasonPolicy, ReasonDANE:
		var r interface{ ReportResultType() string }
		if errors.As(e.Err, &r) {
			if t := r.ReportResultType(); rfc8460.Known(t) {
				return t
			}
		}
	}
	return rfc8460.ValidationFailure
}

// classifyTLSError maps a failed Web PKI handshake to a downgrade reason,
// through the RFC 8460 classification of the x509 error that every package
// of this module shares (internal/rfc8460). now is the time the chain was
// verified at.
func classifyTLSError(err error, now time.Time) DowngradeReason {
	rt, ok := rfc8460.CertificateResult(err, now)
	switch {
	case !ok:
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return ReasonCertificateInvalid
		}
		return ReasonHandshakeFailed
	case rt == rfc8460.CertificateHostMismatch:
		return ReasonCertificateHostMismatch
	case rt == rfc8460.CertificateExpired:
		return ReasonCertificateExpired
	case rt == rfc8460.CertificateNotTrusted:
		return ReasonCertificateUntrusted
	}
	return ReasonCertificateInvalid
}
