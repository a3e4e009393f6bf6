package mitm

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

var testPKI struct {
	once sync.Once
	ca   *testpki.CA
	leaf *testpki.Leaf
	err  error
}

func pki(t testing.TB) (*testpki.CA, *testpki.Leaf) {
	t.Helper()
	testPKI.once.Do(func() {
		testPKI.ca, testPKI.err = testpki.NewCA("mitm root")
		if testPKI.err == nil {
			testPKI.leaf, testPKI.err = testPKI.ca.Issue(testpki.LeafOptions{DNSNames: []string{smtptest.DefaultHostname}})
		}
	})
	if testPKI.err != nil {
		t.Fatal(testPKI.err)
	}
	return testPKI.ca, testPKI.leaf
}

func clientTLS(t testing.TB) *tls.Config {
	ca, _ := pki(t)
	return &tls.Config{RootCAs: ca.Pool(), ServerName: smtptest.DefaultHostname}
}

// upstream starts an smtptest server; with tlsOn it offers STARTTLS and,
// inside TLS, AUTH PLAIN.
func upstream(t testing.TB, tlsOn bool, mod func(*smtptest.Server)) *smtptest.Server {
	t.Helper()
	s := &smtptest.Server{
		Extensions:    []string{"PIPELINING", "CHUNKING", "AUTH PLAIN"},
		TLSExtensions: []string{"PIPELINING", "CHUNKING", "AUTH PLAIN"},
		Users:         map[string]string{"alice": "secret"},
		Logf:          t.Logf,
	}
	if tlsOn {
		_, leaf := pki(t)
		s.TLSConfig = leaf.ServerConfig()
		s.Extensions = []string{"PIPELINING", "CHUNKING"}
	}
	if mod != nil {
		mod(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// proxy starts p in front of up.
func proxy(t testing.TB, up *smtptest.Server, p *Proxy) *Proxy {
	t.Helper()
	p.Upstream = up.Addr()
	if p.Logf == nil {
		p.Logf = t.Logf
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

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

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *client) readReply() (int, []string, error) {
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return 0, lines, err
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 3 {
			return 0, append(lines, l), strconv.ErrSyntax
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return 0, append(lines, l), err
		}
		lines = append(lines, l)
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
	}
}

// expect reads a reply, checks its code and returns its raw lines.
func (c *client) expect(want int) []string {
	c.t.Helper()
	code, lines, err := c.readReply()
	if err != nil || code != want {
		c.t.Fatalf("reply %d %q (%v), want %d", code, lines, err, want)
	}
	return lines
}

func (c *client) do(line string, want int) []string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(want)
}

func (c *client) handshake() error {
	tc := tls.Client(c.conn, clientTLS(c.t))
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return nil
}

func waitEnded(t testing.TB, s *smtptest.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSessions(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// A faithful relay: the whole STARTTLS session reaches the server, and an
// eavesdropper sees only EHLO and STARTTLS.
func TestRelay(t *testing.T) {
	up := upstream(t, true, nil)
	p := proxy(t, up, &Proxy{})
	c := dial(t, p.Addr())
	c.expect(220)
	if got := c.do("EHLO c.example", 250); got[len(got)-1] != "250 STARTTLS" {
		t.Errorf("EHLO %q", got)
	}
	c.do("STARTTLS", 220)
	if err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	c.do("EHLO c.example", 250)
	c.do("AUTH PLAIN "+"AGFsaWNlAHNlY3JldA==", 235)
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	c.do("DATA", 354)
	c.do("STARTTLS\r\n.", 250)
	c.do("QUIT", 221)
	waitEnded(t, up, 1)
	if got := string(p.ClientPlaintext()); got != "EHLO c.example\r\nSTARTTLS\r\n" {
		t.Errorf("ClientPlaintext %q", got)
	}
	if p.Connections() != 1 {
		t.Errorf("Connections %d", p.Connections())
	}
	sess := up.Sessions()[0]
	if !sess.TLS() || sess.Err() != nil || sess.AuthUser() != "alice" {
		t.Errorf("upstream TLS %v Err %v user %q", sess.TLS(), sess.Err(), sess.AuthUser())
	}
	if m := up.Messages(); len(m) != 1 || string(m[0].Data) != "STARTTLS\r\n" {
		t.Errorf("messages %+v", m)
	}
}

// Without TLS everything is visible, and message data or BDAT chunks that
// look like STARTTLS are not taken for commands.
func TestPlaintextSession(t *testing.T) {
	up := upstream(t, false, nil)
	p := proxy(t, up, &Proxy{STARTTLSReply: "454 4.7.0 not now"})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("EHLO c", 250)
	c.do("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 235)
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	c.do("DATA", 354)
	c.do("STARTTLS\r\n..\r\n.", 250)
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	chunk := "STARTTLS\r\nDATA\r\n\x00\xff"
	c.write("BDAT " + strconv.Itoa(len(chunk)) + "\r\n" + chunk)
	c.expect(250)
	c.write("BDAT 10 LAST\r\nSTARTTLS\r\n")
	c.expect(250)
	c.do("STARTTLS", 454) // this one is a command: intercepted
	c.do("QUIT", 221)
	waitEnded(t, up, 1)
	msgs := up.Messages()
	if len(msgs) != 2 || string(msgs[0].Data) != "STARTTLS\r\n.\r\n" || string(msgs[1].Data) != chunk+"STARTTLS\r\n" {
		t.Fatalf("messages %+v", msgs)
	}
	pt := string(p.ClientPlaintext())
	if !strings.Contains(pt, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n") || !strings.HasSuffix(pt, "STARTTLS\r\nQUIT\r\n") {
		t.Errorf("ClientPlaintext %q", pt)
	}
	if verbs := up.Sessions()[0].Verbs(); strings.Count(strings.Join(verbs, " "), "STARTTLS") != 0 {
		t.Errorf("upstream saw STARTTLS: %q", verbs)
	}
}

func TestStripSTARTTLS(t *testing.T) {
	tests := []struct {
		name string
		ext  []string
		want []string
	}{
		{"STARTTLS last", []string{"PIPELINING", "8BITMIME"},
			[]string{"250-mx.test.example greets c", "250-PIPELINING", "250 8BITMIME"}},
		{"STARTTLS first", []string{"STARTTLS", "8BITMIME"},
			[]string{"250-mx.test.example greets c", "250 8BITMIME"}},
		{"STARTTLS middle, lower case", []string{"PIPELINING", "starttls", "8BITMIME"},
			[]string{"250-mx.test.example greets c", "250-PIPELINING", "250 8BITMIME"}},
		{"STARTTLS alone", nil, []string{"250 mx.test.example greets c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := upstream(t, true, func(s *smtptest.Server) { s.Extensions = tt.ext })
			p := proxy(t, up, &Proxy{StripSTARTTLS: true})
			c := dial(t, p.Addr())
			c.expect(220)
			if got := c.do("EHLO c", 250); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("EHLO %q, want %q", got, tt.want)
			}
			c.do("NOOP", 250)
			// A client that tries STARTTLS anyway still gets TLS end to
			// end: the proxy only strips the advertisement.
			c.do("STARTTLS", 220)
			if err := c.handshake(); err != nil {
				t.Fatal(err)
			}
			c.do("EHLO c", 250)
		})
	}
}

func TestStripSTARTTLSUnit(t *testing.T) {
	lines := func(s ...string) [][]byte {
		var out [][]byte
		for _, l := range s {
			out = append(out, []byte(l))
		}
		return out
	}
	tests := []struct {
		in, want [][]byte
	}{
		{lines("250-h\r\n", "250 STARTTLS\r\n"), lines("250 h\r\n")},
		{lines("250-h\r\n", "250-STARTTLS\r\n", "250\r\n"), lines("250-h\r\n", "250\r\n")},
		{lines("250-h\r\n", "250-X\r\n", "250 STARTTLS\n"), lines("250-h\r\n", "250 X\r\n")},
		{lines("250-h\r\n", "250-X\r\n", "250-STARTTLS \r\n", "250 Y\r\n"), lines("250-h\r\n", "250-X\r\n", "250 Y\r\n")},
		{lines("250-STARTTLS\r\n", "250 X\r\n"), lines("250-STARTTLS\r\n", "250 X\r\n")}, // the first line is the domain
		{lines("250-h\r\n", "250-STARTTLSX\r\n", "250 X\r\n"), lines("250-h\r\n", "250-STARTTLSX\r\n", "250 X\r\n")},
	}
	for _, tt := range tests {
		got := stripSTARTTLS(tt.in, func(string, ...any) {})
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("stripSTARTTLS(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseReplyLine(t *testing.T) {
	tests := []struct {
		line      string
		code      int
		final, ok bool
	}{
		{"220 ready\r\n", 220, true, true},
		{"250-PIPELINING\r\n", 250, false, true},
		{"250\r\n", 250, true, true},
		{"250\n", 250, true, true},
		{"25\r\n", 0, false, false},
		{"abc def\r\n", 0, false, false},
		{"250x\r\n", 0, false, false},
		{"\r\n", 0, false, false},
	}
	for _, tt := range tests {
		code, final, ok := parseReplyLine([]byte(tt.line))
		if code != tt.code || final != tt.final || ok != tt.ok {
			t.Errorf("parseReplyLine(%q) = %d %v %v, want %d %v %v", tt.line, code, final, ok, tt.code, tt.final, tt.ok)
		}
	}
}

func TestSTARTTLSReply(t *testing.T) {
	t.Run("refusal", func(t *testing.T) {
		up := upstream(t, true, nil)
		p := proxy(t, up, &Proxy{STARTTLSReply: "454 4.7.0 TLS not available"})
		c := dial(t, p.Addr())
		c.expect(220)
		c.do("EHLO c", 250)
		// Pipelined: the fake reply must come after NOOP's.
		c.write("NOOP\r\nSTARTTLS\r\n")
		c.expect(250)
		if got := c.expect(454); got[0] != "454 4.7.0 TLS not available" {
			t.Errorf("reply %q", got)
		}
		c.do("NOOP", 250)
		c.do("QUIT", 221)
		waitEnded(t, up, 1)
		if got := up.Sessions()[0].Verbs(); !reflect.DeepEqual(got, []string{"EHLO", "NOOP", "NOOP", "QUIT"}) {
			t.Errorf("upstream verbs %q", got)
		}
	})
	t.Run("fake 220", func(t *testing.T) {
		up := upstream(t, true, nil)
		p := proxy(t, up, &Proxy{STARTTLSReply: "220 2.0.0 go ahead\r\n"})
		c := dial(t, p.Addr())
		c.expect(220)
		c.do("EHLO c", 250)
		c.do("STARTTLS", 220)
		if err := c.handshake(); err == nil {
			t.Fatal("handshake with a server that never saw STARTTLS succeeded")
		}
		if got := string(p.ClientPlaintext()); got != "EHLO c\r\nSTARTTLS\r\n" {
			t.Errorf("ClientPlaintext %q", got)
		}
	})
	t.Run("after a rejected DATA", func(t *testing.T) {
		up := upstream(t, true, nil)
		p := proxy(t, up, &Proxy{STARTTLSReply: "454 4.7.0 no"})
		c := dial(t, p.Addr())
		c.expect(220)
		c.do("EHLO c", 250)
		c.do("MAIL FROM:<a@example.com>", 250)
		c.do("DATA", 554)
		c.do("STARTTLS", 454)
	})
}

// STD-7: the proxy provides the STARTTLS response injection a client must
// detect: bytes right behind the 220, in the same segment.
func TestInjectAfterSTARTTLS(t *testing.T) {
	const inject = "250-injected\r\n250 still injected\r\n"
	up := upstream(t, true, nil)
	p := proxy(t, up, &Proxy{InjectAfterSTARTTLS: inject})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("EHLO c", 250)
	c.do("STARTTLS", 220)
	if c.r.Buffered() != len(inject) {
		t.Fatalf("client has %d bytes buffered after the 220, want %d", c.r.Buffered(), len(inject))
	}
	b, _ := c.r.Peek(len(inject))
	if string(b) != inject {
		t.Errorf("buffered %q", b)
	}
}

func TestInjectAfterGreeting(t *testing.T) {
	up := upstream(t, false, nil)
	p := proxy(t, up, &Proxy{InjectAfterGreeting: "554 5.0.0 injected\r\n"})
	c := dial(t, p.Addr())
	if got := c.expect(220); got[0] != "220 mx.test.example ESMTP smtptest" {
		t.Errorf("greeting %q", got)
	}
	if got := c.expect(554); got[0] != "554 5.0.0 injected" {
		t.Errorf("injected %q", got)
	}
	c.do("NOOP", 250)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestResetAfterClientBytes(t *testing.T) {
	up := upstream(t, false, nil)
	ehlo := "EHLO c\r\n"
	p := proxy(t, up, &Proxy{ResetAfterClientBytes: len(ehlo) + 5})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("EHLO c", 250)
	c.write("MAIL FROM:<a@example.com>\r\n")
	_, _, err := c.readReply()
	if !isReset(err) {
		t.Errorf("client read: %v, want ECONNRESET", err)
	}
	waitEnded(t, up, 1)
	sess := up.Sessions()[0]
	if !isReset(sess.Err()) {
		t.Errorf("upstream Err %v, want ECONNRESET", sess.Err())
	}
	if got := sess.Verbs(); !reflect.DeepEqual(got, []string{"EHLO"}) {
		t.Errorf("upstream verbs %q", got)
	}
}

func TestResetOnSTARTTLS(t *testing.T) {
	up := upstream(t, true, nil)
	p := proxy(t, up, &Proxy{ResetOnSTARTTLS: true})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("EHLO c", 250)
	c.do("STARTTLS", 220)
	err := c.handshake()
	if !isReset(err) {
		t.Errorf("handshake: %v, want ECONNRESET", err)
	}
	waitEnded(t, up, 1)
	if sess := up.Sessions()[0]; sess.TLS() || sess.Err() == nil {
		t.Errorf("upstream TLS %v Err %v", sess.TLS(), sess.Err())
	}
	if got := string(p.ClientPlaintext()); got != "EHLO c\r\nSTARTTLS\r\n" {
		t.Errorf("ClientPlaintext %q", got)
	}
}

// A client that pipelines a command behind STARTTLS leaks it: the proxy
// records it as plaintext.
func TestPipelinedAfterSTARTTLS(t *testing.T) {
	up := upstream(t, true, nil)
	p := proxy(t, up, &Proxy{})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("EHLO c", 250)
	c.write("STARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
	c.expect(220)
	if got := string(p.ClientPlaintext()); !strings.HasSuffix(got, "STARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n") {
		t.Errorf("ClientPlaintext %q", got)
	}
}

func TestLongLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength+10)
	up := upstream(t, false, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "XLONG" {
				return "250 " + long, true
			}
			return "", false
		}
	})
	p := proxy(t, up, &Proxy{StripSTARTTLS: true, STARTTLSReply: "454 no"})
	c := dial(t, p.Addr())
	c.expect(220)
	c.do("NOOP "+long, 500)
	c.write("XLONG\r\n")
	l, err := c.r.ReadString('\n')
	if err != nil || l != "250 "+long+"\r\n" {
		t.Errorf("long reply: %d bytes, %v", len(l), err)
	}
	// The long reply was not counted; later replies still work.
	c.do("NOOP", 250)
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &Proxy{Upstream: addr, Logf: t.Logf}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p.Addr())
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("read from a proxy without upstream succeeded")
	}
	if p.Connections() != 1 {
		t.Errorf("Connections %d", p.Connections())
	}
}

func TestCloseEndsConnections(t *testing.T) {
	up := upstream(t, false, nil)
	p := &Proxy{Upstream: up.Addr(), Logf: t.Logf}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	c.expect(220)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("client still connected after Close")
	}
	waitEnded(t, up, 1)
}

func TestStartErrors(t *testing.T) {
	if err := (&Proxy{}).Start(); err == nil {
		t.Error("Start without Upstream: no error")
	}
	up := upstream(t, false, nil)
	p := proxy(t, up, &Proxy{})
	if err := p.Start(); err == nil {
		t.Error("second Start: no error")
	}
	if err := (&Proxy{}).Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if (&Proxy{}).Addr() != "" {
		t.Error("Addr before Start")
	}
}

func TestConcurrentConnections(t *testing.T) {
	up := upstream(t, true, func(s *smtptest.Server) { s.Logf = func(string, ...any) {} })
	p := proxy(t, up, &Proxy{Logf: func(string, ...any) {}})
	const n = 16
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				c := dial(t, p.Addr())
				c.expect(220)
				c.do("EHLO c", 250)
				c.do("STARTTLS", 220)
				if err := c.handshake(); err != nil {
					t.Fatal(err)
				}
				c.do("EHLO c", 250)
				c.do("MAIL FROM:<a@example.com>", 250)
				c.do("RCPT TO:<b@example.com>", 250)
				c.do("DATA", 354)
				c.do("hi\r\n.", 250)
				c.do("QUIT", 221)
			})
		}
	})
	waitEnded(t, up, n)
	if p.Connections() != n || len(up.Messages()) != n {
		t.Errorf("Connections %d messages %d", p.Connections(), len(up.Messages()))
	}
	if got, want := string(p.ClientPlaintext()), strings.Repeat("EHLO c\r\nSTARTTLS\r\n", n); len(got) != len(want) {
		t.Errorf("ClientPlaintext %d bytes, want %d", len(got), len(want))
	}
}
