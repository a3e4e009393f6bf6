package smtpsecure

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// testHost is the name the test certificates are issued for.
const testHost = "mx.test.example"

var (
	pkiOnce sync.Once
	testCA  *testpki.CA
	testLf  *testpki.Leaf
	pkiErr  error
)

// pki returns a CA and a valid leaf for testHost and 127.0.0.1, shared by
// the tests of this package.
func pki(t testing.TB) (*testpki.CA, *testpki.Leaf) {
	t.Helper()
	if err := initPKI(); err != nil {
		t.Fatal(err)
	}
	return testCA, testLf
}

func initPKI() error {
	pkiOnce.Do(func() {
		if testCA, pkiErr = testpki.NewCA("smtpsecure test root"); pkiErr != nil {
			return
		}
		testLf, pkiErr = testCA.Issue(testpki.LeafOptions{DNSNames: []string{testHost}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	})
	return pkiErr
}

// stdExtensions are what a modern submission server offers after TLS.
var stdExtensions = []string{"PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN", "AUTH PLAIN LOGIN"}

// newServer starts a test server with the shared certificate; configure
// adjusts it before Start.
func newServer(t testing.TB, configure func(*smtptest.Server)) *smtptest.Server {
	t.Helper()
	_, leaf := pki(t)
	s := &smtptest.Server{
		Hostname:   testHost,
		TLSConfig:  leaf.ServerConfig(),
		Extensions: stdExtensions,
		Users:      map[string]string{"alice": "secret"},
		Logf:       t.Logf,
	}
	if configure != nil {
		configure(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dialerFor returns a Dialer for s that trusts the test CA and connects to
// the server's loopback port while verifying testHost.
func dialerFor(t testing.TB, s interface{ Addr() string }) *Dialer {
	t.Helper()
	ca, _ := pki(t)
	addr := s.Addr()
	_, port, _ := net.SplitHostPort(addr)
	return &Dialer{
		Host:            testHost,
		Port:            atoi(t, port),
		Security:        SecuritySTARTTLS,
		TLSConfig:       &tls.Config{RootCAs: ca.Pool()},
		GreetingTimeout: 5 * time.Second,
		CommandTimeout:  5 * time.Second,
		DataTimeout:     5 * time.Second,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad port %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assertNothingInPlaintext fails if the client sent anything but EHLO,
// STARTTLS, QUIT or HELO before TLS.
func assertNothingInPlaintext(t testing.TB, plain []byte) {
	t.Helper()
	for _, line := range strings.Split(string(plain), "\r\n") {
		if line == "" {
			continue
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO", "STARTTLS", "QUIT":
		default:
			t.Errorf("client sent %q in plaintext", line)
		}
	}
	for _, secret := range []string{"secret", "alice", "MAIL", "RCPT", "AUTH", "Subject"} {
		if bytes.Contains(plain, []byte(secret)) {
			t.Errorf("plaintext contains %q: %q", secret, plain)
		}
	}
}

const testMsg = "From: a@test.example\r\nTo: b@test.example\r\nSubject: hi\r\n\r\nHello.\r\n"

// sendMail sends one message with d and returns only the error.
func sendMail(ctx context.Context, d *Dialer, from string, to []string, msg io.Reader) error {
	_, err := d.Send(ctx, &Envelope{From: from, To: to}, msg)
	return err
}

func mustCertPool(t testing.TB) *x509.CertPool {
	ca, _ := pki(t)
	return ca.Pool()
}
