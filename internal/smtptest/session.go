package smtptest

import (
	"crypto/tls"
	"errors"
	"sync"
)

// Errors that end a session (see Session.Err) other than I/O errors.
var (
	// ErrServerClosed ends the sessions still open when Server.Close is called.
	ErrServerClosed = errors.New("smtptest: server closed")
	// ErrClosed ends a session whose connection was closed with Conn.Close
	// (usually by a hook).
	ErrClosed = errors.New("smtptest: connection closed by the server (Conn.Close)")
	// ErrReset ends a session whose connection was reset with Conn.Reset.
	ErrReset = errors.New("smtptest: connection reset by the server (Conn.Reset)")
)

// Command is one command line received from the client, as given to
// Server.Hook and recorded by Session.Commands.
type Command struct {
	// Verb is the first word of the line, upper-cased: "EHLO", "HELO",
	// "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP",
	// "QUIT", "VRFY", or whatever else the client sent. Hooks also see two
	// pseudo-verbs that are never recorded in Session.Commands: "CONNECT"
	// before the greeting (a handled reply replaces the greeting) and "EOD"
	// after the end of the message data of DATA or of the last BDAT chunk (a
	// handled reply replaces the final reply).
	Verb string
	// Arg is everything after the verb and one space, as received.
	Arg string
	// Line is the whole line without its CRLF.
	Line string
	// TLS reports whether the line was received over TLS.
	TLS bool
}

// Message is a message the server accepted: the final 250 reply to its data
// was sent.
type Message struct {
	// From is the MAIL FROM address without the angle brackets ("" for the
	// null reverse-path <>).
	From string
	// MailParams holds the MAIL parameters by upper-case keyword ("SIZE",
	// "BODY", "SMTPUTF8", "REQUIRETLS", "RET", "ENVID", "AUTH"), with the
	// values exactly as received (xtext is not decoded); a parameter without
	// a value maps to "".
	MailParams map[string]string
	// To lists the accepted recipients in order, without angle brackets.
	To []string
	// RcptParams holds, for each accepted recipient, its parameters
	// ("NOTIFY", "ORCPT") in the form of MailParams; never nil entries.
	RcptParams []map[string]string
	// Data is the content as received: after undoing dot-stuffing for DATA
	// (without the final ".\r\n"), or the concatenated BDAT chunks.
	Data []byte
	// Chunks is the number of BDAT commands used (0 for DATA).
	Chunks int
	// TLS reports whether the transaction ended over TLS.
	TLS bool
	// AuthUser is the authenticated user at that time, "" if none.
	AuthUser string
}

// Session records one accepted connection. Its methods are safe for
// concurrent use, during the session and after it ended.
type Session struct {
	mu        sync.Mutex
	implicit  bool
	commands  []Command
	plain     []byte
	encrypted []byte
	tlsState  *tls.ConnectionState
	authUser  string
	authMech  string
	err       error
	ended     bool
	done      chan struct{}
}

func newSession(implicit bool) *Session {
	s := &Session{implicit: implicit, done: make(chan struct{})}
	if !implicit {
		s.plain = []byte{}
	}
	return s
}

// Commands returns the command lines received, in order. Lines that were
// rejected before parsing (too long, not ended by CRLF, holding a bare CR or
// NUL) and SASL response lines are not commands and are not listed; they are
// in Plaintext or Encrypted.
func (s *Session) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands...)
}

// Verbs returns the verbs of Commands, a convenient form for assertions.
func (s *Session) Verbs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.commands))
	for i, c := range s.commands {
		out[i] = c.Verb
	}
	return out
}

// Plaintext returns every byte the client sent before TLS began (including
// any bytes it sent after STARTTLS but before the handshake), or nil for an
// implicit-TLS session.
func (s *Session) Plaintext() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plain == nil {
		return nil
	}
	return append([]byte{}, s.plain...)
}

// Encrypted returns every byte the client sent inside TLS, decrypted.
func (s *Session) Encrypted() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.encrypted...)
}

// TLS reports whether a TLS handshake completed on the connection. It
// turns true when the server's side of the handshake completes, which with
// TLS 1.3 can be a moment after the client's side: check it after a reply
// inside TLS or after WaitSessions.
func (s *Session) TLS() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsState != nil
}

// TLSState returns the TLS connection state once a handshake completed.
func (s *Session) TLSState() (tls.ConnectionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *s.tlsState, true
}

// AuthUser returns the authenticated user, "" if none. STARTTLS clears it.
// A mechanism from Server.Mechanisms names the user through an optional
// method Username() string; without it AuthUser stays "" and only
// AuthMechanism tells that AUTH succeeded.
func (s *Session) AuthUser() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authUser
}

// AuthMechanism returns the SASL mechanism of the successful AUTH, "" if
// none.
func (s *Session) AuthMechanism() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authMech
}

// Err returns how the session ended: nil after QUIT, otherwise the error
// that ended it (io.EOF when the client hung up without QUIT, a TLS error,
// a timeout, ErrClosed, ErrReset or ErrServerClosed). It is nil while the
// session is running.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Done returns a channel that is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Ended reports whether the session has ended.
func (s *Session) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

func (s *Session) addCommand(c Command) {
	s.mu.Lock()
	s.commands = append(s.commands, c)
	s.mu.Unlock()
}

func (s *Session) recordPlain(p []byte) {
	s.mu.Lock()
	s.plain = append(s.plain, p...)
	s.mu.Unlock()
}

func (s *Session) recordEncrypted(p []byte) {
	s.mu.Lock()
	s.encrypted = append(s.encrypted, p...)
	s.mu.Unlock()
}

func (s *Session) setTLS(st tls.ConnectionState) {
	s.mu.Lock()
	s.tlsState = &st
	s.authUser, s.authMech = "", ""
	s.mu.Unlock()
}

func (s *Session) setAuth(user, mech string) {
	s.mu.Lock()
	s.authUser, s.authMech = user, mech
	s.mu.Unlock()
}

// finish records the end of the session; it reports false if it had
// already ended.
func (s *Session) finish(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended = true
	s.err = err
	close(s.done)
	return true
}
