package smtptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one client connection, as seen by Server.Hook. Write, StartTLS
// and Stall belong to the goroutine serving the connection (the hook);
// Close, Reset, TLS, TLSState and Session may be called from anywhere.
type Conn struct {
	srv  *Server
	sess *Session
	raw  net.Conn
	io   *ioConn

	mu          sync.Mutex
	tlsConn     *tls.Conn
	closeReason error

	// Owned by the serving goroutine.
	cur      net.Conn // io or tlsConn
	r        *bufio.Reader
	greeted  bool // HELO or EHLO since the start or since STARTTLS
	ehlo     bool // the greeting was EHLO
	authed   bool
	authUser string
	tx       *transaction
	pending  *Message // the message being ended, during the EOD hook
}

// transaction is the state of one mail transaction, from MAIL to the end of
// the data or RSET.
type transaction struct {
	from       string
	params     map[string]string
	smtputf8   bool
	body       string
	to         []string
	rcptParams []map[string]string
	bdat       bool // a BDAT chunk was received
	bdatFailed bool // a BDAT got a 4xx/5xx: further BDATs get 503
	data       []byte
	size       int64 // octets received (may exceed len(data) when over the limit)
	chunks     int
}

func newConn(s *Server, nc net.Conn, sess *Session) *Conn {
	ic := &ioConn{Conn: nc, timeout: s.timeout()}
	if !s.ImplicitTLS {
		ic.record = sess.recordPlain
	}
	c := &Conn{srv: s, sess: sess, raw: nc, io: ic, cur: ic}
	c.r = bufio.NewReaderSize(ic, MaxLineLength)
	return c
}

// ioConn wraps the TCP connection: it sets a fresh deadline before every
// read and write, can interrupt a blocked read (Stall), and records what the
// client sent in plaintext.
type ioConn struct {
	net.Conn
	timeout     time.Duration
	record      func([]byte) // nil once TLS begins
	interrupted atomic.Bool
}

func (c *ioConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	// Checked after setting the deadline: interrupt sets the flag before it
	// sets a past deadline, so one of the two always reaches this read.
	if c.interrupted.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.record != nil {
		c.record(p[:n])
	}
	return n, err
}

func (c *ioConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *ioConn) interrupt() {
	c.interrupted.Store(true)
	c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// recordingReader records the decrypted bytes read from a TLS connection.
type recordingReader struct {
	r      io.Reader
	record func([]byte)
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.record(p[:n])
	}
	return n, err
}

// prefixConn hands out bytes already read from the connection before it
// reads more: the TLS handshake starts with whatever the client sent right
// after STARTTLS.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Session returns the record of this connection.
func (c *Conn) Session() *Session { return c.sess }

// Server returns the server the connection belongs to.
func (c *Conn) Server() *Server { return c.srv }

// TLS reports whether TLS is established on the connection.
func (c *Conn) TLS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tlsConn != nil
}

// TLSState returns the state of the established TLS connection, for
// example for channel binding in a SCRAM-PLUS mechanism.
func (c *Conn) TLSState() (tls.ConnectionState, bool) {
	c.mu.Lock()
	tc := c.tlsConn
	c.mu.Unlock()
	if tc == nil {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}

// Write writes raw to the client exactly as given: any reply, several
// replies, partial lines or garbage.
func (c *Conn) Write(raw string) error {
	if raw == "" {
		return nil
	}
	c.srv.logf("S: %q", raw)
	if _, err := io.WriteString(c.cur, raw); err != nil {
		return fmt.Errorf("smtptest: write to %v: %w", c.raw.RemoteAddr(), err)
	}
	return nil
}

// StartTLS performs the server side of the TLS handshake now, typically
// after a hook wrote its own 220 reply to STARTTLS. Bytes the client sent
// after its STARTTLS line are fed to the handshake. On success the session
// state is reset as RFC 3207 section 4.2 requires: the client must send
// EHLO again, and authentication and any transaction are forgotten.
func (c *Conn) StartTLS() error {
	if c.srv.TLSConfig == nil {
		return errors.New("smtptest: StartTLS: the server has no TLSConfig")
	}
	if c.TLS() {
		return errors.New("smtptest: StartTLS: TLS is already active")
	}
	var under net.Conn = c.io
	if n := c.r.Buffered(); n > 0 {
		buf, _ := c.r.Peek(n)
		under = &prefixConn{Conn: c.io, prefix: append([]byte(nil), buf...)}
	}
	c.io.record = nil
	tc := tls.Server(under, c.srv.TLSConfig)
	if err := tc.HandshakeContext(c.srv.ctx); err != nil {
		return fmt.Errorf("smtptest: TLS handshake with %v: %w", c.raw.RemoteAddr(), err)
	}
	c.mu.Lock()
	c.tlsConn = tc
	c.mu.Unlock()
	c.cur = tc
	c.r = bufio.NewReaderSize(&recordingReader{r: tc, record: c.sess.recordEncrypted}, MaxLineLength)
	c.greeted, c.ehlo, c.authed, c.authUser, c.tx = false, false, false, "", nil
	c.sess.setTLS(tc.ConnectionState())
	return nil
}

// Close closes the connection gracefully: a TLS close_notify when TLS is
// up, then a TCP FIN. The session ends with ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closeReason != nil {
		c.mu.Unlock()
		return nil
	}
	c.closeReason = ErrClosed
	tc := c.tlsConn
	c.mu.Unlock()
	if tc != nil {
		return tc.Close()
	}
	return c.raw.Close()
}

// Reset aborts the connection with a TCP RST (SO_LINGER 0, then close). The
// session ends with ErrReset.
func (c *Conn) Reset() error {
	c.mu.Lock()
	if c.closeReason != nil {
		c.mu.Unlock()
		return nil
	}
	c.closeReason = ErrReset
	c.mu.Unlock()
	if tcp, ok := c.raw.(*net.TCPConn); ok {
		if err := tcp.SetLinger(0); err != nil {
			c.raw.Close()
			return fmt.Errorf("smtptest: reset: %w", err)
		}
	}
	return c.raw.Close()
}

// Stall blocks until ctx is done, the client hangs up or the server is
// closed, without reading anything the client sends (unless it sends more
// than MaxLineLength octets, which are then discarded). Hooks use it to
// test the client's timeouts.
func (c *Conn) Stall(ctx context.Context) {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.io.interrupt()
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		c.io.interrupted.Store(false)
	}()
	for {
		if ctx.Err() != nil || c.srv.ctx.Err() != nil {
			return
		}
		n := c.r.Buffered()
		_, err := c.r.Peek(n + 1)
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			c.r.Discard(n)
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
			// The per-read deadline passed: keep stalling.
		default:
			return
		}
	}
}

// Shutdown closes the connection as Server.Close does: the session ends
// with ErrServerClosed. A hook that learns the server is closing calls it so
// that the session cannot go on in the meantime.
func (c *Conn) Shutdown() { c.shutdown() }

// shutdown closes the connection for Server.Close.
func (c *Conn) shutdown() {
	c.mu.Lock()
	if c.closeReason == nil {
		c.closeReason = ErrServerClosed
	}
	c.mu.Unlock()
	c.raw.Close()
}

// closeRaw closes the TCP connection when the session is over.
func (c *Conn) closeRaw() {
	c.raw.Close()
}

// closed returns the reason the connection was closed by the server side,
// nil while it is open.
func (c *Conn) closed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeReason
}

// endErr turns the error that stopped the serving loop into the session's
// error: a close by the server side wins over the I/O error it caused.
func (c *Conn) endErr(err error) error {
	if reason := c.closed(); reason != nil {
		return reason
	}
	return err
}

// errLineTooLong and errBadLine report malformed lines; the loop answers
// them and goes on.
var (
	errLineTooLong = errors.New("line too long")
	errBadLine     = errors.New("line not ended by CRLF or holding a bare CR or NUL")
)

// readLine reads one line ended by CRLF and returns it without the CRLF.
func (c *Conn) readLine() (string, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = c.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return string(line[:len(line)-1]), errBadLine
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
		return string(line), errBadLine
	}
	return string(line), nil
}

// callHook calls the hook, if any, and returns its reply, with a CRLF
// added when it does not end in a line feed.
func (c *Conn) callHook(cmd Command) (handled bool, reply string) {
	if c.srv.Hook == nil {
		return false, ""
	}
	reply, handled = c.srv.Hook(c, cmd)
	if !handled {
		return false, ""
	}
	if reply != "" && reply[len(reply)-1] != '\n' {
		reply += "\r\n"
	}
	return true, reply
}

// serve runs the session and returns the error that ended it (nil after
// QUIT).
func (c *Conn) serve() error {
	if c.srv.ImplicitTLS {
		if err := c.StartTLS(); err != nil {
			return c.endErr(err)
		}
	}
	handled, reply := c.callHook(Command{Verb: "CONNECT", TLS: c.TLS()})
	if reason := c.closed(); reason != nil {
		return reason
	}
	if !handled {
		reply = "220 " + c.srv.hostname() + " ESMTP smtptest\r\n"
	}
	if err := c.Write(reply); err != nil {
		return c.endErr(err)
	}
	for {
		line, err := c.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			c.srv.logf("C: (line longer than %d octets)", MaxLineLength)
			if err := c.reply(500, "5.5.2", "Line too long"); err != nil {
				return c.endErr(err)
			}
			continue
		case errors.Is(err, errBadLine):
			c.srv.logf("C: %q (rejected)", line)
			if err := c.reply(500, "5.5.2", "Syntax error: a line must end with CRLF and hold no other CR or NUL"); err != nil {
				return c.endErr(err)
			}
			continue
		case err != nil:
			return c.endErr(err)
		}
		cmd := parseCommandLine(line)
		if mech, ir, ok := strings.Cut(cmd.Arg, " "); cmd.Verb == "AUTH" && ok {
			c.srv.logf("C: %s %s (initial response, %d octets)", line[:4], mech, len(ir))
		} else {
			c.srv.logf("C: %s", line)
		}
		cmd.TLS = c.TLS()
		c.sess.addCommand(cmd)
		quit, err := c.handle(cmd)
		if err != nil {
			return c.endErr(err)
		}
		if reason := c.closed(); reason != nil {
			return reason
		}
		if quit {
			return nil
		}
	}
}

// handle runs the hook and, unless it handled the command, the default
// behaviour. It reports quit=true after a successful QUIT.
func (c *Conn) handle(cmd Command) (quit bool, err error) {
	handled, reply := c.callHook(cmd)
	if handled {
		if c.closed() != nil {
			return false, nil
		}
		switch cmd.Verb {
		case "DATA":
			if err := c.Write(reply); err != nil {
				return false, err
			}
			if len(reply) >= 3 && reply[:3] == "354" {
				return false, c.readData()
			}
			return false, nil
		case "BDAT":
			if size, _, perr := parseBDAT(cmd.Arg); perr == nil {
				if _, err := io.CopyN(io.Discard, c.r, size); err != nil {
					return false, err
				}
			}
		}
		return false, c.Write(reply)
	}
	return c.dispatch(cmd)
}
