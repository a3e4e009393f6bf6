package smtptest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

var testPKI struct {
	once sync.Once
	ca   *testpki.CA
	leaf *testpki.Leaf
	err  error
}

// pki returns a test CA and a leaf for DefaultHostname, made once per run.
func pki(t testing.TB) (*testpki.CA, *testpki.Leaf) {
	t.Helper()
	testPKI.once.Do(func() {
		testPKI.ca, testPKI.err = testpki.NewCA("smtptest root")
		if testPKI.err != nil {
			return
		}
		testPKI.leaf, testPKI.err = testPKI.ca.Issue(testpki.LeafOptions{DNSNames: []string{DefaultHostname}})
	})
	if testPKI.err != nil {
		t.Fatal(testPKI.err)
	}
	return testPKI.ca, testPKI.leaf
}

// serverTLS returns a server TLS configuration for DefaultHostname.
func serverTLS(t testing.TB) *tls.Config {
	_, leaf := pki(t)
	return leaf.ServerConfig()
}

// clientTLS returns a client TLS configuration trusting the test CA.
func clientTLS(t testing.TB) *tls.Config {
	ca, _ := pki(t)
	return &tls.Config{RootCAs: ca.Pool(), ServerName: DefaultHostname, MinVersion: tls.VersionTLS12}
}

// start starts s and closes it at the end of the test.
func start(t testing.TB, s *Server) *Server {
	t.Helper()
	if s.Logf == nil {
		s.Logf = t.Logf
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// client is a raw SMTP client for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func dialTLS(t testing.TB, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	tc := tls.Client(c.conn, clientTLS(t))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return c
}

// greet dials, reads the greeting and sends EHLO.
func greet(t testing.TB, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	c.expect(220)
	c.do("EHLO client.example", 250)
	return c
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// readReply reads one reply and returns its code and the text of its lines.
func (c *client) readReply() (int, []string, error) {
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return 0, lines, err
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if len(l) < 3 {
			return 0, append(lines, l), strconv.ErrSyntax
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return 0, append(lines, l), err
		}
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		lines = append(lines, text)
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
	}
}

// expect reads a reply and checks its code.
func (c *client) expect(want int) []string {
	c.t.Helper()
	code, lines, err := c.readReply()
	if err != nil {
		c.t.Fatalf("reading reply (want %d): %v (lines %q)", want, err, lines)
	}
	if code != want {
		c.t.Fatalf("got %d %q, want %d", code, lines, want)
	}
	return lines
}

// do sends a command line and checks the reply code.
func (c *client) do(line string, want int) []string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(want)
}

// doText sends a command and returns the first line of the reply as
// "code text".
func (c *client) doText(line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	code, lines, err := c.readReply()
	if err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	return strconv.Itoa(code) + " " + lines[0]
}

// startTLS runs STARTTLS and the handshake.
func (c *client) startTLS() {
	c.t.Helper()
	c.do("STARTTLS", 220)
	if c.r.Buffered() != 0 {
		c.t.Fatalf("server sent %d bytes after 220", c.r.Buffered())
	}
	tc := tls.Client(c.conn, clientTLS(c.t))
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64 %q: %v", s, err)
	}
	return string(b)
}

// waitEnded waits for n sessions to end.
func waitEnded(t testing.TB, s *Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSessions(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// onlySession waits for the first session to end and returns it.
func onlySession(t testing.TB, s *Server) *Session {
	t.Helper()
	waitEnded(t, s, 1)
	return s.Sessions()[0]
}
