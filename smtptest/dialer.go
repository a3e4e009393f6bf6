package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"strconv"

	"github.com/smtpsecure/smtpsecure"
)

// Dialer returns a new smtpsecure.Dialer for the server, with the library's
// secure defaults and nothing weakened: Host is the server's Hostname,
// Port its port, Security SecuritySTARTTLS (SecurityImplicitTLS for a server
// started with StartTLS), TLSConfig.RootCAs trusts the server's CA and
// nothing else, and DialContext connects to Addr whatever Host resolves to,
// so Host may be set to any name the certificate covers. Set Auth and the
// other fields as the code under test would. It panics before the server
// started.
func (s *Server) Dialer() *smtpsecure.Dialer {
	s.mu.Lock()
	started, implicit := s.started, s.implicit
	s.mu.Unlock()
	if !started {
		panic("smtptest: Dialer called before Start")
	}
	addr := s.Addr()
	sec := smtpsecure.SecuritySTARTTLS
	if implicit {
		sec = smtpsecure.SecurityImplicitTLS
	}
	return &smtpsecure.Dialer{
		Host:      s.hostname(),
		Port:      s.Port(),
		Security:  sec,
		TLSConfig: &tls.Config{RootCAs: s.RootCAs()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// SendMail stands in for smtpsecure.SendMail, the drop-in for
// net/smtp.SendMail, in tests of code that calls it through a variable or
// an interface. The drop-in trusts only the system's roots, which a test
// cannot add a throwaway CA to (on some systems the SSL_CERT_FILE variable
// works, but only before the process first loads the roots), so a test
// replaces the call with this method, which behaves the same — required
// TLS, verified certificate, net/smtp Auth values, all recipients or none —
// except that it trusts the server's CA.
//
// addr must name the server: its port, and a host its certificate covers
// (Hostname, "localhost", 127.0.0.1 or ::1); the host is the name verified
// and given to a. A server started with StartTLS is spoken to with implicit
// TLS whatever the port.
func (s *Server) SendMail(addr string, a smtp.Auth, from string, to []string, msg []byte) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("smtptest: SendMail address %q: %w", addr, err)
	}
	if port, err := strconv.Atoi(portStr); err != nil || port != s.Port() {
		return fmt.Errorf("smtptest: SendMail to %q, but the server listens on %s: give the code under test the server's address", addr, s.Addr())
	}
	d := s.Dialer()
	d.Host = host
	if a != nil {
		d.Auth = smtpsecure.NetSMTPAuth(a)
	}
	_, err = d.Send(context.Background(), &smtpsecure.Envelope{From: from, To: to, AllOrNothing: true}, bytes.NewReader(msg))
	return err
}
