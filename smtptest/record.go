package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"sync"

	ismtptest "github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// Errors that Session.Err returns for sessions the server ended.
var (
	// ErrServerClosed ends the sessions still open when Server.Close is
	// called.
	ErrServerClosed = errors.New("smtptest: server closed")
	// ErrHungUp ends a session the server hung up on: Response.HangUp, a
	// 421 Response, or Server.CloseClientConnections.
	ErrHungUp = errors.New("smtptest: the server hung up")
)

// Message is a message the server accepted: it sent a positive reply to the
// end of its data. A Message is never changed once recorded and must not be
// modified.
type Message struct {
	// From is the MAIL FROM address without angle brackets, "" for the
	// null reverse-path <>.
	From string
	// To lists the recipients the server accepted, in order, without angle
	// brackets.
	To []string
	// MailParams holds the MAIL FROM parameters by upper-case keyword
	// ("SIZE", "BODY", "SMTPUTF8", "REQUIRETLS", "RET", "ENVID", "AUTH")
	// with their values as received (xtext not decoded); a parameter
	// without a value maps to "".
	MailParams map[string]string
	// RcptParams holds the RCPT TO parameters of To[i] ("NOTIFY", "ORCPT")
	// at index i, in the form of MailParams; never nil entries.
	RcptParams []map[string]string

	// Data is the message exactly as received: the data of DATA after
	// undoing the dot-stuffing and without the final ".", or the BDAT
	// chunks joined.
	Data []byte
	// Header is Data's header as net/mail parses it, nil if Data does not
	// start with a valid header. Header.Get returns a field's raw value;
	// decode encoded words with mime.WordDecoder.
	Header mail.Header
	// Body is what follows the header and the empty line after it, nil if
	// the header does not parse.
	Body []byte
	// Chunks is the number of BDAT commands that carried the data, 0 for
	// DATA.
	Chunks int

	// TLS is the state of the TLS connection the message arrived on
	// (version, cipher suite, ServerName as the client sent it in SNI), nil
	// if it arrived in plaintext. The name and meaning are those of
	// net/http's Request.TLS.
	TLS *tls.ConnectionState
	// AuthUser is the user the client authenticated as, "" without AUTH.
	AuthUser string
	// AuthMechanism is the SASL mechanism of that AUTH, "" without AUTH.
	AuthMechanism string
	// HelloName is the name the client gave in its last EHLO or HELO.
	HelloName string
	// Session is the session the message arrived in.
	Session *Session
}

// newMessage builds the public record of an internal message.
func (s *Server) newMessage(sess *Session, c *ismtptest.Conn, im *ismtptest.Message) *Message {
	if im == nil {
		return nil
	}
	m := &Message{
		From:          im.From,
		To:            im.To,
		MailParams:    im.MailParams,
		RcptParams:    im.RcptParams,
		Data:          im.Data,
		Chunks:        im.Chunks,
		AuthUser:      im.AuthUser,
		AuthMechanism: sess.AuthMechanism(),
		HelloName:     sess.HelloName(),
		Session:       sess,
	}
	if st, ok := c.TLSState(); ok {
		m.TLS = &st
	}
	if pm, err := mail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
		if body, err := io.ReadAll(pm.Body); err == nil {
			m.Header, m.Body = pm.Header, body
		}
	}
	return m
}

// record adds an accepted message and wakes WaitMessages. It runs before
// the positive reply is written, so a client that got it finds the message
// in Messages.
func (s *Server) record(m *Message) {
	s.recMu.Lock()
	s.messages = append(s.messages, m)
	close(s.msgCh)
	s.msgCh = make(chan struct{})
	s.recMu.Unlock()
}

// Messages returns the messages the server accepted so far, in order. It
// may be called while the server runs.
func (s *Server) Messages() []*Message {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]*Message(nil), s.messages...)
}

// WaitMessages waits until the server has accepted at least n messages, or
// ctx is done, and returns the messages accepted so far. Tests use it
// instead of sleeping when the client runs in another goroutine.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]*Message, error) {
	if !s.isStarted() {
		return nil, errors.New("smtptest: WaitMessages before Start")
	}
	for {
		s.recMu.Lock()
		msgs, ch := append([]*Message(nil), s.messages...), s.msgCh
		s.recMu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("smtptest: waiting for %d messages, %d arrived: %w", n, len(msgs), ctx.Err())
		}
	}
}

// Sessions returns one Session per connection the server accepted, in the
// order of acceptance, including sessions still running.
func (s *Server) Sessions() []*Session {
	inner := s.innerServer()
	if inner == nil {
		return nil
	}
	is := inner.Sessions()
	out := make([]*Session, len(is))
	for i, in := range is {
		out[i] = s.session(in)
	}
	return out
}

// WaitSessions waits until at least n sessions have ended, or ctx is done,
// and returns Sessions. A session ends when the client quits or hangs up,
// or the server hangs up; only then is everything the client sent
// recorded.
func (s *Server) WaitSessions(ctx context.Context, n int) ([]*Session, error) {
	inner := s.innerServer()
	if inner == nil {
		return nil, errors.New("smtptest: WaitSessions before Start")
	}
	if err := inner.WaitSessions(ctx, n); err != nil {
		return s.Sessions(), err
	}
	return s.Sessions(), nil
}

func (s *Server) isStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// session returns the public Session of an internal one, creating it on
// first use.
func (s *Server) session(in *ismtptest.Session) *Session {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	sess, ok := s.sessions[in]
	if !ok {
		sess = &Session{in: in}
		s.sessions[in] = sess
	}
	return sess
}

// Session records one connection: the commands, every byte the client sent
// in plaintext and inside TLS, the TLS state, the authentication and how it
// ended. Its methods are safe for concurrent use, while the session runs
// and after it ended.
type Session struct {
	in *ismtptest.Session

	mu    sync.Mutex
	hello string
}

func (s *Session) setHello(name string) {
	if name == "" {
		return
	}
	s.mu.Lock()
	s.hello = name
	s.mu.Unlock()
}

// HelloName returns the name the client gave in its last EHLO or HELO, ""
// before one.
func (s *Session) HelloName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hello
}

// Plaintext returns every byte the client sent before TLS began, STARTTLS
// included, and nil for a server started with StartTLS. Everything in it
// crossed the network readable by anyone on the path: a client that keeps
// its promise sends nothing here but EHLO, STARTTLS and perhaps QUIT.
func (s *Session) Plaintext() []byte { return s.in.Plaintext() }

// Encrypted returns every byte the client sent inside TLS, decrypted.
func (s *Session) Encrypted() []byte { return s.in.Encrypted() }

// Commands returns the commands the client sent, in order, each marked with
// whether it came over TLS. SASL response lines and lines the server could
// not read as commands (too long, bare CR or LF) are not commands; they are
// in Plaintext or Encrypted.
func (s *Session) Commands() []Command {
	ic := s.in.Commands()
	out := make([]Command, len(ic))
	for i, c := range ic {
		out[i] = newCommand(s, c)
	}
	return out
}

// TLS returns the state of the session's TLS connection once the handshake
// completed, nil before or without TLS. With TLS 1.3 the server's side of
// the handshake can complete a moment after the client's: look after a
// reply inside TLS, or after the session ended.
func (s *Session) TLS() *tls.ConnectionState {
	st, ok := s.in.TLSState()
	if !ok {
		return nil
	}
	return &st
}

// AuthUser returns the user the client authenticated as, "" without a
// successful AUTH (STARTTLS forgets an earlier one).
func (s *Session) AuthUser() string { return s.in.AuthUser() }

// AuthMechanism returns the SASL mechanism of the successful AUTH, "" if
// none.
func (s *Session) AuthMechanism() string { return s.in.AuthMechanism() }

// Done returns a channel that is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.in.Done() }

// Err returns how the session ended: nil while it runs and after the client
// sent QUIT; io.EOF when the client hung up without QUIT; ErrHungUp or
// ErrServerClosed when the server ended it; otherwise the error that did (a
// TLS handshake error when the client refused the certificate, a timeout).
func (s *Session) Err() error {
	err := s.in.Err()
	switch {
	case errors.Is(err, ismtptest.ErrServerClosed):
		return ErrServerClosed
	case errors.Is(err, ismtptest.ErrClosed), errors.Is(err, ismtptest.ErrReset):
		return ErrHungUp
	}
	return err
}
