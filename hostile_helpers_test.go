package smtpsecure

// Helpers for the hostile-network suite (issue 3): hostile_starttls_test.go
// (attack classes), hostile_cert_test.go (certificate and TLS matrix) and
// hostile_liveness_test.go (exhaustion and liveness).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mitm"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// hostileTimeout bounds every hostile test: nothing may hang longer. It is
// far above every timeout the client is given, so that reaching it means a
// hang, never a slow machine.
const hostileTimeout = 30 * time.Second

// stallTimeout is the CommandTimeout (and GreetingTimeout and DataTimeout)
// of the tests in which a stall or a timeout is the point: long enough
// that no step of a healthy exchange misses it on a loaded 2-core machine
// under -race, short enough to keep those tests quick.
const stallTimeout = 2 * time.Second

// settleBound bounds what should be immediate (a return after a
// cancellation, goroutines ending after a test): generous for a loaded
// machine, and well below the timeouts that would otherwise end the wait.
const settleBound = 10 * time.Second

// bodyMarker is in the body of every hostile test message, so that a test
// can tell whether any byte of the body reached the server.
const bodyMarker = "hostile-body-7f3a9c"

const hostileMsg = "From: a@test.example\r\nTo: b@test.example\r\nSubject: hostile\r\n\r\n" + bodyMarker + "\r\n"

// credentialForms are the ways the test credentials (alice / secret) cross
// the wire: the PLAIN initial response, the LOGIN responses, and the
// words themselves.
var credentialForms = []string{"AGFsaWNlAHNlY3JldA==", "YWxpY2U=", "c2VjcmV0", "alice", "secret"}

// hctx returns a context that ends the test's I/O after hostileTimeout.
func hctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	t.Cleanup(cancel)
	return ctx
}

// hostileDialer is dialerFor with the credentials set and timeouts short
// enough that no test can hang for long.
func hostileDialer(t testing.TB, s interface{ Addr() string }) *Dialer {
	t.Helper()
	d := dialerFor(t, s)
	d.Auth = PlainAuth("", "alice", "secret")
	d.GreetingTimeout, d.CommandTimeout, d.DataTimeout = stallTimeout, stallTimeout, stallTimeout
	return d
}

// assertNoLeak fails if what a network observer saw in plaintext holds
// anything but EHLO, HELO, STARTTLS or QUIT: no credential in any
// encoding, no envelope, no byte of the body. A TLS handshake that follows
// (a ClientHello sent to a server that never saw STARTTLS, because an
// attacker answered it) is not plaintext and ends the command check.
func assertNoLeak(t testing.TB, plain []byte) {
	t.Helper()
	commands := plain
	if i := bytes.Index(plain, []byte("\x16\x03")); i >= 0 && (i == 0 || plain[i-1] == '\n') {
		commands = plain[:i]
	}
	assertNothingInPlaintext(t, commands)
	for _, s := range append([]string{bodyMarker, "hostile", "test.example>", "MAIL FROM", "RCPT TO", "AUTH "}, credentialForms...) {
		if bytes.Contains(plain, []byte(s)) {
			t.Errorf("plaintext contains %q", s)
		}
	}
}

// checkSessions applies the invariants every hostile case shares to each
// session the server recorded: nothing leaked in plaintext, no HELO
// fallback, STARTTLS at most once and never inside TLS, credentials sent at
// most once and only inside TLS, and (unless the body was allowed to go)
// no body byte at all.
func checkSessions(t testing.TB, s *smtptest.Server, bodyAllowed bool) {
	t.Helper()
	s.Close()
	for i, sess := range s.Sessions() {
		assertNoLeak(t, sess.Plaintext())
		starttls := 0
		for _, c := range sess.Commands() {
			switch c.Verb {
			case "HELO":
				t.Errorf("session %d: client fell back to HELO", i)
			case "STARTTLS":
				starttls++
				if c.TLS {
					t.Errorf("session %d: STARTTLS sent inside TLS (STD-6)", i)
				}
			}
		}
		if starttls > 1 {
			t.Errorf("session %d: %d STARTTLS commands", i, starttls)
		}
		enc := sess.Encrypted()
		if n := bytes.Count(enc, []byte(credentialForms[0])); n > 1 {
			t.Errorf("session %d: credentials sent %d times", i, n)
		}
		if !bodyAllowed && bytes.Contains(enc, []byte(bodyMarker)) {
			t.Errorf("session %d: body sent although the server never asked for it", i)
		}
	}
}

// expect is the outcome a hostile case must end in: a verified delivery,
// or an error of the named type.
type expect struct {
	delivered  bool            // nil error
	reason     DowngradeReason // *DowngradeError with this reason
	result     string          // and this RFC 8460 result type ("" = the reason's usual one)
	code       int             // an *SMTPError with this code is reachable
	protocol   bool            // *ProtocolError
	conn       bool            // *ConnError
	timeout    bool            // *ConnError that is a timeout
	uncertain  bool            // *UncertainDeliveryError
	recipients bool            // *RecipientsError, nothing delivered
	auth       error           // *AuthError matching this sentinel
	extension  string          // *ExtensionError for this extension
	is         error           // errors.Is(err, is)
	host       string          // the host a DowngradeError names ("" = testHost)
}

func (e expect) String() string {
	var parts []string
	switch {
	case e.delivered:
		parts = append(parts, "delivered")
	case e.reason != 0:
		parts = append(parts, fmt.Sprintf("downgrade(%v)", e.reason))
	case e.protocol:
		parts = append(parts, "protocol error")
	case e.timeout:
		parts = append(parts, "timeout")
	case e.conn:
		parts = append(parts, "connection error")
	case e.uncertain:
		parts = append(parts, "uncertain delivery")
	case e.recipients:
		parts = append(parts, "recipients refused")
	case e.auth != nil:
		parts = append(parts, fmt.Sprintf("auth error (%v)", e.auth))
	case e.extension != "":
		parts = append(parts, "missing "+e.extension)
	}
	if e.code != 0 {
		parts = append(parts, fmt.Sprintf("SMTP %d", e.code))
	}
	return strings.Join(parts, ", ")
}

// check fails unless err is the expected outcome.
func (e expect) check(t testing.TB, err error) {
	t.Helper()
	if e.delivered {
		if err != nil {
			t.Fatalf("err = %v (%T), want delivery", err, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", e)
	}
	fail := func(what string) {
		t.Helper()
		t.Fatalf("err = %v (%T): want %v (%s)", err, err, e, what)
	}
	if e.reason != 0 {
		var dg *DowngradeError
		if !errors.As(err, &dg) || !errors.Is(err, ErrDowngrade) {
			fail("not a *DowngradeError")
		}
		if dg.Reason != e.reason {
			fail("reason " + dg.Reason.String())
		}
		want := e.result
		if want == "" {
			want = map[DowngradeReason]string{
				ReasonSTARTTLSNotOffered:      rfc8460.STARTTLSNotSupported,
				ReasonSTARTTLSRefused:         rfc8460.STARTTLSNotSupported,
				ReasonSTARTTLSInjection:       rfc8460.ValidationFailure,
				ReasonHandshakeFailed:         rfc8460.ValidationFailure,
				ReasonCertificateUntrusted:    rfc8460.CertificateNotTrusted,
				ReasonCertificateExpired:      rfc8460.CertificateExpired,
				ReasonCertificateHostMismatch: rfc8460.CertificateHostMismatch,
				ReasonCertificateInvalid:      rfc8460.ValidationFailure,
			}[e.reason]
		}
		if got := dg.ReportResultType(); got != want {
			fail("result type " + got)
		}
		host := e.host
		if host == "" {
			host = testHost
		}
		if !strings.Contains(dg.Host, host) || !strings.Contains(err.Error(), host) {
			fail("the error does not name the host")
		}
	}
	if e.code != 0 {
		var se *SMTPError
		if !errors.As(err, &se) || se.Code != e.code {
			fail("no *SMTPError with that code")
		}
	}
	if e.protocol {
		var pe *ProtocolError
		if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
			fail("not a *ProtocolError")
		}
	}
	if e.conn || e.timeout {
		var ce *ConnError
		if !errors.As(err, &ce) {
			fail("not a *ConnError")
		}
		if e.timeout && (!ce.Timeout() || !errors.Is(err, ErrTimeout)) {
			fail("not a timeout")
		}
		var ue *UncertainDeliveryError
		if errors.As(err, &ue) {
			fail("reported as uncertain delivery")
		}
	}
	if e.uncertain {
		var ue *UncertainDeliveryError
		if !errors.As(err, &ue) || !errors.Is(err, ErrDeliveryUncertain) {
			fail("not an *UncertainDeliveryError")
		}
	}
	if e.recipients {
		var re *RecipientsError
		if !errors.As(err, &re) || !errors.Is(err, ErrRecipientsRejected) {
			fail("not a *RecipientsError with nothing delivered")
		}
	}
	if e.auth != nil {
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, e.auth) {
			fail("not an *AuthError")
		}
	}
	if e.extension != "" {
		var xe *ExtensionError
		if !errors.As(err, &xe) || xe.Extension != e.extension {
			fail("not an *ExtensionError")
		}
	}
	if e.is != nil && !errors.Is(err, e.is) {
		fail(fmt.Sprintf("errors.Is(err, %v) = false", e.is))
	}
	if !strings.HasPrefix(err.Error(), "smtpsecure: ") {
		fail("the message does not say where it comes from")
	}
}

// startProxy starts a man in the middle between the client and s.
func startProxy(t testing.TB, s *smtptest.Server, configure func(*mitm.Proxy)) *mitm.Proxy {
	t.Helper()
	p := &mitm.Proxy{Upstream: s.Addr(), Timeout: hostileTimeout, Logf: t.Logf}
	if configure != nil {
		configure(p)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// signal sends v on ch without blocking (ch may be nil).
func signal(ch chan<- string, v string) {
	if ch == nil {
		return
	}
	select {
	case ch <- v:
	default:
	}
}

// trickle writes data to the client one byte at a time, every interval,
// until it is all written, the client hangs up, or stop is closed.
func trickle(c *smtptest.Conn, data string, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < len(data); i++ {
		if c.Write(data[i:i+1]) != nil {
			return
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

// stopChan returns a channel closed when the test ends, before the servers
// it started are closed (cleanups run last-registered first, so call it
// after starting them).
func stopChan(t testing.TB) chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// settleGoroutines waits for the goroutine count to come back to before,
// and fails if it does not within settleBound.
func settleGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(settleBound)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf)
	}
}

// within runs fn and fails the test if it has not returned after limit;
// it returns how long fn took and its error.
func within(t testing.TB, limit time.Duration, fn func() error) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
		return 0, nil
	}
}

// rawServer is a hand-written SMTP server for the few shapes smtptest
// cannot take: a server that holds back its replies to a pipelined group,
// or one that writes into the TLS handshake once the client has started
// it. It accepts one connection and hands it to serve.
type rawServer struct {
	ln   net.Listener
	done chan struct{}
}

func startRawServer(t testing.TB, serve func(conn net.Conn, r *lineReader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &rawServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(hostileTimeout))
		serve(conn, &lineReader{r: conn})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-rs.done
	})
	return rs
}

func (rs *rawServer) Addr() string { return rs.ln.Addr().String() }

// rawUntilSTARTTLS plays a correct server up to and including the 220
// reply to STARTTLS.
func rawUntilSTARTTLS(conn net.Conn, r *lineReader) {
	io.WriteString(conn, "220 "+testHost+" ESMTP raw\r\n")
	r.line() // EHLO
	io.WriteString(conn, "250-"+testHost+"\r\n250 STARTTLS\r\n")
	r.line() // STARTTLS
	io.WriteString(conn, "220 go ahead\r\n")
}

// rawTLS runs the server side of the handshake with the test certificate.
func rawTLS(t testing.TB, conn net.Conn) (*tls.Conn, *lineReader, bool) {
	_, leaf := pki(t)
	tc := tls.Server(conn, leaf.ServerConfig())
	if tc.Handshake() != nil {
		return nil, nil, false
	}
	return tc, &lineReader{r: tc}, true
}

// lineReader reads CRLF lines and counted octets without read-ahead, so
// that nothing is lost between the plaintext and the TLS phase.
type lineReader struct{ r io.Reader }

func (l *lineReader) line() string {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 4096 {
		if _, err := l.r.Read(one); err != nil {
			return string(b)
		}
		b = append(b, one[0])
		if bytes.HasSuffix(b, []byte("\r\n")) {
			return string(b[:len(b)-2])
		}
	}
	return string(b)
}

func (l *lineReader) skip(n int) {
	io.CopyN(io.Discard, l.r, int64(n))
}
