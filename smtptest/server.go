package smtptest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	ismtptest "github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// DefaultHostname is the name a Server gives in its greeting and EHLO
// reply, and the name its Dialer verifies, when Hostname is empty.
const DefaultHostname = "localhost"

// defaultExtensions are the EHLO extensions NewUnstartedServer sets, those a
// current Postfix offers for submission.
var defaultExtensions = []string{
	"PIPELINING",
	"SIZE 10240000",
	"8BITMIME",
	"SMTPUTF8",
	"CHUNKING",
	"DSN",
	"ENHANCEDSTATUSCODES",
}

// defaultAuthMechanisms are the SASL mechanisms NewUnstartedServer sets.
var defaultAuthMechanisms = []string{"PLAIN", "LOGIN"}

// A Server is an SMTP server on loopback for tests of code that sends mail.
// It has a certificate from a throwaway certificate authority, created at
// Start, that its Dialer trusts; it records every session and every message
// it accepts; Respond makes it refuse, fail or hang up where a test wants.
//
// Create one with NewServer (STARTTLS), NewTLSServer (implicit TLS) or
// NewUnstartedServer (configure the fields, then call Start or StartTLS).
// The fields must not be changed after the server started.
type Server struct {
	// Hostname is the name in the greeting and the EHLO reply. The
	// certificate is issued for it as well as for "localhost", 127.0.0.1
	// and ::1, and Dialer names the server by it. Empty means
	// DefaultHostname.
	Hostname string

	// Extensions are the EHLO extensions offered, as EHLO reply lines
	// without the code: "PIPELINING", "SIZE 10240000", "8BITMIME",
	// "SMTPUTF8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES" (the list
	// NewUnstartedServer sets), "REQUIRETLS", "BINARYMIME". The server
	// accepts the MAIL and RCPT parameters of the extensions offered and
	// refuses the others with 555; "SIZE n" makes it refuse larger messages
	// with 552. STARTTLS and AUTH are not listed here: see DisableSTARTTLS
	// and AuthMechanisms.
	Extensions []string

	// Users maps user names to passwords (or, for XOAUTH2 and OAUTHBEARER,
	// to bearer tokens). When it is not empty the server offers AUTH with
	// AuthMechanisms, and answers MAIL before a successful AUTH with
	// 530 5.7.0. AUTH is offered only inside TLS, as submission servers do,
	// except on a server with DisableSTARTTLS, which offers it in plaintext
	// and so shows whether a client would send its credentials in the clear.
	Users map[string]string

	// AuthMechanisms are the SASL mechanisms offered, in order, from PLAIN,
	// LOGIN, CRAM-MD5, SCRAM-SHA-256, SCRAM-SHA-256-PLUS, XOAUTH2 and
	// OAUTHBEARER. NewUnstartedServer sets PLAIN and LOGIN.
	AuthMechanisms []string

	// DisableSTARTTLS makes a server started with Start offer no STARTTLS:
	// what a server without TLS looks like, and what a man in the middle
	// who strips STARTTLS from the EHLO reply makes any server look like. A
	// client that requires TLS must refuse to go on. It has no effect on a
	// server started with StartTLS.
	DisableSTARTTLS bool

	// TLS, if set, is the base of the server's TLS configuration. It is
	// cloned at Start, never modified; when it has no certificate (no
	// Certificates, GetCertificate or GetConfigForClient), the server's
	// certificate is added. Set it to limit TLS versions, say, or to serve
	// a certificate of the test's own.
	TLS *tls.Config

	// Respond, if set, is called before the server answers each command,
	// and at the two points that are not commands: Connect, before the
	// greeting, and EndOfData, when the message data has ended and the final
	// reply is due. The zero Response keeps the server's own answer;
	// anything else replaces it (see Response). Respond is called from the
	// goroutine serving the session, by several sessions at once, and Close
	// waits for it to return.
	Respond func(Command) Response

	// Logf, if set, logs each line received and sent; SASL exchanges are
	// not logged. Typically t.Logf: Close waits for every goroutine, so a
	// server closed before the test returns never logs after it.
	Logf func(format string, args ...any)

	mu       sync.Mutex
	started  bool
	closed   bool
	implicit bool
	closing  chan struct{} // closed by Close, ends Response.Delay early
	inner    *ismtptest.Server
	ca       *testpki.CA
	cert     *x509.Certificate
	enhanced bool // ENHANCEDSTATUSCODES is offered

	recMu    sync.Mutex
	sessions map[*ismtptest.Session]*Session
	messages []*Message
	msgCh    chan struct{} // closed and replaced when a message is recorded
}

// NewServer starts and returns a Server on loopback that offers STARTTLS,
// with the settings of NewUnstartedServer. The caller must Close it, for
// example with t.Cleanup(srv.Close). It panics if the server cannot start.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewTLSServer starts and returns a Server on loopback that speaks implicit
// TLS (the "submissions" service of port 465, RFC 8314), with the settings
// of NewUnstartedServer. The caller must Close it. It panics if the server
// cannot start.
func NewTLSServer() *Server {
	s := NewUnstartedServer()
	s.StartTLS()
	return s
}

// NewUnstartedServer returns a Server that is not started yet, so that the
// caller can change its fields before calling Start or StartTLS. Extensions
// are PIPELINING, SIZE 10240000, 8BITMIME, SMTPUTF8, CHUNKING, DSN and
// ENHANCEDSTATUSCODES, AuthMechanisms are PLAIN and LOGIN, and there are no
// Users (so no AUTH).
func NewUnstartedServer() *Server {
	return &Server{
		Hostname:       DefaultHostname,
		Extensions:     append([]string(nil), defaultExtensions...),
		AuthMechanisms: append([]string(nil), defaultAuthMechanisms...),
	}
}

// Start starts the server on 127.0.0.1 with a port chosen by the system,
// offering STARTTLS unless DisableSTARTTLS is set. It panics if the server
// was already started, if a field is invalid, or if it cannot listen.
func (s *Server) Start() {
	if err := s.start(false); err != nil {
		panic(err)
	}
}

// StartTLS starts the server on 127.0.0.1 with a port chosen by the system,
// speaking implicit TLS: the TLS handshake comes first and the greeting
// inside it. It panics like Start.
func (s *Server) StartTLS() {
	if err := s.start(true); err != nil {
		panic(err)
	}
}

func (s *Server) start(implicit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("smtptest: server already started")
	}
	ext, maxSize, err := checkExtensions(s.Extensions)
	if err != nil {
		return err
	}
	mechs, err := mechanisms(s.AuthMechanisms, s.Users)
	if err != nil {
		return err
	}
	ca, leaf, err := issue(s.hostname())
	if err != nil {
		return err
	}
	cfg, cert, err := s.tlsConfig(leaf)
	if err != nil {
		return err
	}

	withAuth := ext
	if len(s.Users) > 0 && len(s.AuthMechanisms) > 0 {
		withAuth = append(append([]string(nil), ext...), "AUTH "+strings.Join(upper(s.AuthMechanisms), " "))
	}
	inner := &ismtptest.Server{
		Hostname:       s.hostname(),
		TLSConfig:      cfg,
		ImplicitTLS:    implicit,
		Extensions:     ext,
		TLSExtensions:  withAuth,
		Users:          copyUsers(s.Users),
		Mechanisms:     mechs,
		MaxMessageSize: maxSize,
		RequireAuth:    len(s.Users) > 0,
		Logf:           s.Logf,
	}
	if s.DisableSTARTTLS && !implicit {
		// No TLS at all: the extensions, AUTH included, are offered in
		// plaintext.
		inner.TLSConfig = nil
		inner.Extensions = withAuth
	}
	inner.Hook = s.hook
	s.closing = make(chan struct{})
	s.sessions = make(map[*ismtptest.Session]*Session)
	s.msgCh = make(chan struct{})
	s.inner, s.ca, s.cert, s.implicit = inner, ca, cert, implicit
	s.enhanced = hasKeyword(ext, "ENHANCEDSTATUSCODES")
	if err := inner.Start(); err != nil {
		return err
	}
	s.started = true
	return nil
}

// issue makes the throwaway CA and the server's certificate.
func issue(hostname string) (*testpki.CA, *testpki.Leaf, error) {
	ca, err := testpki.NewCA("smtptest throwaway CA")
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: creating the CA: %w", err)
	}
	names := []string{"localhost"}
	if h := strings.ToLower(hostname); h != "localhost" && net.ParseIP(h) == nil {
		names = append(names, h)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{
		DNSNames: names,
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: issuing the server certificate: %w", err)
	}
	return ca, leaf, nil
}

// tlsConfig returns the server's TLS configuration and the certificate it
// presents.
func (s *Server) tlsConfig(leaf *testpki.Leaf) (*tls.Config, *x509.Certificate, error) {
	if s.TLS == nil {
		return leaf.ServerConfig(), leaf.Cert, nil
	}
	cfg := s.TLS.Clone()
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		cfg.Certificates = []tls.Certificate{leaf.TLSCertificate()}
		return cfg, leaf.Cert, nil
	}
	if len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return cfg, nil, nil
	}
	if c := cfg.Certificates[0].Leaf; c != nil {
		return cfg, c, nil
	}
	c, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: parsing the certificate of Server.TLS: %w", err)
	}
	return cfg, c, nil
}

// checkExtensions validates Extensions and returns them with the SIZE
// limit they declare (0 for none).
func checkExtensions(ext []string) ([]string, int64, error) {
	var size int64
	for _, e := range ext {
		if e == "" || strings.ContainsAny(e, "\r\n\x00") {
			return nil, 0, fmt.Errorf("smtptest: invalid extension %q in Server.Extensions", e)
		}
		kw, arg, _ := strings.Cut(e, " ")
		kw, _, _ = strings.Cut(kw, "=")
		switch strings.ToUpper(kw) {
		case "STARTTLS":
			return nil, 0, fmt.Errorf("smtptest: STARTTLS in Server.Extensions: STARTTLS is offered by Start and removed by DisableSTARTTLS")
		case "AUTH":
			return nil, 0, fmt.Errorf("smtptest: AUTH in Server.Extensions: set Users and AuthMechanisms instead")
		case "SIZE":
			if arg == "" {
				continue
			}
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || n < 0 {
				return nil, 0, fmt.Errorf("smtptest: invalid %q in Server.Extensions: SIZE takes a number of octets", e)
			}
			size = n
		}
	}
	return append([]string(nil), ext...), size, nil
}

func hasKeyword(ext []string, keyword string) bool {
	for _, e := range ext {
		kw, _, _ := strings.Cut(e, " ")
		if strings.EqualFold(kw, keyword) {
			return true
		}
	}
	return false
}

func copyUsers(u map[string]string) map[string]string {
	out := make(map[string]string, len(u))
	for k, v := range u {
		out[k] = v
	}
	return out
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

func (s *Server) hostname() string {
	if s.Hostname == "" {
		return DefaultHostname
	}
	return s.Hostname
}

// Close stops the server: it closes the listener and every connection and
// waits until every goroutine of the server, Respond calls included, has
// returned. A Response.Delay in progress ends at once. Close may be called
// more than once, and on a server that never started.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return
	}
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	inner := s.inner
	s.mu.Unlock()
	inner.Close()
}

// CloseClientConnections closes every open session's connection, as a
// server that hangs up does; the server goes on accepting new ones. The
// sessions end with ErrHungUp.
func (s *Server) CloseClientConnections() {
	if inner := s.innerServer(); inner != nil {
		inner.CloseConnections()
	}
}

func (s *Server) innerServer() *ismtptest.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inner
}

// Addr returns the address the server listens on, "127.0.0.1:port", or ""
// before it started.
func (s *Server) Addr() string {
	if inner := s.innerServer(); inner != nil {
		return inner.Addr()
	}
	return ""
}

// Port returns the port the server listens on, or 0 before it started.
func (s *Server) Port() int {
	if inner := s.innerServer(); inner != nil {
		return inner.Port()
	}
	return 0
}

// Certificate returns the certificate the server presents: the one its CA
// issued, unless TLS brings its own (then the first of TLS.Certificates, or
// nil when it uses GetCertificate). It returns nil before the server
// started.
func (s *Server) Certificate() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// RootCAs returns a new pool holding the server's throwaway CA, for a
// tls.Config.RootCAs of the caller's own. It returns nil before the server
// started.
func (s *Server) RootCAs() *x509.CertPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca == nil {
		return nil
	}
	return s.ca.Pool()
}
