package smtptest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGreeting(t *testing.T) {
	tests := []struct {
		name string
		srv  *Server
		want string
	}{
		{"default", &Server{}, "mx.test.example ESMTP smtptest"},
		{"hostname", &Server{Hostname: "smtp.example.org"}, "smtp.example.org ESMTP smtptest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.srv)
			c := dial(t, s.Addr())
			if got := c.expect(220); got[0] != tt.want {
				t.Errorf("greeting %q, want %q", got[0], tt.want)
			}
		})
	}
}

func TestAddrPort(t *testing.T) {
	s := &Server{}
	if s.Addr() != "" || s.Port() != 0 {
		t.Errorf("before Start: Addr %q Port %d", s.Addr(), s.Port())
	}
	start(t, s)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Port() == 0 || !strings.HasSuffix(s.Addr(), ":"+strconv.Itoa(s.Port())) {
		t.Errorf("Addr %q Port %d", s.Addr(), s.Port())
	}
}

func TestStartErrors(t *testing.T) {
	if err := (&Server{ImplicitTLS: true}).Start(); err == nil {
		t.Error("ImplicitTLS without TLSConfig: no error")
	}
	s := start(t, &Server{})
	if err := s.Start(); err == nil {
		t.Error("second Start: no error")
	}
	if err := (&Server{}).Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := (&Server{}).WaitSessions(context.Background(), 0); err == nil {
		t.Error("WaitSessions before Start: no error")
	}
}

func TestEHLO(t *testing.T) {
	tests := []struct {
		name  string
		srv   *Server
		tls   bool // dial with implicit TLS
		hello string
		code  int
		want  []string
	}{
		{"no extensions", &Server{}, false, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example"}},
		{"extensions", &Server{Extensions: []string{"PIPELINING", "SIZE 100"}}, false, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example", "PIPELINING", "SIZE 100"}},
		{"starttls added", &Server{TLSConfig: serverTLS(t), Extensions: []string{"PIPELINING"}}, false, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example", "PIPELINING", "STARTTLS"}},
		{"starttls not doubled", &Server{TLSConfig: serverTLS(t), Extensions: []string{"STARTTLS", "8BITMIME"}}, false, "ehlo c.example", 250,
			[]string{"mx.test.example greets c.example", "STARTTLS", "8BITMIME"}},
		{"starttls listed without TLS config", &Server{Extensions: []string{"STARTTLS"}}, false, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example", "STARTTLS"}},
		{"implicit TLS uses TLSExtensions", &Server{TLSConfig: serverTLS(t), ImplicitTLS: true,
			Extensions: []string{"PIPELINING"}, TLSExtensions: []string{"AUTH PLAIN"}}, true, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example", "AUTH PLAIN"}},
		{"implicit TLS falls back to Extensions without STARTTLS", &Server{TLSConfig: serverTLS(t), ImplicitTLS: true,
			Extensions: []string{"STARTTLS", "PIPELINING"}}, true, "EHLO c.example", 250,
			[]string{"mx.test.example greets c.example", "PIPELINING"}},
		{"HELO", &Server{Extensions: []string{"PIPELINING"}}, false, "HELO c.example", 250,
			[]string{"mx.test.example"}},
		{"EHLO without domain", &Server{}, false, "EHLO", 501, nil},
		{"HELO without domain", &Server{}, false, "HELO ", 501, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.srv)
			var c *client
			if tt.tls {
				c = dialTLS(t, s.Addr())
			} else {
				c = dial(t, s.Addr())
			}
			c.expect(220)
			got := c.do(tt.hello, tt.code)
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
}

// STD-4, STD-5 (server side): after STARTTLS the server forgets the
// pre-TLS state and requires a new EHLO; the post-TLS list applies.
func TestSTARTTLS(t *testing.T) {
	s := start(t, &Server{
		TLSConfig:     serverTLS(t),
		Extensions:    []string{"PIPELINING", "ENHANCEDSTATUSCODES"},
		TLSExtensions: []string{"PIPELINING", "ENHANCEDSTATUSCODES", "AUTH PLAIN"},
		Users:         map[string]string{"alice": "pw"},
	})
	c := greet(t, s.Addr())
	c.startTLS()
	if got := c.doText("MAIL FROM:<a@example.com>"); got != "503 5.5.1 Send EHLO or HELO first" {
		t.Errorf("MAIL before EHLO in TLS: %q", got)
	}
	if got := c.doText("AUTH PLAIN " + b64("\x00alice\x00pw")); !strings.HasPrefix(got, "503 ") {
		t.Errorf("AUTH before EHLO in TLS: %q", got)
	}
	ehlo := c.do("EHLO client.example", 250)
	if want := []string{"mx.test.example greets client.example", "PIPELINING", "ENHANCEDSTATUSCODES", "AUTH PLAIN"}; !reflect.DeepEqual(ehlo, want) {
		t.Errorf("EHLO in TLS: %q, want %q", ehlo, want)
	}
	c.do("AUTH PLAIN "+b64("\x00alice\x00pw"), 235)
	c.do("QUIT", 221)

	sess := onlySession(t, s)
	if err := sess.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}
	if !sess.TLS() {
		t.Error("TLS false")
	}
	st, ok := sess.TLSState()
	if !ok || !st.HandshakeComplete || st.ServerName != DefaultHostname {
		t.Errorf("TLSState %v: complete %v, SNI %q", ok, st.HandshakeComplete, st.ServerName)
	}
	if got, want := string(sess.Plaintext()), "EHLO client.example\r\nSTARTTLS\r\n"; got != want {
		t.Errorf("Plaintext %q, want %q", got, want)
	}
	enc := string(sess.Encrypted())
	if !strings.HasPrefix(enc, "MAIL FROM:<a@example.com>\r\n") || !strings.HasSuffix(enc, "QUIT\r\n") {
		t.Errorf("Encrypted %q", enc)
	}
	if sess.AuthUser() != "alice" || sess.AuthMechanism() != "PLAIN" {
		t.Errorf("AuthUser %q AuthMechanism %q", sess.AuthUser(), sess.AuthMechanism())
	}
	wantVerbs := []string{"EHLO", "STARTTLS", "MAIL", "AUTH", "EHLO", "AUTH", "QUIT"}
	if got := sess.Verbs(); !reflect.DeepEqual(got, wantVerbs) {
		t.Errorf("verbs %q, want %q", got, wantVerbs)
	}
	for i, cmd := range sess.Commands() {
		if cmd.TLS != (i >= 2) {
			t.Errorf("command %d %q: TLS %v", i, cmd.Line, cmd.TLS)
		}
	}
}

// STD-1, STD-6 (server side): STARTTLS only when offered, without
// arguments, and never inside TLS.
func TestSTARTTLSRefused(t *testing.T) {
	tests := []struct {
		name  string
		srv   *Server
		steps []string // commands before the checked one
		line  string
		want  string
	}{
		{"not offered", &Server{}, []string{"EHLO c"}, "STARTTLS", "502 STARTTLS not offered"},
		{"argument", &Server{TLSConfig: serverTLS(t)}, []string{"EHLO c"}, "STARTTLS now", "501 Syntax error: STARTTLS takes no argument"},
		{"before EHLO", &Server{TLSConfig: serverTLS(t)}, nil, "STARTTLS", "503 Send EHLO first"},
		{"after HELO", &Server{TLSConfig: serverTLS(t)}, []string{"HELO c"}, "STARTTLS", "502 STARTTLS not offered"},
		{"listed without TLS config", &Server{Extensions: []string{"STARTTLS", "ENHANCEDSTATUSCODES"}}, []string{"EHLO c"}, "STARTTLS", "454 4.7.0 TLS not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.srv)
			c := dial(t, s.Addr())
			c.expect(220)
			for _, l := range tt.steps {
				c.do(l, 250)
			}
			if got := c.doText(tt.line); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.line, got, tt.want)
			}
			c.do("NOOP", 250) // still in plaintext, still working
		})
	}
	t.Run("inside TLS", func(t *testing.T) {
		s := start(t, &Server{TLSConfig: serverTLS(t), TLSExtensions: []string{"STARTTLS"}})
		c := greet(t, s.Addr())
		c.startTLS()
		if got := c.do("EHLO c", 250); got[1] != "STARTTLS" {
			t.Fatalf("EHLO %q", got)
		}
		if got := c.doText("STARTTLS"); got != "503 TLS already active" {
			t.Errorf("STARTTLS in TLS: %q", got)
		}
	})
}

// The bytes a client sends after STARTTLS, before the handshake, are
// plaintext on the wire and go to the TLS layer (where they fail the
// handshake), never to the command loop.
func TestSTARTTLSPipelinedPlaintext(t *testing.T) {
	s := start(t, &Server{TLSConfig: serverTLS(t)})
	c := greet(t, s.Addr())
	c.write("STARTTLS\r\nMAIL FROM:<a@example.com>\r\n")
	c.expect(220)
	io.Copy(io.Discard, c.r) // the server fails the handshake and closes
	sess := onlySession(t, s)
	if got, want := string(sess.Plaintext()), "EHLO client.example\r\nSTARTTLS\r\nMAIL FROM:<a@example.com>\r\n"; got != want {
		t.Errorf("Plaintext %q, want %q", got, want)
	}
	if sess.Err() == nil || sess.TLS() {
		t.Errorf("Err %v, TLS %v: want a handshake error", sess.Err(), sess.TLS())
	}
	if got := sess.Verbs(); !reflect.DeepEqual(got, []string{"EHLO", "STARTTLS"}) {
		t.Errorf("verbs %q", got)
	}
}

// STD-8 (server side): implicit TLS, greeting inside TLS.
func TestImplicitTLS(t *testing.T) {
	s := start(t, &Server{TLSConfig: serverTLS(t), ImplicitTLS: true})
	c := dialTLS(t, s.Addr())
	c.expect(220)
	c.do("EHLO c.example", 250)
	c.do("QUIT", 221)
	sess := onlySession(t, s)
	if sess.Plaintext() != nil {
		t.Errorf("Plaintext %q, want nil", sess.Plaintext())
	}
	if got := string(sess.Encrypted()); got != "EHLO c.example\r\nQUIT\r\n" {
		t.Errorf("Encrypted %q", got)
	}
	if !sess.TLS() || sess.Err() != nil {
		t.Errorf("TLS %v Err %v", sess.TLS(), sess.Err())
	}
}

func TestImplicitTLSHandshakeFailure(t *testing.T) {
	s := start(t, &Server{TLSConfig: serverTLS(t), ImplicitTLS: true})
	c := dial(t, s.Addr())
	c.write("EHLO plaintext.example\r\n")
	io.Copy(io.Discard, c.r)
	sess := onlySession(t, s)
	if sess.Err() == nil || sess.TLS() || len(sess.Commands()) != 0 {
		t.Errorf("Err %v TLS %v commands %q", sess.Err(), sess.TLS(), sess.Verbs())
	}
}

func TestEnhancedStatusCodes(t *testing.T) {
	for _, tt := range []struct {
		ext  []string
		want string
	}{
		{nil, "250 OK"},
		{[]string{"ENHANCEDSTATUSCODES"}, "250 2.0.0 OK"},
		{[]string{"enhancedstatuscodes"}, "250 2.0.0 OK"},
	} {
		s := start(t, &Server{Extensions: tt.ext})
		c := dial(t, s.Addr())
		c.expect(220)
		if got := c.doText("NOOP"); got != tt.want {
			t.Errorf("ext %q: NOOP %q, want %q", tt.ext, got, tt.want)
		}
	}
}

func TestSimpleCommands(t *testing.T) {
	s := start(t, &Server{Extensions: []string{"ENHANCEDSTATUSCODES"}})
	c := dial(t, s.Addr())
	c.expect(220)
	for _, tt := range []struct{ line, want string }{
		{"NOOP", "250 2.0.0 OK"},
		{"noop hello", "250 2.0.0 OK"},
		{"RSET", "250 2.0.0 OK"},
		{"RSET now", "501 5.5.4 Syntax error: RSET takes no argument"},
		{"VRFY alice", "502 5.5.1 Command not supported"},
		{"EXPN list", "502 5.5.1 Command not supported"},
		{"TURN", "502 5.5.1 Command not supported"},
		{"XYZZY", "502 5.5.1 Command not supported"},
		{"", "500 5.5.2 Syntax error: empty command"},
		{"quit", "221 2.0.0 mx.test.example closing connection"},
	} {
		if got := c.doText(tt.line); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.line, got, tt.want)
		}
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after QUIT: %v, want EOF", err)
	}
	sess := onlySession(t, s)
	if sess.Err() != nil {
		t.Errorf("Err after QUIT: %v", sess.Err())
	}
	if got := sess.Commands()[1]; got.Verb != "NOOP" || got.Arg != "hello" || got.Line != "noop hello" {
		t.Errorf("command %+v", got)
	}
}

func TestMalformedLines(t *testing.T) {
	s := start(t, &Server{})
	c := dial(t, s.Addr())
	c.expect(220)
	for _, tt := range []struct{ name, raw string }{
		{"too long", "NOOP " + strings.Repeat("x", MaxLineLength+100) + "\r\n"},
		{"bare LF", "NOOP\n"},
		{"bare CR inside", "NOOP\rRSET\r\n"},
		{"NUL", "NOOP\x00\r\n"},
	} {
		c.write(tt.raw)
		code, lines, err := c.readReply()
		if err != nil || code != 500 {
			t.Errorf("%s: %d %q %v, want 500", tt.name, code, lines, err)
		}
	}
	c.do("NOOP", 250)
	c.do("QUIT", 221)
	if got := onlySession(t, s).Verbs(); !reflect.DeepEqual(got, []string{"NOOP", "QUIT"}) {
		t.Errorf("verbs %q: malformed lines must not be commands", got)
	}
}

func TestSessionEnd(t *testing.T) {
	tests := []struct {
		name string
		send string
		want error
	}{
		{"hang up", "", io.EOF},
		{"hang up mid-line", "NOOP", io.ErrUnexpectedEOF},
		{"QUIT", "QUIT\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{})
			c := dial(t, s.Addr())
			c.expect(220)
			c.write(tt.send)
			if tt.send == "QUIT\r\n" {
				c.expect(221)
			}
			c.conn.Close()
			sess := onlySession(t, s)
			if err := sess.Err(); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Err %v, want %v", err, tt.want)
			}
			select {
			case <-sess.Done():
			default:
				t.Error("Done not closed")
			}
			if !sess.Ended() {
				t.Error("Ended false")
			}
		})
	}
}

func TestReadTimeout(t *testing.T) {
	s := start(t, &Server{Timeout: 50 * time.Millisecond})
	c := dial(t, s.Addr())
	c.expect(220)
	sess := onlySession(t, s)
	if !errors.Is(sess.Err(), os.ErrDeadlineExceeded) {
		t.Errorf("Err %v, want a deadline error", sess.Err())
	}
}

func TestCloseEndsSessions(t *testing.T) {
	s := &Server{Logf: t.Logf}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c1 := dial(t, s.Addr())
	c1.expect(220)
	c2 := dial(t, s.Addr())
	c2.expect(220)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for i, sess := range s.Sessions() {
		if !errors.Is(sess.Err(), ErrServerClosed) {
			t.Errorf("session %d: Err %v, want ErrServerClosed", i, sess.Err())
		}
	}
	if _, err := c1.r.ReadByte(); err == nil {
		t.Error("client 1 still connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.WaitSessions(ctx, 2); err != nil {
		t.Error(err)
	}
}

func TestWaitSessionsContext(t *testing.T) {
	s := start(t, &Server{})
	c := dial(t, s.Addr())
	c.expect(220)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.WaitSessions(ctx, 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WaitSessions: %v, want context.Canceled", err)
	}
	if err := s.WaitSessions(context.Background(), 0); err != nil {
		t.Errorf("WaitSessions(0): %v", err)
	}
}

// Many clients at once, each with a full transaction, for the race
// detector.
func TestConcurrentSessions(t *testing.T) {
	s := start(t, &Server{
		TLSConfig:     serverTLS(t),
		TLSExtensions: []string{"PIPELINING", "CHUNKING", "AUTH PLAIN"},
		Users:         map[string]string{"u": "p"},
		Hook: func(c *Conn, cmd Command) (string, bool) {
			_ = c.Session().Commands()
			return "", false
		},
		Logf: func(string, ...any) {},
	})
	const n = 20
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				c := greet(t, s.Addr())
				c.startTLS()
				c.do("EHLO c", 250)
				c.do("AUTH PLAIN "+b64("\x00u\x00p"), 235)
				c.do("MAIL FROM:<a@example.com>", 250)
				c.do("RCPT TO:<b@example.com>", 250)
				if i%2 == 0 {
					c.do("DATA", 354)
					c.do("Subject: x\r\n\r\nbody\r\n.", 250)
				} else {
					c.write("BDAT 6 LAST\r\nbody\r\n")
					c.expect(250)
				}
				c.do("QUIT", 221)
			})
		}
	})
	waitEnded(t, s, n)
	if got := len(s.Messages()); got != n {
		t.Errorf("%d messages, want %d", got, n)
	}
	for _, m := range s.Messages() {
		if !m.TLS || m.AuthUser != "u" {
			t.Errorf("message TLS %v AuthUser %q", m.TLS, m.AuthUser)
		}
	}
	for _, sess := range s.Sessions() {
		if sess.Err() != nil || !bytes.HasSuffix(sess.Plaintext(), []byte("STARTTLS\r\n")) {
			t.Errorf("session Err %v plaintext %q", sess.Err(), sess.Plaintext())
		}
	}
}
