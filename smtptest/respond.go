package smtptest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	ismtptest "github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// The two points of a session, other than commands, at which Server.Respond
// is called. They are values of Command.Verb and are never recorded in
// Session.Commands.
const (
	// Connect is the point after the connection was accepted (and, for a
	// server started with StartTLS, after the TLS handshake), before the
	// greeting. A refusal replaces the greeting; RFC 5321 section 3.1 has a
	// server that will not serve answer 554 here.
	Connect = "CONNECT"
	// EndOfData is the point after the message data has ended (the
	// "." line of DATA, or the BDAT … LAST chunk), when the final reply is
	// due. Command.Message holds the message. A refusal refuses it, a 2xx
	// code accepts it with the Response's text, and HangUp closes the
	// connection without the final reply: the client cannot know whether
	// the message was delivered.
	EndOfData = "END-OF-DATA"
)

// Command is one command the server received from the client, as
// Server.Respond sees it and as Session.Commands records it.
type Command struct {
	// Verb is the command's first word, upper-cased ("EHLO", "STARTTLS",
	// "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", or
	// whatever the client sent), or Connect or EndOfData.
	Verb string
	// Arg is the rest of the line after the verb and a space, as received,
	// except for AUTH, where it is only the mechanism: the initial response
	// carries credentials (it is in Session.Encrypted, or in
	// Session.Plaintext if the client leaked it).
	Arg string
	// Address is the address of MAIL FROM or RCPT TO, without the angle
	// brackets and parameters ("" for the null reverse-path <>, for other
	// commands, and when the argument does not parse).
	Address string
	// TLS reports whether the command arrived over TLS.
	TLS bool
	// Session is the session the command belongs to.
	Session *Session
	// Message is the message whose data ended, for EndOfData only.
	Message *Message
}

// Response is what Server.Respond tells the server to do in place of its own
// answer. The zero value keeps the server's own answer.
//
// A Code from 400 to 599 refuses the command, as a real server would: a
// refused RCPT adds no recipient, a refused MAIL opens no transaction, a
// refused EndOfData delivers nothing. 421 also closes the connection after
// the reply, as RFC 5321 section 3.8 has a server do. A 2xx code is allowed
// only at EndOfData, where it accepts the message with that text (a queue
// ID, say). Any other code, or Text or Enhanced without a Code, is a mistake
// in the test: the server answers 451 4.3.0 with a description and logs it.
//
// HangUp closes the connection: after the reply if Code is set, else
// instead of answering. At EndOfData, without a Code, it makes the client's
// delivery uncertain. The close is orderly (TLS close_notify, then TCP FIN)
// and the server reads what the client still sends, so the client reads
// every reply written before it.
//
// Delay waits before answering (the server's own answer or the Response),
// to test a client's timeouts. The wait does not notice a client that gives
// up, but Close ends it at once, so a test never waits longer than its
// client does; a test that sets no Delay never waits.
type Response struct {
	// Code is the reply code, 0 for the server's own answer.
	Code int
	// Enhanced is the RFC 3463 enhanced status code, such as "5.1.1". It is
	// sent only when ENHANCEDSTATUSCODES is offered, after the code on
	// every line.
	Enhanced string
	// Text is the reply text; each line feed starts a new line of a
	// multi-line reply.
	Text string
	// HangUp closes the connection after the reply, or instead of one.
	HangUp bool
	// Delay is how long to wait before answering.
	Delay time.Duration
}

// hook is the internal server's hook: it records what the public API shows
// and applies Server.Respond.
func (s *Server) hook(c *ismtptest.Conn, ic ismtptest.Command) (string, bool) {
	sess := s.session(c.Session())
	verb := ic.Verb
	if verb == "EOD" {
		verb = EndOfData
	}
	if verb == "EHLO" || verb == "HELO" {
		sess.setHello(strings.TrimSpace(ic.Arg))
	}
	cmd := newCommand(sess, ismtptest.Command{Verb: verb, Arg: ic.Arg, TLS: ic.TLS})
	if verb == EndOfData {
		cmd.Message = s.newMessage(sess, c, c.PendingMessage())
	}
	var r Response
	if s.Respond != nil {
		r = s.Respond(cmd)
	}
	if r.Delay > 0 && !s.wait(r.Delay) {
		// Close was called: answer nothing, and close the connection now,
		// before the session reads the client's next command (Close will
		// too, but only after it has begun).
		c.Shutdown()
		return "", true
	}
	if err := r.check(verb); err != nil {
		s.logf("%v", err)
		r = Response{Code: 451, Enhanced: "4.3.0", Text: err.Error()}
	}
	switch {
	case r.Code == 0 && !r.HangUp:
		if cmd.Message != nil {
			s.record(cmd.Message)
		}
		return "", false
	case r.Code == 0:
		c.Hangup()
		return "", true
	}
	if cmd.Message != nil && r.Code < 300 {
		s.record(cmd.Message)
	}
	reply := r.format(s.enhanced)
	if r.HangUp || r.Code == 421 {
		if c.Write(reply) == nil {
			c.Hangup()
		} else {
			c.Close()
		}
		return "", true
	}
	return reply, true
}

// wait waits for d, or until Close; it reports whether d passed.
func (s *Server) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return false
	}
}

// check reports a Response that no server could send at verb.
func (r Response) check(verb string) error {
	switch {
	case r.Code == 0 && (r.Text != "" || r.Enhanced != ""):
		return fmt.Errorf("smtptest: Respond for %s returned Text or Enhanced without a Code", verb)
	case r.Code == 0:
		return nil
	case r.Code >= 400 && r.Code <= 599:
	case r.Code >= 200 && r.Code <= 299 && verb == EndOfData:
	default:
		return fmt.Errorf("smtptest: Respond for %s returned code %d: use 400 to 599 (or 2xx at EndOfData)", verb, r.Code)
	}
	if strings.ContainsAny(r.Text, "\r\x00") {
		return fmt.Errorf("smtptest: Respond for %s returned Text with a CR or NUL; separate lines with \\n", verb)
	}
	if !validEnhanced(r.Enhanced) {
		return fmt.Errorf("smtptest: Respond for %s returned Enhanced %q: want class.subject.detail, such as 5.1.1", verb, r.Enhanced)
	}
	return nil
}

// validEnhanced accepts "" and digits.digits.digits (RFC 3463 section 2;
// the class is not checked against the code, so tests can send a mismatch).
func validEnhanced(e string) bool {
	if e == "" {
		return true
	}
	parts := strings.Split(e, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// format renders the reply, one line per line of Text.
func (r Response) format(enhanced bool) string {
	lines := strings.Split(r.Text, "\n")
	code := strconv.Itoa(r.Code)
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(code)
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		if enhanced && r.Enhanced != "" {
			b.WriteString(r.Enhanced)
			if l != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

// newCommand converts an internal command for the public API.
func newCommand(sess *Session, ic ismtptest.Command) Command {
	c := Command{Verb: ic.Verb, Arg: ic.Arg, TLS: ic.TLS, Session: sess}
	switch ic.Verb {
	case "AUTH":
		c.Arg, _, _ = strings.Cut(ic.Arg, " ")
	case "MAIL":
		c.Address, _, _ = ismtptest.ParsePathArg(ic.Arg, "FROM:")
	case "RCPT":
		c.Address, _, _ = ismtptest.ParsePathArg(ic.Arg, "TO:")
	}
	return c
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
