package smtpsecure

// Issue 3 §2: the certificate and TLS matrix. Each defect gives a
// *DowngradeError with the right reason and RFC 8460 result type, with the
// x509 or TLS cause reachable, over STARTTLS and over implicit TLS alike;
// nothing is sent inside a TLS session whose server was not verified.
// TestDowngradeReasons covers the STARTTLS basics; this matrix extends it.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mitm"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// certCase is one server certificate or TLS behaviour.
type certCase struct {
	name   string
	server func(t testing.TB) *tls.Config // the server's TLS configuration
	host   string                         // Dialer.Host; "" means testHost
	want   expect
	cause  func(error) bool // the cause a caller can reach with errors.As
}

func issueCfg(t testing.TB, ca *testpki.CA, o testpki.LeafOptions) *tls.Config {
	t.Helper()
	l, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l.ServerConfig()
}

func hostnameErr(err error) bool {
	var e x509.HostnameError
	return errors.As(err, &e)
}

func unknownAuthority(err error) bool {
	var e x509.UnknownAuthorityError
	return errors.As(err, &e)
}

// remoteAlert reports whether the server's TLS alert is reachable.
func remoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

func invalidCert(reason x509.InvalidReason) func(error) bool {
	return func(err error) bool {
		var e x509.CertificateInvalidError
		return errors.As(err, &e) && e.Reason == reason
	}
}

func certCases() []certCase {
	leaf := func(o testpki.LeafOptions) func(testing.TB) *tls.Config {
		return func(t testing.TB) *tls.Config {
			ca, _ := pki(t)
			return issueCfg(t, ca, o)
		}
	}
	names := func(n ...string) testpki.LeafOptions { return testpki.LeafOptions{DNSNames: n} }
	now := time.Now()
	mismatch := expect{reason: ReasonCertificateHostMismatch}
	return []certCase{
		{name: "expired", server: leaf(testpki.LeafOptions{DNSNames: []string{testHost}, NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-time.Hour)}),
			want: expect{reason: ReasonCertificateExpired}, cause: invalidCert(x509.Expired)},
		// One classification for the module (internal/rfc8460): not yet
		// valid is validation-failure, not certificate-expired.
		{name: "not yet valid", server: leaf(testpki.LeafOptions{DNSNames: []string{testHost}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(72 * time.Hour)}),
			want: expect{reason: ReasonCertificateInvalid}, cause: invalidCert(x509.Expired)},
		{name: "self-signed", server: func(t testing.TB) *tls.Config {
			l, err := testpki.SelfSigned(names(testHost))
			if err != nil {
				t.Fatal(err)
			}
			return l.ServerConfig()
		}, want: expect{reason: ReasonCertificateUntrusted}, cause: unknownAuthority},
		{name: "unknown CA", server: func(t testing.TB) *tls.Config {
			rogue, err := testpki.NewCA("rogue root")
			if err != nil {
				t.Fatal(err)
			}
			return issueCfg(t, rogue, names(testHost))
		}, want: expect{reason: ReasonCertificateUntrusted}, cause: unknownAuthority},
		{name: "missing intermediate", server: func(t testing.TB) *tls.Config {
			ca, _ := pki(t)
			inter, err := ca.NewIntermediate("intermediate")
			if err != nil {
				t.Fatal(err)
			}
			return issueCfg(t, inter, testpki.LeafOptions{DNSNames: []string{testHost}, OmitIntermediates: true})
		}, want: expect{reason: ReasonCertificateUntrusted}, cause: unknownAuthority},
		{name: "wrong host", server: leaf(names("other.test.example")),
			want: mismatch, cause: hostnameErr},
		{name: "wildcard does not cover two labels", server: leaf(names("*.example.com")), host: "a.b.example.com",
			want: mismatch, cause: hostnameErr},
		{name: "wildcard does not cover the bare domain", server: leaf(names("*.example.com")), host: "example.com",
			want: mismatch, cause: hostnameErr},
		{name: "wildcard inside a label", server: leaf(names("m*.test.example")),
			want: mismatch, cause: hostnameErr},
		{name: "wildcard not in the left-most label", server: leaf(names("mx.*.example")), host: "mx.test.example",
			want: mismatch, cause: hostnameErr},
		{name: "IP-only SAN for a host name", server: leaf(testpki.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}),
			want: mismatch, cause: hostnameErr},
		{name: "name only in the common name", server: leaf(testpki.LeafOptions{CommonName: testHost}),
			want: mismatch, cause: hostnameErr},
		{name: "wrong extended key usage", server: leaf(testpki.LeafOptions{DNSNames: []string{testHost}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
			want: expect{reason: ReasonCertificateInvalid}, cause: invalidCert(x509.IncompatibleUsage)},
		{name: "TLS 1.0 only", server: func(t testing.TB) *tls.Config {
			cfg := leaf(names(testHost))(t)
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
			return cfg
		}, want: expect{reason: ReasonHandshakeFailed}},
		{name: "TLS 1.1 only", server: func(t testing.TB) *tls.Config {
			cfg := leaf(names(testHost))(t)
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return cfg
		}, want: expect{reason: ReasonHandshakeFailed}},
		{name: "handshake aborted with an alert", server: func(t testing.TB) *tls.Config {
			return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				return nil, errors.New("refusing this client")
			}}
		}, want: expect{reason: ReasonHandshakeFailed}, cause: remoteAlert},

		// Controls: what must work does.
		{name: "valid (control)", server: leaf(names(testHost)), want: expect{delivered: true}},
		{name: "wildcard for one label (control)", server: leaf(names("*.test.example")), want: expect{delivered: true}},
		{name: "full chain through an intermediate (control)", server: func(t testing.TB) *tls.Config {
			ca, _ := pki(t)
			inter, err := ca.NewIntermediate("intermediate")
			if err != nil {
				t.Fatal(err)
			}
			return issueCfg(t, inter, names(testHost))
		}, want: expect{delivered: true}},
		{name: "IP SAN for an IP host (control)", server: leaf(testpki.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}), host: "127.0.0.1",
			want: expect{delivered: true}},
		{name: "host in capitals with a trailing dot (control)", server: leaf(names(testHost)), host: strings.ToUpper(testHost) + ".",
			want: expect{delivered: true}},
		{name: "RSA key (control)", server: leaf(testpki.LeafOptions{DNSNames: []string{testHost}, Key: testpki.RSA2048}),
			want: expect{delivered: true}},
	}
}

// STD-2, STD-3, STD-8, STD-9, STD-10, STD-11, STD-12, STD-14, STD-87,
// STD-96, STD-97: every certificate defect, over STARTTLS and over implicit
// TLS (the wildcard rules are those of RFC 6125 §6.4.3: a whole left-most
// label, one label deep).
func TestHostileCertificates(t *testing.T) {
	for _, mode := range []Security{SecuritySTARTTLS, SecurityImplicitTLS} {
		for _, tc := range certCases() {
			t.Run(fmt.Sprintf("%v/%s", mode, tc.name), func(t *testing.T) {
				t.Parallel()
				s := newServer(t, func(s *smtptest.Server) {
					s.TLSConfig = tc.server(t)
					s.ImplicitTLS = mode == SecurityImplicitTLS
				})
				d := hostileDialer(t, s)
				d.Security = mode
				if tc.host != "" {
					d.Host = tc.host
				}
				_, err := within(t, hostileTimeout, func() error {
					return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
				})
				want := tc.want
				want.host = tc.host
				want.check(t, err)
				if tc.cause != nil && !tc.cause(err) {
					t.Errorf("the x509 cause is not reachable with errors.As: %v", err)
				}
				checkSessions(t, s, tc.want.delivered)
				if tc.want.delivered {
					if m := s.Messages(); len(m) != 1 || !m[0].TLS || m[0].AuthUser != "alice" {
						t.Fatalf("messages %+v", m)
					}
					st, _ := s.Sessions()[0].TLSState()
					wantSNI := strings.ToLower(strings.TrimSuffix(d.Host, "."))
					if wantSNI == "127.0.0.1" {
						wantSNI = "" // STD-14: never an IP address
					}
					if st.ServerName != wantSNI || st.Version < tls.VersionTLS12 {
						t.Errorf("SNI %q, version %x", st.ServerName, st.Version)
					}
					return
				}
				if len(s.Messages()) != 0 {
					t.Error("a message was delivered")
				}
				for _, sess := range s.Sessions() {
					if len(sess.Encrypted()) != 0 {
						t.Errorf("client sent %q to an unverified server", sess.Encrypted())
					}
				}
			})
		}
	}
}

// STD-2, STD-9, STD-97: the TLS connection fails below the certificate: a
// reset or a close in the middle of the handshake, and the port mix-ups
// between implicit TLS and STARTTLS, one of which meets a certificate for
// another name.
func TestHostileHandshakeFailures(t *testing.T) {
	otherName := func(t testing.TB) *tls.Config {
		ca, _ := pki(t)
		return issueCfg(t, ca, testpki.LeafOptions{DNSNames: []string{"submissions.other.example"}})
	}
	onSTARTTLS := func(then func(c *smtptest.Conn)) func(testing.TB, *smtptest.Server) {
		return func(_ testing.TB, s *smtptest.Server) {
			s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if cmd.Verb == "STARTTLS" {
					c.Write("220 2.0.0 go ahead\r\n")
					then(c)
					return "", true
				}
				return "", false
			}
		}
	}
	cases := []struct {
		name      string
		configure func(testing.TB, *smtptest.Server)
		proxy     func(*mitm.Proxy)
		mode      Security
		want      expect
		cause     func(error) bool
	}{
		{name: "TCP reset in the middle of the handshake", mode: SecuritySTARTTLS,
			proxy: func(p *mitm.Proxy) { p.ResetOnSTARTTLS = true },
			want:  expect{reason: ReasonHandshakeFailed}},
		{name: "connection closed in the middle of the handshake", mode: SecuritySTARTTLS,
			configure: onSTARTTLS(func(c *smtptest.Conn) { c.Close() }),
			want:      expect{reason: ReasonHandshakeFailed}},
		{name: "TCP reset by the server after the 220", mode: SecuritySTARTTLS,
			configure: onSTARTTLS(func(c *smtptest.Conn) { c.Reset() }),
			want:      expect{reason: ReasonHandshakeFailed}},
		{name: "implicit TLS to a STARTTLS port", mode: SecurityImplicitTLS,
			want: expect{reason: ReasonHandshakeFailed}},
		{name: "implicit TLS to a STARTTLS port behind an attacker", mode: SecurityImplicitTLS,
			proxy: func(p *mitm.Proxy) { p.StripSTARTTLS = true },
			want:  expect{reason: ReasonHandshakeFailed}},
		{name: "STARTTLS to an implicit-TLS port", mode: SecuritySTARTTLS,
			configure: func(_ testing.TB, s *smtptest.Server) { s.ImplicitTLS = true },
			want:      expect{timeout: true}},
		{name: "STARTTLS meets a certificate for another name", mode: SecuritySTARTTLS,
			configure: func(t testing.TB, s *smtptest.Server) { s.TLSConfig = otherName(t) },
			want:      expect{reason: ReasonCertificateHostMismatch}, cause: hostnameErr},
		{name: "implicit-TLS port serves a certificate for another name", mode: SecurityImplicitTLS,
			configure: func(t testing.TB, s *smtptest.Server) {
				s.TLSConfig = otherName(t)
				s.ImplicitTLS = true
			},
			want: expect{reason: ReasonCertificateHostMismatch}, cause: hostnameErr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(s *smtptest.Server) {
				if tc.configure != nil {
					tc.configure(t, s)
				}
			})
			var target interface{ Addr() string } = s
			var p *mitm.Proxy
			if tc.proxy != nil {
				p = startProxy(t, s, tc.proxy)
				target = p
			}
			d := hostileDialer(t, target)
			d.Security = tc.mode
			d.GreetingTimeout, d.CommandTimeout = stallTimeout, stallTimeout
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
			})
			tc.want.check(t, err)
			if tc.cause != nil && !tc.cause(err) {
				t.Errorf("the x509 cause is not reachable with errors.As: %v", err)
			}
			if p != nil {
				p.Close()
				assertNoLeak(t, p.ClientPlaintext())
			}
			checkSessions(t, s, false)
			for _, sess := range s.Sessions() {
				if len(sess.Encrypted()) != 0 {
					t.Errorf("client sent %q inside TLS", sess.Encrypted())
				}
			}
			if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}
