package rfc8460

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"
)

// STD-87
func TestCertificateResult(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	past := &x509.Certificate{NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(-1, 0, 0)}
	future := &x509.Certificate{NotBefore: now.AddDate(1, 0, 0), NotAfter: now.AddDate(2, 0, 0)}
	tests := []struct {
		name string
		err  error
		want string
		ok   bool
	}{
		{"nil", nil, "", false},
		{"not a certificate error", errors.New("connection reset"), "", false},
		{"host name", x509.HostnameError{Host: "mx.example"}, CertificateHostMismatch, true},
		{"wrapped host name", &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "mx.example"}}, CertificateHostMismatch, true},
		{"expired", x509.CertificateInvalidError{Cert: past, Reason: x509.Expired}, CertificateExpired, true},
		{"not yet valid", x509.CertificateInvalidError{Cert: future, Reason: x509.Expired}, ValidationFailure, true},
		{"wrong usage", x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}, ValidationFailure, true},
		{"CA not authorised", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}, ValidationFailure, true},
		{"unknown authority", x509.UnknownAuthorityError{}, CertificateNotTrusted, true},
		{"wrapped unknown authority", fmt.Errorf("handshake: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), CertificateNotTrusted, true},
		{"no system roots", x509.SystemRootsError{}, CertificateNotTrusted, true},
		{"insecure algorithm", x509.InsecureAlgorithmError(x509.SHA1WithRSA), ValidationFailure, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CertificateResult(tt.err, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("CertificateResult = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestKnown(t *testing.T) {
	for _, r := range All {
		if !Known(r) {
			t.Errorf("Known(%q) = false", r)
		}
	}
	for _, s := range []string{"", "success", "Certificate-Expired", "starttls-not-supported "} {
		if Known(s) {
			t.Errorf("Known(%q) = true", s)
		}
	}
	if len(All) != 11 {
		t.Errorf("RFC 8460 §4.3 defines 11 result types, All has %d", len(All))
	}
}
