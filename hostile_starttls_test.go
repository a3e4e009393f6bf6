package smtpsecure

// Issue 3 §1: the STARTTLS attack classes of "Why TLS is better without
// STARTTLS" (Poddebniak, Ising, Böck, Schinzel, 2021), each as a scripted
// hostile server or a man in the middle. Every case ends in a verified
// delivery or a typed error; in none does the server or the network see a
// credential, an envelope or a body byte in plaintext; none hangs.
//
// Related cases elsewhere: TestDowngradeReasons (STARTTLS missing, 454,
// 501, EHLO refused), TestSTARTTLSInjection (a reply or garbage after the
// 220 to STARTTLS, from the server), TestCapabilitiesOnlyAfterTLS.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/mitm"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// STD-1, STD-2, STD-3, STD-97: an attacker on the path who strips STARTTLS
// or answers it in place of the server gets a typed DowngradeError (or, for
// a reply that is not SMTP, a ProtocolError or timeout), and reads nothing
// but EHLO, STARTTLS and QUIT.
func TestHostileStripping(t *testing.T) {
	cases := []struct {
		name    string
		proxy   func(*mitm.Proxy)
		dialer  func(*Dialer)
		want    expect
		timeout bool // the case ends in the client's CommandTimeout
	}{
		{name: "STARTTLS stripped from EHLO", proxy: func(p *mitm.Proxy) { p.StripSTARTTLS = true },
			want: expect{reason: ReasonSTARTTLSNotOffered}},
		{name: "STARTTLS stripped, security chosen by port", proxy: func(p *mitm.Proxy) { p.StripSTARTTLS = true },
			dialer: func(d *Dialer) { d.Security = SecurityAuto },
			want:   expect{reason: ReasonSTARTTLSNotOffered}},
		{name: "STARTTLS stripped, opportunistic client keeps its credentials", proxy: func(p *mitm.Proxy) { p.StripSTARTTLS = true },
			dialer: func(d *Dialer) { d.InsecureOpportunisticTLS = true },
			want:   expect{auth: ErrInsecureAuth}},
		{name: "220 but the server never saw STARTTLS", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "220 2.0.0 Ready to start TLS" },
			want: expect{reason: ReasonHandshakeFailed}},
		{name: "220 with binary garbage as text", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "220 \x00\xff\x1b[2J ready" },
			want: expect{reason: ReasonHandshakeFailed}},
		{name: "220 followed by garbage", proxy: func(p *mitm.Proxy) {
			p.STARTTLSReply = "220 ready"
			p.InjectAfterSTARTTLS = "garbage\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection, is: ErrProtocol}},
		{name: "220 glued to garbage", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "220garbage" },
			want: expect{protocol: true, is: ErrMalformedReply}},
		{name: "2200 four-digit code", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "2200 ready" },
			want: expect{protocol: true, is: ErrMalformedReply}},
		{name: "220 continuation with another code", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "220-ready\r\n250 ok" },
			want: expect{protocol: true, is: ErrMalformedReply}},
		{name: "220 continuation never ended", proxy: func(p *mitm.Proxy) { p.STARTTLSReply = "220-ready" },
			want: expect{timeout: true}, timeout: true},
	}
	for _, code := range []int{421, 454, 500, 501, 502, 504, 530, 550, 554} {
		cases = append(cases, struct {
			name    string
			proxy   func(*mitm.Proxy)
			dialer  func(*Dialer)
			want    expect
			timeout bool
		}{
			name:  fmt.Sprintf("STARTTLS answered %d by the attacker", code),
			proxy: func(p *mitm.Proxy) { p.STARTTLSReply = fmt.Sprintf("%d 5.7.0 no TLS for you", code) },
			want:  expect{reason: ReasonSTARTTLSRefused, code: code},
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, nil)
			p := startProxy(t, s, tc.proxy)
			d := hostileDialer(t, p)
			if tc.timeout {
				d.GreetingTimeout, d.CommandTimeout = stallTimeout, stallTimeout
			}
			if tc.dialer != nil {
				tc.dialer(d)
			}
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
			})
			tc.want.check(t, err)
			p.Close()
			assertNoLeak(t, p.ClientPlaintext())
			checkSessions(t, s, false)
			if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}

// STD-4, STD-5, STD-15, STD-23, STD-32, STD-91: capabilities that differ
// before and after TLS are taken from the EHLO after TLS only. (The SIZE
// and AUTH-unavailable basics are in TestCapabilitiesOnlyAfterTLS.)
func TestHostileNegotiationTampering(t *testing.T) {
	cases := []struct {
		name       string
		before     []string // EHLO before TLS (STARTTLS is added)
		after      []string // EHLO inside TLS
		hook       func(*smtptest.Conn, smtptest.Command) (string, bool)
		auth       Auth // nil: PlainAuth; use noAuth for none
		env        Envelope
		msg        string
		want       expect
		check      func(t *testing.T, s *smtptest.Session)
		bodyBanned bool
	}{
		{name: "AUTH offered only before TLS", before: []string{"AUTH PLAIN LOGIN"}, after: []string{"8BITMIME"},
			want: expect{auth: ErrAuthUnavailable}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "AUTH") }},
		{name: "AUTH mechanisms differ after TLS", before: []string{"AUTH PLAIN"}, after: []string{"AUTH LOGIN"},
			auth: PasswordAuth("alice", "secret"), want: expect{delivered: true},
			check: func(t *testing.T, s *smtptest.Session) {
				if s.AuthMechanism() != "LOGIN" {
					t.Errorf("authenticated with %q, want the post-TLS LOGIN", s.AuthMechanism())
				}
			}},
		{name: "PIPELINING offered only before TLS", before: []string{"PIPELINING", "AUTH PLAIN"}, after: []string{"AUTH PLAIN"},
			hook: refuse("MAIL", "550 5.7.1 not from you"), want: expect{code: 550}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "RCPT", "DATA") }},
		{name: "CHUNKING offered only before TLS", before: []string{"CHUNKING", "PIPELINING"}, after: []string{"AUTH PLAIN"},
			want:  expect{delivered: true},
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "BDAT") }},
		{name: "SIZE smaller after TLS", before: []string{"SIZE 10000000"}, after: []string{"SIZE 50", "AUTH PLAIN"},
			want: expect{is: ErrMessageTooLarge}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "MAIL") }},
		{name: "SIZE larger after TLS", before: []string{"SIZE 50"}, after: []string{"SIZE 10000000", "AUTH PLAIN"},
			want: expect{delivered: true}},
		{name: "STARTTLS offered again inside TLS", after: []string{"STARTTLS", "AUTH PLAIN"},
			want: expect{delivered: true}},
		{name: "8BITMIME offered only before TLS", before: []string{"8BITMIME"}, after: []string{"AUTH PLAIN"},
			msg: "Subject: x\r\n\r\n" + bodyMarker + " grüße\r\n", want: expect{extension: "8BITMIME"}},
		{name: "SMTPUTF8 offered only before TLS", before: []string{"SMTPUTF8", "8BITMIME"}, after: []string{"8BITMIME", "AUTH PLAIN"},
			env: Envelope{To: []string{"jörg@test.example"}}, want: expect{extension: "SMTPUTF8"}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "MAIL") }},
		{name: "REQUIRETLS offered only before TLS", before: []string{"REQUIRETLS"}, after: []string{"AUTH PLAIN"},
			env: Envelope{MailOptions: MailOptions{RequireTLS: true}}, want: expect{extension: "REQUIRETLS"}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "MAIL") }},
		{name: "DSN offered only before TLS", before: []string{"DSN"}, after: []string{"AUTH PLAIN"},
			env: Envelope{Notify: NotifyFailure}, want: expect{extension: "DSN"}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "MAIL") }},
		{name: "BINARYMIME offered only before TLS", before: []string{"BINARYMIME", "CHUNKING"}, after: []string{"CHUNKING", "AUTH PLAIN"},
			env: Envelope{MailOptions: MailOptions{Body: BodyBinaryMIME}}, want: expect{extension: "BINARYMIME"}, bodyBanned: true,
			check: func(t *testing.T, s *smtptest.Session) { noVerb(t, s, "MAIL") }},
		{name: "ENHANCEDSTATUSCODES offered only before TLS", before: []string{"ENHANCEDSTATUSCODES"}, after: []string{"AUTH PLAIN"},
			hook: refuse("MAIL", "550 5.7.1 not from you"), want: expect{code: 550}, bodyBanned: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(s *smtptest.Server) {
				s.Extensions = tc.before
				s.TLSExtensions = tc.after
				s.Hook = tc.hook
			})
			d := hostileDialer(t, s)
			if tc.auth != nil {
				d.Auth = tc.auth
			}
			env := tc.env
			env.From = "a@test.example"
			if env.To == nil {
				env.To = []string{"b@test.example"}
			}
			msg := tc.msg
			if msg == "" {
				msg = hostileMsg
			}
			_, err := within(t, hostileTimeout, func() error {
				_, err := d.Send(hctx(t), &env, strings.NewReader(msg))
				return err
			})
			tc.want.check(t, err)
			if tc.name == "ENHANCEDSTATUSCODES offered only before TLS" {
				var se *SMTPError
				if errors.As(err, &se) && se.Enhanced != (EnhancedCode{}) {
					t.Errorf("enhanced code %v taken from a server that offers ENHANCEDSTATUSCODES only before TLS", se.Enhanced)
				}
			}
			checkSessions(t, s, !tc.bodyBanned)
			sess := s.Sessions()[0]
			if tc.check != nil {
				tc.check(t, sess)
			}
			if tc.want.delivered {
				if m := s.Messages(); len(m) != 1 || !m[0].TLS || m[0].AuthUser != "alice" {
					t.Fatalf("messages %+v", m)
				}
			} else if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}

// noVerb fails if the session holds any of the verbs.
func noVerb(t *testing.T, s *smtptest.Session, verbs ...string) {
	t.Helper()
	for _, c := range s.Commands() {
		if slices.Contains(verbs, c.Verb) {
			t.Errorf("client sent %q", c.Line)
		}
	}
}

// refuse answers verb (inside TLS) with reply.
func refuse(verb, reply string) func(*smtptest.Conn, smtptest.Command) (string, bool) {
	return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
		if cmd.Verb == verb && cmd.TLS {
			return reply, true
		}
		return "", false
	}
}

// STD-7, STD-3: bytes pipelined after a plaintext reply, by the server or by
// an attacker, are never read as if they came through TLS: the session ends
// with a typed error before any credential, envelope or body is sent.
func TestHostileResponseInjection(t *testing.T) {
	cases := []struct {
		name  string
		proxy func(*mitm.Proxy) // nil: no proxy
		hook  func(*smtptest.Conn, smtptest.Command) (string, bool)
		raw   func(t testing.TB, conn net.Conn, r *lineReader) // a raw server instead
		want  expect
	}{
		{name: "fake EHLO reply after the 220 to STARTTLS", proxy: func(p *mitm.Proxy) {
			p.InjectAfterSTARTTLS = "250-" + testHost + "\r\n250 AUTH PLAIN\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "TLS-looking record after the 220 to STARTTLS", proxy: func(p *mitm.Proxy) {
			p.InjectAfterSTARTTLS = "\x16\x03\x01\x00\x05hello"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "fake EHLO reply after the greeting", proxy: func(p *mitm.Proxy) {
			p.InjectAfterGreeting = "250-" + testHost + "\r\n250 STARTTLS\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "pre-staged 220 after the greeting", proxy: func(p *mitm.Proxy) {
			p.InjectAfterGreeting = "220 2.0.0 Ready to start TLS\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "garbage after the greeting", proxy: func(p *mitm.Proxy) {
			p.InjectAfterGreeting = "XXXX\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "server sends two replies as its greeting", hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "CONNECT" {
				return "220 " + testHost + " ESMTP\r\n250 extra\r\n", true
			}
			return "", false
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "server pre-stages the 220 to STARTTLS after its EHLO reply", hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EHLO" && !cmd.TLS {
				return "250-" + testHost + "\r\n250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n", true
			}
			return "", false
		}, want: expect{reason: ReasonSTARTTLSInjection}},
		{name: "reply written into the handshake after it began", raw: func(t testing.TB, conn net.Conn, r *lineReader) {
			rawUntilSTARTTLS(conn, r)
			// Wait for the ClientHello: the client has checked its buffer
			// and started the handshake; then answer in plaintext.
			one := make([]byte, 1)
			conn.Read(one)
			io.WriteString(conn, "250-"+testHost+"\r\n250 AUTH PLAIN\r\n")
			io.Copy(io.Discard, conn)
		}, want: expect{reason: ReasonHandshakeFailed}},
		{name: "EHLO reply with STARTTLS after an injected error reply", proxy: func(p *mitm.Proxy) {
			p.InjectAfterGreeting = "554 5.7.0 go away\r\n"
		}, want: expect{reason: ReasonSTARTTLSInjection}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var target interface{ Addr() string }
			var s *smtptest.Server
			var p *mitm.Proxy
			if tc.raw != nil {
				target = startRawServer(t, func(conn net.Conn, r *lineReader) { tc.raw(t, conn, r) })
			} else {
				s = newServer(t, func(s *smtptest.Server) { s.Hook = tc.hook })
				target = s
				if tc.proxy != nil {
					p = startProxy(t, s, tc.proxy)
					target = p
				}
			}
			d := hostileDialer(t, target)
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
			})
			tc.want.check(t, err)
			if p != nil {
				p.Close()
				assertNoLeak(t, p.ClientPlaintext())
			}
			if s != nil {
				checkSessions(t, s, false)
				for _, sess := range s.Sessions() {
					if len(sess.Encrypted()) != 0 {
						t.Errorf("client sent %q inside TLS after the injection", sess.Encrypted())
					}
				}
				if len(s.Messages()) != 0 {
					t.Error("a message was delivered")
				}
			}
		})
	}
}

// A step of the session at which the odd-reply matrix answers with each
// code.
type oddStep struct {
	name      string
	verb      string // the command (or CONNECT, EOD) that gets the odd reply
	tls       int    // 0: either, 1: only before TLS, 2: only inside TLS
	success   int    // the code the default server sends there
	pipelined bool
	want      func(code int) expect
}

// oddCodes are the reply codes of issue 3 §1.
var oddCodes = []int{220, 221, 235, 250, 334, 354, 421, 500, 501, 502, 504, 530, 550, 554}

// byClass is the rule for most steps: the expected code is success, a
// 4xx/5xx is the server's refusal (*SMTPError; 421 also ends the session),
// and any other code is a reply the command cannot get: a *ProtocolError
// that ends the session (354 to MAIL is not an invitation to send the
// body, 221 to RCPT means the server is leaving).
func byClass(success int) func(int) expect {
	return func(code int) expect {
		switch {
		case code == success:
			return expect{delivered: true}
		case code >= 400:
			return expect{code: code}
		}
		return expect{protocol: true}
	}
}

var oddSteps = []oddStep{
	{name: "greeting", verb: "CONNECT", success: 220, want: byClass(220)},
	{name: "EHLO", verb: "EHLO", tls: 1, success: -1, want: func(code int) expect {
		switch {
		case code == 250: // an EHLO reply without STARTTLS: stripped
			return expect{reason: ReasonSTARTTLSNotOffered}
		case code == 421:
			return expect{code: code}
		case code >= 500: // the server "does not know EHLO": no HELO fallback
			return expect{reason: ReasonSTARTTLSNotOffered, code: code}
		}
		return expect{protocol: true}
	}},
	{name: "EHLO inside TLS", verb: "EHLO", tls: 2, success: -1, want: func(code int) expect {
		if code == 250 { // no extensions, so no AUTH
			return expect{auth: ErrAuthUnavailable}
		}
		return byClass(-1)(code)
	}},
	{name: "HELO", verb: "HELO", success: -1, want: func(code int) expect {
		// EHLO is answered 500; a secure client never tries HELO.
		return expect{reason: ReasonSTARTTLSNotOffered, code: 500}
	}},
	{name: "STARTTLS", verb: "STARTTLS", success: 220, want: func(code int) expect {
		if code == 220 {
			return expect{delivered: true}
		}
		return expect{reason: ReasonSTARTTLSRefused, code: code}
	}},
	{name: "AUTH", verb: "AUTH", success: 235, want: func(code int) expect {
		switch {
		case code == 235:
			return expect{delivered: true}
		case code == 334: // a challenge PLAIN has no answer to: cancelled
			return expect{auth: ErrAuthFailed}
		case code >= 400:
			return expect{auth: ErrAuthFailed, code: code}
		}
		return expect{protocol: true}
	}},
	{name: "MAIL", verb: "MAIL", success: 250, want: byClass(250)},
	{name: "MAIL pipelined", verb: "MAIL", success: 250, pipelined: true, want: byClass(250)},
	{name: "RCPT", verb: "RCPT", success: 250, want: rcptOutcome},
	{name: "RCPT pipelined", verb: "RCPT", success: 250, pipelined: true, want: rcptOutcome},
	{name: "DATA", verb: "DATA", success: 354, want: byClass(354)},
	{name: "DATA pipelined", verb: "DATA", success: 354, pipelined: true, want: byClass(354)},
	{name: "end of data", verb: "EOD", success: 250, want: byClass(250)},
	{name: "end of data pipelined", verb: "EOD", success: 250, pipelined: true, want: byClass(250)},
	{name: "RSET", verb: "RSET", success: 250, want: byClass(250)},
	{name: "QUIT", verb: "QUIT", success: 221, want: byClass(221)},
}

func rcptOutcome(code int) expect {
	switch {
	case code == 250:
		return expect{delivered: true}
	case code == 421:
		return expect{code: code}
	case code >= 500: // the only recipient refused: nothing is sent
		return expect{recipients: true, code: code}
	}
	return expect{protocol: true}
}

// oddHook answers step's command with code. 221 and 421 are followed by
// the server hanging up, as their meaning is. The expected code is left to
// the default server, except for EHLO, whose odd 250 lists no extension.
func oddHook(st oddStep, code int) func(*smtptest.Conn, smtptest.Command) (string, bool) {
	reply := fmt.Sprintf("%d odd reply to %s", code, st.verb)
	if code == 334 {
		reply = "334 b2Rk" // base64 "odd": a well-formed challenge
	}
	return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
		switch {
		case st.verb == "HELO" && cmd.Verb == "EHLO":
			return "500 5.5.1 command unrecognized", true
		case st.verb == "RSET" && cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, "refused"):
			return "550 5.1.1 no such user", true
		case cmd.Verb != st.verb, st.tls == 1 && cmd.TLS, st.tls == 2 && !cmd.TLS, code == st.success:
			return "", false
		case code == 221 || code == 421:
			c.Write(reply + "\r\n")
			c.Close()
			return "", true
		}
		return reply, true
	}
}

// STD-1, STD-2, STD-15, STD-16, STD-18, STD-25, STD-27, STD-36: the odd
// replies at each step (issue 3 §1): greeting, EHLO (before and inside TLS),
// HELO, STARTTLS, AUTH, MAIL, RCPT, DATA, the end of data (each with and
// without PIPELINING), RSET and QUIT, each answered with 220, 221, 235, 250,
// 334, 354, 421, 500, 501, 502, 504, 530, 550 and 554.
func TestHostileOddReplies(t *testing.T) {
	for _, st := range oddSteps {
		for _, code := range oddCodes {
			want := st.want(code)
			t.Run(fmt.Sprintf("%s/%d", st.name, code), func(t *testing.T) {
				t.Parallel()
				exts := []string{"8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}
				if st.pipelined {
					exts = append(exts, "PIPELINING")
				}
				s := newServer(t, func(s *smtptest.Server) {
					s.TLSExtensions = exts
					s.Hook = oddHook(st, code)
				})
				d := hostileDialer(t, s)
				ctx := hctx(t)
				env := &Envelope{From: "a@test.example", To: []string{"b@test.example"}}
				bodyAllowed := want.delivered
				var wantMessages int
				if want.delivered {
					wantMessages = 1
				}
				var firstErr error // the first Send of the RSET and QUIT rows
				_, err := within(t, hostileTimeout, func() error {
					switch st.verb {
					case "RSET":
						// A refused transaction is reset; the next message
						// goes only if the reset succeeded.
						bodyAllowed = true
						c, err := d.Dial(ctx)
						if err != nil {
							return err
						}
						defer c.Close()
						_, firstErr = c.Send(ctx, &Envelope{From: "a@test.example", To: []string{"refused@test.example"}}, strings.NewReader(hostileMsg))
						_, err = c.Send(ctx, env, strings.NewReader(hostileMsg))
						if err == nil {
							c.Quit(ctx)
						}
						return err
					case "QUIT":
						// The message is delivered whatever QUIT gets; Quit
						// reports the reply.
						bodyAllowed, wantMessages = true, 1
						c, err := d.Dial(ctx)
						if err != nil {
							return err
						}
						if _, firstErr = c.Send(ctx, env, strings.NewReader(hostileMsg)); firstErr != nil {
							c.Close()
							return nil
						}
						return c.Quit(ctx)
					case "EOD":
						bodyAllowed = true
						if code/100 == 2 {
							wantMessages = -1 // the server keeps it; the client must not claim it
						}
					case "DATA":
						bodyAllowed = code == 354
					}
					_, err := d.Send(ctx, env, strings.NewReader(hostileMsg))
					return err
				})
				switch st.verb {
				case "RSET":
					expect{recipients: true, code: 550}.check(t, firstErr)
				case "QUIT":
					expect{delivered: true}.check(t, firstErr)
				}
				want.check(t, err)
				checkSessions(t, s, bodyAllowed)
				if m := s.Messages(); wantMessages >= 0 && len(m) != wantMessages {
					t.Errorf("%d messages delivered, want %d", len(m), wantMessages)
				}
				for _, m := range s.Messages() {
					if !m.TLS {
						t.Error("message delivered outside TLS")
					}
				}
			})
		}
	}
}

// The matrix above runs the secure default; with InsecureOpportunisticTLS
// a client does fall back to HELO when EHLO is refused, and must then read
// the HELO reply as strictly as any other (issue 3 §1, HELO row).
func TestHostileOpportunisticHELOReplies(t *testing.T) {
	for _, code := range oddCodes {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(s *smtptest.Server) {
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					switch {
					case cmd.Verb == "EHLO":
						return "500 5.5.1 command unrecognized", true
					case cmd.Verb == "HELO" && code != 250:
						return fmt.Sprintf("%d odd reply to HELO", code), true
					}
					return "", false
				}
			})
			d := dialerFor(t, s)
			d.InsecureOpportunisticTLS = true
			d.GreetingTimeout, d.CommandTimeout = 2*time.Second, 2*time.Second
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
			})
			byClass(250)(code).check(t, err)
		})
	}
}
