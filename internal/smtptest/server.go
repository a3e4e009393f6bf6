package smtptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultHostname is the greeting and EHLO domain of a Server whose Hostname
// is empty.
const DefaultHostname = "mx.test.example"

// MaxLineLength is the longest command or SASL response line the server
// reads, CRLF included. Longer lines are answered with 500 5.5.2 and
// discarded.
const MaxLineLength = 64 << 10

// MaxRecipients is the number of recipients accepted in one transaction;
// more get 452 4.5.3 (RFC 5321 section 4.5.3.1.8 asks for at least 100).
const MaxRecipients = 1000

// maxDataCap bounds the memory one message may take when MaxMessageSize is
// zero.
const maxDataCap = 256 << 20

// DefaultTimeout is the read and write deadline of a Server whose Timeout is
// zero.
const DefaultTimeout = 30 * time.Second

// SASLServer is the server side of one SASL exchange (RFC 4422), as used by
// AUTH. The server-side mechanisms of github.com/emersion/go-sasl satisfy it.
type SASLServer interface {
	// Next gets the client's response (the initial response first, nil if
	// none) and returns the next challenge, or done=true when the exchange
	// succeeded; an error fails it (535 5.7.8). A challenge returned with
	// done=true is sent as a last 334 challenge ("additional data with
	// success", RFC 4954 section 4) and the client must answer it with an
	// empty line before it gets 235.
	Next(response []byte) (challenge []byte, done bool, err error)
}

// Server is a scriptable SMTP server for tests. Configure the exported
// fields, then call Start; do not change the fields afterwards. Without a
// Hook it behaves as a small but correct RFC 5321 server with the
// extensions listed in Extensions and TLSExtensions; a Hook can take over
// any command to misbehave in a controlled way.
//
// Every connection is recorded as a Session: the commands, every byte the
// client sent before and after TLS, and how the session ended. Messages
// lists the messages accepted.
type Server struct {
	// Hostname is the domain in the greeting and the EHLO reply; empty means
	// DefaultHostname.
	Hostname string
	// TLSConfig is the server's TLS configuration. With nil, STARTTLS is not
	// offered and ImplicitTLS is impossible. The server never modifies it.
	TLSConfig *tls.Config
	// ImplicitTLS makes the server start TLS right after accepting a
	// connection (port 465 style); the greeting comes inside TLS.
	ImplicitTLS bool
	// Extensions are the EHLO reply lines (after the first) before TLS, for
	// example {"PIPELINING", "SIZE 10240000", "8BITMIME", "AUTH PLAIN LOGIN"}.
	// "STARTTLS" is added when TLSConfig != nil, ImplicitTLS is false and the
	// connection is not yet in TLS. ENHANCEDSTATUSCODES in the current list
	// makes the server put RFC 3463 codes in its replies.
	Extensions []string
	// TLSExtensions are the EHLO lines after STARTTLS and with ImplicitTLS.
	// nil means the same as Extensions, without any "STARTTLS" line; to
	// advertise STARTTLS inside TLS list it here explicitly.
	TLSExtensions []string
	// Users maps user names to passwords (PLAIN, LOGIN, CRAM-MD5, and SCRAM
	// mechanisms a test plugs in) or bearer tokens (XOAUTH2, OAUTHBEARER).
	Users map[string]string
	// Mechanisms adds or replaces SASL mechanisms by upper-case name; a nil
	// function disables a built-in one. A mechanism is only usable when an
	// AUTH line of the current extension list names it. The built-ins are
	// PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER.
	Mechanisms map[string]func(c *Conn) SASLServer
	// Hook, if set, is called for every command line received and for the
	// pseudo-commands CONNECT and EOD (see Command.Verb). When it returns
	// handled=true the server writes reply (when not ending in a line feed,
	// a CRLF is added; "" writes nothing) and skips its default handling of
	// the command. The hook may also use Conn.Write, StartTLS, Close, Reset
	// and Stall. For a handled DATA whose reply starts with "354" the server
	// still reads the message data (and calls the hook with EOD); for a
	// handled BDAT with a valid chunk size it still reads and discards the
	// chunk before writing the reply, so the stream stays in sync.
	Hook func(c *Conn, cmd Command) (reply string, handled bool)
	// MaxMessageSize rejects larger messages with 552 5.3.4 (also a larger
	// MAIL SIZE= parameter); 0 means no limit other than a 256 MiB safety
	// bound.
	MaxMessageSize int64
	// RequireTLS answers MAIL with 530 5.7.0 and AUTH with 538 5.7.11
	// before TLS.
	RequireTLS bool
	// RequireAuth answers MAIL with 530 5.7.0 before a successful AUTH.
	RequireAuth bool
	// Timeout is the deadline of every read and write on a connection; 0
	// means DefaultTimeout.
	Timeout time.Duration
	// Logf, if set, logs each line received and sent (SASL data is not
	// logged). Typically t.Logf; call Close before the test returns.
	Logf func(format string, args ...any)

	mu       sync.Mutex
	started  bool
	closed   bool
	ln       net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	conns    map[*Conn]struct{}
	sessions []*Session
	messages []*Message
	ended    int
	endedCh  chan struct{}
	wg       sync.WaitGroup
}

// Start listens on 127.0.0.1 with a port chosen by the system and serves
// connections in the background until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("smtptest: Start called twice")
	}
	if s.ImplicitTLS && s.TLSConfig == nil {
		return errors.New("smtptest: ImplicitTLS needs a TLSConfig")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("smtptest: listen on 127.0.0.1: %w", err)
	}
	s.started = true
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.conns = make(map[*Conn]struct{})
	s.endedCh = make(chan struct{})
	s.wg.Add(1)
	go s.acceptLoop(ln)
	return nil
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (out of file descriptors): back off
			// briefly, as net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.logf("smtptest: accept: %v; retrying in %v", err, delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		sess := newSession(s.ImplicitTLS)
		c := newConn(s, nc, sess)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.sessions = append(s.sessions, sess)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			err := c.serve()
			c.closeRaw()
			s.mu.Lock()
			delete(s.conns, c)
			if sess.finish(err) {
				s.ended++
				close(s.endedCh)
				s.endedCh = make(chan struct{})
			}
			s.mu.Unlock()
			if err != nil {
				s.logf("smtptest: session from %v ended: %v", nc.RemoteAddr(), err)
			}
		}()
	}
}

// Addr returns the listening address, "127.0.0.1:port" ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Port returns the listening port (0 before Start).
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return 0
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

// Close stops listening, closes every connection (their sessions end with
// ErrServerClosed) and waits until every goroutine of the server, hooks
// included, has returned. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.cancel()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.shutdown()
	}
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtptest: close listener: %w", err)
	}
	return nil
}

// Sessions returns one Session per accepted connection, in the order of
// acceptance.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Session(nil), s.sessions...)
}

// Messages returns the messages accepted (final 250 sent), in order. The
// messages must not be modified.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.messages...)
}

// WaitSessions waits until at least n sessions have ended, or ctx is done.
// Tests use it instead of sleeping before they look at Sessions.
func (s *Server) WaitSessions(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		if !s.started {
			s.mu.Unlock()
			return errors.New("smtptest: WaitSessions before Start")
		}
		ended, ch := s.ended, s.endedCh
		s.mu.Unlock()
		if ended >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("smtptest: %d of %d sessions ended: %w", ended, n, ctx.Err())
		}
	}
}

func (s *Server) addMessage(m *Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
}

func (s *Server) hostname() string {
	if s.Hostname == "" {
		return DefaultHostname
	}
	return s.Hostname
}

func (s *Server) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
