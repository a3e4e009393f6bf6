package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// chunkSize is the BDAT chunk size, and so the memory a Client holds for
// message data.
const chunkSize = 64 << 10

// syncWriteLimit is the size up to which a pipelined group is written
// before its replies are read. Larger groups are written by a goroutine
// while the replies are read, so that neither side can block the other
// (RFC 2920 §3.1, STD-26).
const syncWriteLimit = 4 << 10

// A Client is one SMTP session, made by Dialer.Dial. By the time a caller
// holds one, TLS is up and verified (unless an Insecure option said
// otherwise) and AUTH is done. It can send many messages, one after the
// other.
//
// A Client is not safe for use by several goroutines at once. When a call
// fails because of the network, the server's protocol or a reply that ends
// the session (421), the session is closed: every later call returns an
// error that matches ErrClientClosed and the error that ended it, and Err
// returns that error. Before the first write of each call the Client checks,
// without waiting, that the server has not closed the idle session; if it
// has, nothing is written and the error matches ErrIdleClosed.
type Client struct {
	conn     net.Conn // the current connection: a *tls.Conn once TLS is up
	raw      net.Conn // the TCP connection, which never changes
	r        *wire.Reader
	dw       *wire.DataWriter  // message encoder, reused
	cw       *wire.ChunkWriter // BDAT chunker, reused
	ebuf     []byte            // the pipelined envelope, reused
	wbuf     []byte            // small writes assembled, reused
	hbuf     []byte            // the BDAT header, reused
	sbuf     []byte            // for measuring a message's size, reused
	host     string            // host:port, for errors
	ehloName string
	log      *slog.Logger
	greetTO  time.Duration
	cmdTO    time.Duration
	dataTO   time.Duration

	ext        wire.Extensions
	tlsState   *tls.ConnectionState
	serverAuth ServerAuth  // how the server was authenticated
	daneMatch  *dane.Match // with DANE, how the chain matched
	verifiedAs string      // the name the certificate was verified for
	authMech   string

	authHost     string // the Dialer's Host without port, for Auth
	insecureAuth bool   // the Dialer's InsecureAuth

	tx   *txState    // the open mail transaction, nil if none
	data *dataWriter // the open Data writer, nil if none
	err  error       // the error that ended the session; ErrClientClosed after Close or Quit

	// sentEnd is set while the end of a message has been sent and its
	// final reply has not been read: a network failure then leaves the
	// delivery uncertain.
	sentEnd bool
	// flightWritten is set by flight's writer goroutine once the whole
	// group is written.
	flightWritten atomic.Bool
}

// txState is what a MAIL command declared.
type txState struct {
	smtputf8 bool
	reject8  bool // the body must be 7-bit
	binary   bool // BODY=BINARYMIME: no normalisation, BDAT only
	accepted int  // recipients accepted so far
}

func newClient(conn net.Conn, p *plan, d *Dialer) *Client {
	return &Client{
		conn:     conn,
		raw:      conn,
		r:        wire.NewReader(conn),
		host:     p.addr,
		ehloName: p.ehlo,
		log:      d.Logger,
		greetTO:  orDefault(d.GreetingTimeout, DefaultGreetingTimeout),
		cmdTO:    orDefault(d.CommandTimeout, DefaultCommandTimeout),
		dataTO:   orDefault(d.DataTimeout, DefaultDataTimeout),

		authHost:     p.host,
		insecureAuth: d.InsecureAuth,
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

func (c *Client) deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// Which deadline setDeadline sets.
const (
	readDeadline = iota
	writeDeadline
	bothDeadlines
)

// setDeadline sets a deadline d from now (or the context's, if sooner).
// The context is checked again after the deadline is set: a cancellation
// that came just before would otherwise be undone, because the AfterFunc
// of do that puts the deadline in the past may already have run. Either
// the check sees the cancellation, or the AfterFunc runs after it.
func (c *Client) setDeadline(ctx context.Context, which int, d time.Duration) {
	t := c.deadline(ctx, d)
	for {
		switch which {
		case readDeadline:
			c.conn.SetReadDeadline(t)
		case writeDeadline:
			c.conn.SetWriteDeadline(t)
		default:
			c.conn.SetDeadline(t)
		}
		if t == aLongTimeAgo || ctx.Err() == nil {
			return
		}
		t = aLongTimeAgo
	}
}

// interruptOn makes ctx's end interrupt any read or write on the
// connection, through the TCP connection (c.conn changes when TLS starts,
// c.raw does not). The returned function stops it, reporting false if the
// context had already fired.
func (c *Client) interruptOn(ctx context.Context) func() bool {
	raw := c.raw
	return context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
}

// ctxErr returns the context's error, or context.DeadlineExceeded once its
// deadline has passed even if its timer has not fired yet: the connection's
// deadline is set to the context's, and may expire a moment before the
// context reports it.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// usable returns why a call cannot start: the session has ended, or a Data
// writer is open (only the writer and Close may be used then). Nothing is
// sent.
func (c *Client) usable(call string) error {
	if c.err != nil {
		return c.closedErr()
	}
	if c.data != nil {
		return sequenceErr("%s while the message data writer is open; close the writer first (or Close the Client)", call)
	}
	return nil
}

// call runs one public call: it checks that the session is usable, then,
// with the context's cancellation wired to the connection, checks that the
// server has not closed the idle session (so that nothing is written to a
// session that is gone), then runs fn.
func (c *Client) call(ctx context.Context, op string, fn func() error) error {
	if err := c.usable(op); err != nil {
		return err
	}
	return c.do(ctx, op, func() error {
		if err := c.checkIdle(ctx); err != nil {
			return err
		}
		return fn()
	})
}

// do runs fn with the context's cancellation wired to the connection: a
// cancelled context interrupts any read or write at once and ends the
// session. When the context ended, the error wraps its error.
func (c *Client) do(ctx context.Context, op string, fn func() error) error {
	if c.err != nil {
		return c.closedErr()
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the session is as it was.
		return fmt.Errorf("smtpsecure: %s: %s not started: %w", c.host, op, err)
	}
	stop := c.interruptOn(ctx)
	err := fn()
	fired := !stop()
	if !fired && (err == nil || !isIOError(err)) {
		return err
	}
	cause := ctxErr(ctx)
	if cause == nil {
		// A network failure of its own, with the context still running.
		return err
	}
	// The context ended while fn ran: the connection's deadlines are
	// spoiled, so the session cannot go on. What fn completed stands: a
	// message the server accepted must not be reported as failed, or the
	// caller would send it again.
	cerr := &ConnError{Host: c.host, Op: op, Err: cause}
	var uncertain *UncertainDeliveryError
	switch {
	case err == nil:
		c.fail(cerr)
	case errors.As(err, &uncertain):
		uncertain.Err = cause
		c.err = uncertain
		c.fail(uncertain)
		return uncertain
	case isIOError(err):
		var ce *ConnError
		errors.As(err, &ce)
		cerr.Op = ce.Op
		c.err = cerr // the context, not the deadline it set, ended it
		c.fail(cerr)
		return cerr
	default:
		c.fail(err)
	}
	return err
}

// isIOError reports whether err is a network failure rather than a typed
// outcome the caller must see as it is.
func isIOError(err error) bool {
	var ce *ConnError
	var ue *UncertainDeliveryError
	return errors.As(err, &ce) || errors.As(err, &ue)
}

// fail ends the session with err. After a network failure (a timeout, a
// cancellation, a reset) the TCP connection is closed at once: a TLS
// close_notify could block on a peer that reads nothing, for up to five
// seconds. Otherwise the TLS connection is closed, with its close_notify.
func (c *Client) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.tx = nil
	c.data = nil
	c.sentEnd = false
	var ce *ConnError
	var ue *UncertainDeliveryError
	if errors.As(c.err, &ce) || errors.As(c.err, &ue) {
		c.raw.Close()
	}
	c.conn.Close()
}

// ioFail turns a read or write error into the session's final error: a
// *ProtocolError for a broken reply, an *UncertainDeliveryError for a
// network failure after the end of a message was sent and before its final
// reply, a *ConnError for any other network failure.
func (c *Client) ioFail(op string, err error) error {
	var re *wire.ReplyError
	var out error
	switch {
	case errors.As(err, &re), errors.Is(err, wire.ErrLineTooLong), errors.Is(err, wire.ErrTooManyLines), errors.Is(err, wire.ErrMalformedReply):
		out = &ProtocolError{Host: c.host, Op: op, Err: err}
	case c.sentEnd:
		out = &UncertainDeliveryError{Host: c.host, Err: err}
	default:
		out = &ConnError{Host: c.host, Op: op, Err: err}
	}
	c.fail(out)
	return out
}

// write sends raw bytes with a write deadline.
func (c *Client) write(ctx context.Context, op string, p []byte) error {
	c.setDeadline(ctx, writeDeadline, c.cmdTO)
	if _, err := c.conn.Write(p); err != nil {
		return c.ioFail(op, err)
	}
	return nil
}

// writeChunk writes a BDAT header and its chunk: in one write when the
// chunk is small, else in two, so that a large chunk is never copied.
func (c *Client) writeChunk(ctx context.Context, header, chunk []byte) error {
	if len(chunk) <= 16<<10 {
		c.wbuf = append(append(c.wbuf[:0], header...), chunk...)
		return c.write(ctx, "sending BDAT", c.wbuf)
	}
	if err := c.write(ctx, "sending BDAT", header); err != nil {
		return err
	}
	return c.write(ctx, "sending BDAT", chunk)
}

// read reads one reply with a read deadline of timeout.
func (c *Client) read(ctx context.Context, op string, timeout time.Duration) (*wire.Reply, error) {
	c.setDeadline(ctx, readDeadline, timeout)
	rep, err := c.r.ReadReply()
	if err != nil {
		return nil, c.ioFail(op, err)
	}
	c.logReply(ctx, rep)
	return rep, nil
}

// cmd sends one command line and reads its reply. shown is the command as
// it may appear in logs and errors (credentials removed).
func (c *Client) cmd(ctx context.Context, line, shown string) (*wire.Reply, error) {
	c.logCmd(ctx, shown)
	if err := c.write(ctx, "sending "+verbOf(shown), []byte(line+"\r\n")); err != nil {
		return nil, err
	}
	return c.read(ctx, "reading the reply to "+verbOf(shown), c.cmdTO)
}

func verbOf(shown string) string {
	if i := strings.IndexAny(shown, " :"); i > 0 {
		return shown[:i]
	}
	return shown
}

// replyErr makes the *SMTPError for an unwanted reply.
func (c *Client) replyErr(shown string, rep *wire.Reply) *SMTPError {
	e := &SMTPError{Host: c.host, Command: shown, Code: rep.Code, Lines: rep.Lines}
	if c.ext.Has("ENHANCEDSTATUSCODES") {
		if ec, ok := rep.EnhancedCode(); ok {
			e.Enhanced = EnhancedCode{ec.Class, ec.Subject, ec.Detail}
		}
	}
	return e
}

// unexpected is the outcome of a reply other than the one the command
// succeeds with. A 4xx or 5xx reply is the server's refusal, an *SMTPError;
// 421 also says that the server is closing the channel (RFC 5321 §3.8), so
// it ends the session. Any other code is not a reply the command can get
// (RFC 5321 §4.3.2): 354 to MAIL is no invitation to send the message, 334
// to RCPT no request for credentials, 221 to RCPT a server that is leaving.
// It is a *ProtocolError and ends the session, so that nothing more goes to
// a server whose state is unknown.
func (c *Client) unexpected(shown string, rep *wire.Reply) error {
	if rep.Code >= 400 {
		se := c.replyErr(shown, rep)
		if rep.Code == 421 {
			c.fail(se)
		}
		return se
	}
	text := rep.Text()
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 100 {
		text = text[:100] + "..."
	}
	err := &ProtocolError{Host: c.host, Op: "reading the reply to " + verbOf(shown),
		Err: fmt.Errorf("unexpected reply code %d (%q) to %s", rep.Code, text, verbOf(shown))}
	c.fail(err)
	return err
}

// closing reports whether a reply in a pipelined group says that the
// server is closing the channel (421 or 221): no further reply will come.
func closing(rep *wire.Reply) bool { return rep.Code == 421 || rep.Code == 221 }

// flight writes a pipelined group of commands (the concatenation of parts)
// and reads a reply for each of ops. Large groups are written by a
// goroutine while the replies are read, so that a server that answers while
// it reads cannot deadlock with us (STD-26).
// endsMessage says that the group carries the end of a message (BDAT ...
// LAST): once it is written, a network failure leaves the delivery
// uncertain, even before the first reply, for a server may hold back its
// replies to a group (RFC 2920 §3.1).
func (c *Client) flight(ctx context.Context, ops []string, endsMessage bool, parts ...[]byte) ([]*wire.Reply, error) {
	var werr chan error
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	if total <= syncWriteLimit {
		c.wbuf = c.wbuf[:0]
		for _, p := range parts {
			c.wbuf = append(c.wbuf, p...)
		}
		if err := c.write(ctx, "sending "+ops[0], c.wbuf); err != nil {
			return nil, err
		}
		c.sentEnd = endsMessage
	} else {
		werr = make(chan error, 1)
		c.flightWritten.Store(false)
		go func() {
			var err error
			for _, p := range parts {
				for len(p) > 0 && err == nil {
					n := min(len(p), 64<<10)
					c.setDeadline(ctx, writeDeadline, c.cmdTO)
					_, err = c.conn.Write(p[:n])
					p = p[n:]
				}
			}
			c.flightWritten.Store(err == nil)
			werr <- err
		}()
	}
	reps := make([]*wire.Reply, 0, len(ops))
	var rerr error
	for _, op := range ops {
		c.setDeadline(ctx, readDeadline, c.cmdTO)
		rep, err := c.r.ReadReply()
		if err != nil {
			if endsMessage && werr != nil && c.flightWritten.Load() {
				c.sentEnd = true
			}
			rerr = c.ioFail("reading the reply to "+op, err)
			break
		}
		c.logReply(ctx, rep)
		if closing(rep) {
			// The server is leaving: the replies to the rest of the group
			// will not come, and this one is the outcome.
			rerr = c.unexpected(op, rep)
			break
		}
		reps = append(reps, rep)
	}
	if werr != nil {
		if err := <-werr; err != nil && rerr == nil {
			rerr = c.ioFail("sending "+ops[0], err)
		}
		if rerr == nil {
			c.sentEnd = endsMessage
		}
	}
	if rerr != nil {
		return nil, rerr
	}
	return reps, nil
}

// setup reads the greeting, says EHLO and secures the session.
func (c *Client) setup(ctx context.Context, mode Security, tp *tlsPlan, opportunistic bool) error {
	return c.do(ctx, "setting up the session", func() error {
		if mode == SecurityImplicitTLS {
			if err := c.handshake(ctx, tp); err != nil {
				return err
			}
		}
		rep, err := c.read(ctx, "reading the greeting", c.greetTO)
		if err != nil {
			var ce *ConnError
			if mode != SecurityImplicitTLS && errors.As(err, &ce) && ce.Timeout() && ctxErr(ctx) == nil {
				ce.hint = "; no greeting came: the server on this port probably expects implicit TLS (port 465, or Security: SecurityImplicitTLS)"
			}
			return err
		}
		if rep.Code != 220 {
			err := c.unexpected("connection greeting", rep)
			c.quitQuietly(ctx)
			return err
		}
		tlsNeeded := mode == SecuritySTARTTLS && tp != nil
		// Before EHLO the server has nothing to say but its greeting; more
		// would be read as the answer to EHLO (STD-7).
		if n := c.r.Buffered(); n > 0 && tlsNeeded {
			c.fail(nil)
			return c.injection(n, "after the greeting")
		}
		if err := c.hello(ctx); err != nil {
			var se *SMTPError
			if !errors.As(err, &se) {
				return err
			}
			if tlsNeeded && !opportunistic {
				c.quitQuietly(ctx)
				if se.Permanent() {
					return &DowngradeError{Host: c.host, Reason: ReasonSTARTTLSNotOffered, Err: se}
				}
				return se
			}
			if c.tlsState != nil || !se.Permanent() {
				c.quitQuietly(ctx)
				return se
			}
			if err := c.helo(ctx); err != nil {
				c.quitQuietly(ctx)
				return err
			}
			return nil
		}
		if !tlsNeeded {
			return nil
		}
		if !c.ext.Has("STARTTLS") {
			if opportunistic {
				return nil
			}
			c.quitQuietly(ctx)
			return &DowngradeError{Host: c.host, Reason: ReasonSTARTTLSNotOffered}
		}
		return c.startTLS(ctx, tp, opportunistic)
	})
}

// hello sends EHLO and takes the server's extensions from the reply.
func (c *Client) hello(ctx context.Context) error {
	rep, err := c.cmd(ctx, "EHLO "+c.ehloName, "EHLO "+c.ehloName)
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return c.unexpected("EHLO", rep)
	}
	_, c.ext = wire.ParseEHLO(rep)
	return nil
}

// helo is the RFC 821 fallback, used only when plaintext is allowed.
func (c *Client) helo(ctx context.Context) error {
	rep, err := c.cmd(ctx, "HELO "+c.ehloName, "HELO "+c.ehloName)
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return c.unexpected("HELO", rep)
	}
	c.ext = wire.Extensions{}
	return nil
}

// startTLS runs STARTTLS, the handshake, and the second EHLO.
func (c *Client) startTLS(ctx context.Context, tp *tlsPlan, opportunistic bool) error {
	// Anything the server sent that we have not asked for yet would be
	// read as the answer to STARTTLS: that is an injection (STD-7).
	if n := c.r.Buffered(); n > 0 {
		c.fail(nil)
		return c.injection(n, "before STARTTLS was sent")
	}
	rep, err := c.cmd(ctx, "STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		se := c.replyErr("STARTTLS", rep)
		if opportunistic {
			return nil
		}
		c.quitQuietly(ctx)
		return &DowngradeError{Host: c.host, Reason: ReasonSTARTTLSRefused, Err: se}
	}
	// Bytes after the 220 came in plaintext; they must never be taken as if
	// they had come through TLS.
	if n := c.r.Buffered(); n > 0 {
		c.fail(nil)
		return c.injection(n, "after the 220 reply to STARTTLS")
	}
	if err := c.handshake(ctx, tp); err != nil {
		return err
	}
	// RFC 3207 §4.2: forget everything learned before TLS and ask again.
	c.ext = wire.Extensions{}
	return c.hello(ctx)
}

func (c *Client) injection(n int, where string) error {
	err := &DowngradeError{
		Host:   c.host,
		Reason: ReasonSTARTTLSInjection,
		Err:    &ProtocolError{Host: c.host, Op: "STARTTLS", Err: fmt.Errorf("server sent %d unsolicited byte(s) %s", n, where)},
	}
	c.err = err
	return err
}

// handshake runs the TLS client handshake on the connection.
func (c *Client) handshake(ctx context.Context, tp *tlsPlan) error {
	tconn := tls.Client(c.conn, tp.cfg)
	c.setDeadline(ctx, bothDeadlines, c.cmdTO)
	if err := tconn.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return c.ioFail("TLS handshake", err)
		}
		derr := c.handshakeErr(err, tp)
		c.fail(derr)
		return derr
	}
	c.conn.SetDeadline(time.Time{})
	cs := tconn.ConnectionState()
	c.conn = tconn
	c.r.Reset(tconn)
	c.tlsState = &cs
	c.serverAuth = tp.serverAuth()
	c.daneMatch = tp.match
	if c.serverAuth != ServerAuthNone {
		c.verifiedAs = tp.name
	}
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "smtp TLS established",
			slog.String("host", c.host),
			slog.String("version", tls.VersionName(cs.Version)),
			slog.String("cipher", tls.CipherSuiteName(cs.CipherSuite)),
			slog.String("server_auth", c.serverAuth.String()))
	}
	return nil
}

// handshakeErr classifies a failed handshake: a caller's hook or the DANE
// verifier by the mark their errors carry, anything else by the x509 or
// TLS error.
func (c *Client) handshakeErr(err error, tp *tlsPlan) *DowngradeError {
	var pf *policyFailure
	var df *daneFailure
	switch {
	case errors.As(err, &df):
		return &DowngradeError{Host: c.host, Reason: ReasonDANE, Err: df.err}
	case errors.As(err, &pf):
		return &DowngradeError{Host: c.host, Reason: ReasonPolicy, Err: pf.err}
	}
	return &DowngradeError{Host: c.host, Reason: classifyTLSError(err), Err: err}
}

// quitQuietly sends QUIT, waits briefly for the answer and closes. Used on
// the way out of a failed session, or after a message whose outcome is
// settled; its own errors do not matter. Cancelling ctx cuts it short.
func (c *Client) quitQuietly(ctx context.Context) {
	if c.err == nil && ctx.Err() == nil {
		stop := c.interruptOn(ctx)
		c.setDeadline(ctx, bothDeadlines, min(c.cmdTO, 5*time.Second))
		c.logCmd(ctx, "QUIT")
		if _, err := c.conn.Write([]byte("QUIT\r\n")); err == nil {
			c.r.ReadReply()
		}
		if !stop() {
			c.fail(&ConnError{Host: c.host, Op: "QUIT", Err: ctx.Err()})
		}
	}
	c.fail(ErrClientClosed)
}

// abort closes the connection at once.
func (c *Client) abort() {
	c.fail(ErrClientClosed)
}

// Close closes the connection without QUIT. An open transaction, or an
// open Data writer, is abandoned and the server discards the message.
// Later calls return an error matching ErrClientClosed.
func (c *Client) Close() error {
	if c.err != nil {
		c.conn.Close()
		return nil
	}
	c.err = ErrClientClosed
	c.tx = nil
	c.data = nil
	return c.conn.Close()
}

// Quit sends QUIT, waits for the server's answer, and closes the
// connection (with a TLS close_notify when TLS is up). On a session the
// server has already closed while it was idle, there is nothing left to
// say: it closes and returns nil.
func (c *Client) Quit(ctx context.Context) error {
	if err := c.usable("QUIT"); err != nil {
		if c.err != nil {
			c.conn.Close()
		}
		return err
	}
	err := c.do(ctx, "QUIT", func() error {
		if c.idleCause(ctx) != nil {
			// Not even a close_notify: the peer is gone.
			c.raw.Close()
			return nil
		}
		rep, err := c.cmd(ctx, "QUIT", "QUIT")
		if err != nil {
			return err
		}
		if rep.Code != 221 {
			return c.unexpected("QUIT", rep)
		}
		return nil
	})
	c.Close()
	return err
}

// Noop sends NOOP: a cheap way to check that the session is alive.
func (c *Client) Noop(ctx context.Context) error {
	return c.simple(ctx, "NOOP")
}

// Reset sends RSET, abandoning the open mail transaction if any. A server
// must accept RSET (RFC 5321 §4.1.1.5); when it does not, the state of the
// session is unknown and the session is closed.
func (c *Client) Reset(ctx context.Context) error {
	if err := c.usable("RSET"); err != nil {
		return err
	}
	err := c.simple(ctx, "RSET")
	if err == nil {
		c.tx = nil
	} else if c.err == nil {
		if outcome(err) == nil {
			// The context ended before RSET could be sent.
			err = &ConnError{Host: c.host, Op: "RSET", Err: err}
		}
		c.fail(err)
	}
	return err
}

func (c *Client) simple(ctx context.Context, verb string) error {
	return c.call(ctx, verb, func() error {
		rep, err := c.cmd(ctx, verb, verb)
		if err != nil {
			return err
		}
		if rep.Code != 250 {
			return c.unexpected(verb, rep)
		}
		return nil
	})
}

// Extension reports whether the server offered an SMTP extension in its
// EHLO reply after TLS, and the extension's parameters.
func (c *Client) Extension(name string) (bool, string) {
	return c.ext.Has(name), c.ext.Param(name)
}

// Extensions returns the EHLO keywords the server offered after TLS,
// upper-case and sorted.
func (c *Client) Extensions() []string { return c.ext.Keywords() }

// TLSConnectionState returns the TLS state and true, or false when the
// session is not encrypted (only possible with an Insecure option).
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// Verified reports whether the session is TLS with an authenticated server:
// by the Web PKI, or by DANE (see ServerAuth).
func (c *Client) Verified() bool { return c.tlsState != nil && c.serverAuth != ServerAuthNone }

// ServerAuth returns how the server was authenticated: ServerAuthNone
// (plaintext, or TLS with InsecureSkipVerify), ServerAuthWebPKI,
// ServerAuthDANEEE or ServerAuthDANETA.
func (c *Client) ServerAuth() ServerAuth {
	if c.tlsState == nil {
		return ServerAuthNone
	}
	return c.serverAuth
}

// DANEMatch returns the TLSA record that authenticated the server, and
// where in the chain it matched, for a session authenticated by
// Dialer.DANE; nil otherwise.
func (c *Client) DANEMatch() *dane.Match { return c.daneMatch }

// AuthMechanism returns the SASL mechanism the session authenticated with,
// or "".
func (c *Client) AuthMechanism() string { return c.authMech }

func (c *Client) logCmd(ctx context.Context, shown string) {
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "smtp command", slog.String("host", c.host), slog.String("command", sanitize(shown)))
	}
}

func (c *Client) logReply(ctx context.Context, rep *wire.Reply) {
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "smtp reply", slog.String("host", c.host), slog.Int("code", rep.Code), slog.String("text", rep.Text()))
	}
}

// Mail sends MAIL FROM and opens a mail transaction. from may be "" for the
// null reverse-path of bounces. Most callers use Send, which also pipelines.
func (c *Client) Mail(ctx context.Context, from string, opts *MailOptions) error {
	if opts == nil {
		opts = &MailOptions{}
	}
	if err := c.usable("MAIL"); err != nil {
		return err
	}
	if c.tx != nil {
		return sequenceErr("a mail transaction is already open; finish it or call Reset")
	}
	fromAddr, err := parseFrom(from)
	if err != nil {
		return err
	}
	line, tx, err := c.mailCommand(fromAddr, opts, fromAddr.utf8)
	if err != nil {
		return err
	}
	return c.call(ctx, "MAIL", func() error {
		rep, err := c.cmd(ctx, line, line)
		if err != nil {
			return err
		}
		if rep.Code != 250 {
			return c.unexpected(line, rep)
		}
		c.tx = tx
		return nil
	})
}

// Rcpt sends RCPT TO for one recipient of the open transaction. A refusal
// is an *SMTPError; the transaction stays open for other recipients.
func (c *Client) Rcpt(ctx context.Context, to string, opts *RcptOptions) error {
	if err := c.usable("RCPT"); err != nil {
		return err
	}
	if c.tx == nil {
		return sequenceErr("RCPT without a mail transaction; call Mail first")
	}
	addr, err := parseRcpt(to)
	if err != nil {
		return err
	}
	line, err := c.rcptCommand(addr, opts, c.tx)
	if err != nil {
		return err
	}
	return c.call(ctx, "RCPT", func() error {
		rep, err := c.cmd(ctx, line, line)
		if err != nil {
			return err
		}
		if rep.Code != 250 && rep.Code != 251 {
			return c.unexpected(line, rep)
		}
		c.tx.accepted++
		return nil
	})
}

// Data sends DATA and returns a writer for the message. Close on the writer
// ends the data and returns the server's verdict: nil, an *SMTPError
// (refused), or an *UncertainDeliveryError (sent in full, no answer). Data
// needs an open transaction with at least one accepted recipient. Most
// callers use Send instead.
func (c *Client) Data(ctx context.Context) (io.WriteCloser, error) {
	if err := c.usable("DATA"); err != nil {
		return nil, err
	}
	if c.tx == nil || c.tx.accepted == 0 {
		return nil, sequenceErr("DATA needs a mail transaction with an accepted recipient")
	}
	if c.tx.binary {
		return nil, sequenceErr("BODY=BINARYMIME needs BDAT, not DATA; use Send")
	}
	err := c.call(ctx, "DATA", func() error {
		rep, err := c.cmd(ctx, "DATA", "DATA")
		if err != nil {
			return err
		}
		if rep.Code != 354 {
			c.tx = nil
			return c.unexpected("DATA", rep)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.startData(ctx)
	c.data = &dataWriter{c: c, ctx: ctx}
	return c.data, nil
}

// dataWriter is the writer Data returns.
type dataWriter struct {
	c      *Client
	ctx    context.Context
	closed bool
	err    error
}

// Write encodes p and sends it as message data.
func (w *dataWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, sequenceErr("write after Close")
	}
	var n int
	err := w.c.do(w.ctx, "sending message data", func() error {
		var err error
		if n, err = w.c.dw.Write(p); err != nil {
			return w.c.writerErr(err)
		}
		return nil
	})
	w.err = err
	return n, err
}

// Close ends the data and returns the server's verdict.
func (w *dataWriter) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	err := w.c.do(w.ctx, "ending message data", func() error {
		_, err := w.c.endData(w.ctx)
		return err
	})
	if w.c.data == w {
		w.c.data = nil
	}
	return err
}

// startData prepares the encoder for a DATA body. The encoder buffers, so
// it writes straight to the connection.
func (c *Client) startData(ctx context.Context) {
	c.resetEncoder(deadlineWriter{c, ctx}, wire.DataOptions{DotStuff: true, Reject8Bit: c.tx.reject8})
}

func (c *Client) resetEncoder(w io.Writer, opts wire.DataOptions) {
	if c.dw == nil {
		c.dw = wire.NewDataWriter(w, opts)
	} else {
		c.dw.Reset(w, opts)
	}
}

// endData writes the end-of-data marker and reads the final reply.
func (c *Client) endData(ctx context.Context) (*wire.Reply, error) {
	// Close writes the marker; if that fails, it did not leave in full,
	// so nothing was delivered.
	if err := c.dw.Close(); err != nil {
		return nil, c.writerErr(err)
	}
	c.logCmd(ctx, "<end of data>")
	return c.finalReply(ctx)
}

// finalReply reads the reply to the end of a message. A network failure
// while reading it leaves the outcome unknown: the server may have taken
// the message (an *UncertainDeliveryError, see ioFail).
func (c *Client) finalReply(ctx context.Context) (*wire.Reply, error) {
	c.sentEnd = true
	rep, err := c.read(ctx, "reading the reply to the end of data", c.dataTO)
	c.sentEnd = false
	c.tx = nil
	if err != nil {
		return nil, err
	}
	if rep.Code != 250 {
		return rep, c.unexpected("end of data", rep)
	}
	return rep, nil
}

// deadlineWriter gives every write to the connection a fresh deadline, so
// a long message is bounded per write, not as a whole.
type deadlineWriter struct {
	c   *Client
	ctx context.Context
}

// Write writes p with a fresh write deadline.
func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.setDeadline(w.ctx, writeDeadline, w.c.cmdTO)
	return w.c.conn.Write(p)
}

// writerErr classifies an error that came out of the data encoder or the
// connection while sending message data. 8-bit data for a 7-bit transaction
// ends the session here, without the end-of-data marker, so nothing is
// delivered.
func (c *Client) writerErr(err error) error {
	if errors.Is(err, wire.Err8Bit) {
		xerr := &ExtensionError{Host: c.host, Extension: "8BITMIME", Why: "the message has 8-bit data"}
		c.fail(xerr)
		return xerr
	}
	if out := outcome(err); out != nil {
		return out
	}
	if c.err != nil {
		return c.err
	}
	return c.ioFail("sending message data", err)
}

// outcome returns the package's typed error inside err (which may come
// wrapped from the data encoder or the chunker), or nil.
func outcome(err error) error {
	var (
		ue *UncertainDeliveryError
		re *RecipientsError
		pe *ProtocolError
		ce *ConnError
		xe *ExtensionError
		se *SMTPError
	)
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.As(err, &re):
		return re
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &xe):
		return xe
	case errors.As(err, &se):
		return se
	}
	return nil
}

// writeFailure tags an error from the writing side of io.Copy, to tell it
// from an error of the caller's reader.
type writeFailure struct{ err error }

// Error returns the wrapped error's text.
func (w writeFailure) Error() string { return w.err.Error() }

// Unwrap returns the wrapped error.
func (w writeFailure) Unwrap() error { return w.err }

type taggedWriter struct{ w io.Writer }

// Write writes p and tags a failure as the writer's.
func (t taggedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = writeFailure{err}
	}
	return n, err
}

// stream copies the message into dst. A failure of the caller's reader
// closes the session without the end-of-data marker, so the server discards
// what it got.
func (c *Client) stream(dst io.Writer, msg io.Reader) error {
	_, err := io.Copy(taggedWriter{dst}, msg)
	if err == nil {
		return nil
	}
	var wf writeFailure
	if errors.As(err, &wf) {
		return c.writerErr(wf.err)
	}
	rerr := &MessageError{Host: c.host, Err: err}
	c.fail(rerr)
	return rerr
}

// Send sends one message: MAIL FROM, RCPT TO for every recipient, and the
// data, pipelined when the server offers PIPELINING and with BDAT when it
// offers CHUNKING. The message is streamed from msg, never held whole; line
// endings are normalised to CRLF.
//
// A nil error means that the server accepted the message for at least one
// recipient: the result lists them in Accepted, and the recipients it
// refused in Rejected (a partial delivery is a result, not an error). With
// env.AllOrNothing the message is sent only if every recipient is
// accepted.
//
// A non-nil error means that the message was delivered to nobody: a
// *RecipientsError when the server refused every recipient (or one, with
// AllOrNothing), or any other error of this package, with a nil result.
// The one exception is an *UncertainDeliveryError: the connection failed
// after the whole message was sent and before the server's verdict, so the
// recipients it names may have received it. After a failed transaction on
// a healthy session Send resets it (RSET), so that the Client can send the
// next message.
func (c *Client) Send(ctx context.Context, env *Envelope, msg io.Reader) (*SendResult, error) {
	from, rcpts, needUTF8, err := env.parse()
	if err != nil {
		return nil, err
	}
	if err := c.usable("Send"); err != nil {
		return nil, err
	}
	if c.tx != nil {
		return nil, sequenceErr("a mail transaction is already open; finish it or call Reset")
	}
	opts := env.MailOptions
	if opts.Size == 0 {
		// RFC 1870: never declare less than will be sent.
		opts.Size = c.messageSize(msg, opts.Body == BodyBinaryMIME)
	}
	mailLine, tx, err := c.mailCommand(from, &opts, needUTF8)
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(rcpts))
	for i, r := range rcpts {
		ro := env.rcptOptions(env.To[i])
		if lines[i], err = c.rcptCommand(r, &ro, tx); err != nil {
			return nil, err
		}
	}
	s := &sendOp{c: c, env: env, tx: tx, mailLine: mailLine, rcptLines: lines, res: &SendResult{}}
	err = c.call(ctx, "sending a message", func() error { return s.run(ctx, msg) })
	if err != nil && c.err == nil && c.tx != nil {
		// The transaction failed but the session is fine: clear it so the
		// next message starts clean (STD-27, STD-30). If it cannot be, Reset
		// closes the session rather than leave the transaction open.
		c.Reset(ctx)
	}
	if err != nil {
		var ue *UncertainDeliveryError
		if errors.As(err, &ue) {
			ue.Recipients = s.res.Accepted
		}
		return nil, err
	}
	return s.res, nil
}

// sendOp is one message on its way.
type sendOp struct {
	c         *Client
	env       *Envelope
	tx        *txState
	mailLine  string
	rcptLines []string
	res       *SendResult
}

func (s *sendOp) run(ctx context.Context, msg io.Reader) error {
	c := s.c
	pipelining := c.ext.Has("PIPELINING")
	bdat := c.ext.Has("CHUNKING")
	switch {
	case !pipelining:
		if err := s.envelopeOneByOne(ctx); err != nil {
			return err
		}
	case s.env.AllOrNothing && len(s.rcptLines) > 1:
		// Envelope first; the data only once every recipient is accepted.
		// (With one recipient both semantics are the same, and the
		// pipelined path below saves the round trip.)
		if err := s.envelopePipelined(ctx); err != nil {
			return err
		}
	case bdat:
		return s.sendBDAT(ctx, msg, true)
	default:
		return s.sendDATA(ctx, msg, true)
	}
	if bdat {
		return s.sendBDAT(ctx, msg, false)
	}
	return s.sendDATA(ctx, msg, false)
}

// envelopePayload writes MAIL, the RCPTs and extra into the client's
// reusable envelope buffer.
func (s *sendOp) envelopePayload(extra []byte) []byte {
	b := s.c.ebuf[:0]
	b = append(b, s.mailLine...)
	b = append(b, "\r\n"...)
	for _, l := range s.rcptLines {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	b = append(b, extra...)
	s.c.ebuf = b
	return b
}

func (s *sendOp) envelopeOps() []string {
	ops := make([]string, 0, len(s.rcptLines)+2)
	ops = append(ops, "MAIL")
	for range s.rcptLines {
		ops = append(ops, "RCPT")
	}
	return ops
}

func (s *sendOp) logEnvelope(ctx context.Context) {
	s.c.logCmd(ctx, s.mailLine)
	for _, l := range s.rcptLines {
		s.c.logCmd(ctx, l)
	}
}

// envelopeOneByOne sends MAIL and each RCPT, waiting for each reply.
func (s *sendOp) envelopeOneByOne(ctx context.Context) error {
	c := s.c
	rep, err := c.cmd(ctx, s.mailLine, s.mailLine)
	if err != nil {
		return err
	}
	reps := []*wire.Reply{rep}
	if rep.Code == 250 {
		c.tx = s.tx
		for _, l := range s.rcptLines {
			rep, err := c.cmd(ctx, l, l)
			if err != nil {
				return err
			}
			if rep.Code != 250 && rep.Code != 251 && (rep.Code < 400 || rep.Code == 421) {
				// Not a refusal of this recipient: the session is over,
				// and this reply, not a failure of the next RCPT, is the
				// outcome.
				return c.unexpected(l, rep)
			}
			reps = append(reps, rep)
		}
	}
	return s.judgeEnvelope(reps)
}

// envelopePipelined sends MAIL and all RCPTs in one group.
func (s *sendOp) envelopePipelined(ctx context.Context) error {
	s.logEnvelope(ctx)
	reps, err := s.c.flight(ctx, s.envelopeOps(), false, s.envelopePayload(nil))
	if err != nil {
		return err
	}
	return s.judgeEnvelope(reps)
}

// judgeEnvelope records the replies to MAIL and the RCPTs (STD-25). It
// fails when MAIL was refused, when no recipient was accepted, or when some
// were refused and the envelope says all or nothing.
func (s *sendOp) judgeEnvelope(reps []*wire.Reply) error {
	c := s.c
	if reps[0].Code != 250 {
		c.tx = nil
		return c.unexpected(s.mailLine, reps[0])
	}
	c.tx = s.tx
	for i, rep := range reps[1:] {
		to := s.env.To[i]
		if rep.Code == 250 || rep.Code == 251 {
			s.res.Accepted = append(s.res.Accepted, to)
			s.tx.accepted++
			continue
		}
		if rep.Code < 400 || rep.Code == 421 {
			// Not a refusal of this recipient: the session is over.
			return c.unexpected(s.rcptLines[i], rep)
		}
		s.res.Rejected = append(s.res.Rejected, &RecipientError{Recipient: to, Err: c.replyErr(s.rcptLines[i], rep)})
	}
	if len(s.res.Accepted) == 0 || (s.env.AllOrNothing && len(s.res.Rejected) > 0) {
		return &RecipientsError{Host: c.host, Rejected: s.res.Rejected}
	}
	return nil
}

// delivered records the server's acceptance of the message.
func (s *sendOp) delivered(rep *wire.Reply) error {
	s.res.Reply = rep.Text()
	return nil
}

// sendDATA sends the data with DATA; with withEnvelope, MAIL and the RCPTs
// go in the same group as DATA (RFC 2920 §3.1).
func (s *sendOp) sendDATA(ctx context.Context, msg io.Reader, withEnvelope bool) error {
	c := s.c
	var dataRep *wire.Reply
	if withEnvelope {
		s.logEnvelope(ctx)
		c.logCmd(ctx, "DATA")
		reps, err := c.flight(ctx, append(s.envelopeOps(), "DATA"), false, s.envelopePayload(dataCommand))
		if err != nil {
			return err
		}
		dataRep = reps[len(reps)-1]
		if err := s.judgeEnvelope(reps[:len(reps)-1]); err != nil {
			if c.err == nil && dataRep.Code == 354 {
				// A server that says 354 without a valid recipient gets an
				// empty message, which it must refuse (RFC 2920 §3.1).
				c.logCmd(ctx, "<end of data>")
				if werr := c.write(ctx, "ending empty data", []byte(".\r\n")); werr != nil {
					return werr
				}
				if _, rerr := c.read(ctx, "reading the reply to the end of data", c.dataTO); rerr != nil {
					return rerr
				}
				c.tx = nil
			}
			return err
		}
	} else {
		var err error
		if dataRep, err = c.cmd(ctx, "DATA", "DATA"); err != nil {
			return err
		}
	}
	if dataRep.Code != 354 {
		return c.unexpected("DATA", dataRep)
	}
	c.startData(ctx)
	if err := c.stream(c.dw, msg); err != nil {
		return err
	}
	rep, err := c.endData(ctx)
	if err != nil {
		return err
	}
	return s.delivered(rep)
}

var dataCommand = []byte("DATA\r\n")

// maxChunksInFlight bounds the BDAT chunks whose replies are outstanding
// when the server offers PIPELINING (RFC 3030 §4.2); without it each chunk
// waits for its reply. Replies are a few dozen octets, so the server can
// always write them and no deadlock is possible (STD-26), while the data
// flows at the speed of the connection instead of a chunk per round trip.
const maxChunksInFlight = 8

// sendBDAT sends the data in BDAT chunks (RFC 3030, STD-28). With
// withEnvelope, MAIL and the RCPTs go in the same write as the first chunk.
func (s *sendOp) sendBDAT(ctx context.Context, msg io.Reader, withEnvelope bool) error {
	c := s.c
	pending := 0 // chunks whose replies are outstanding
	inFlight := 1
	if c.ext.Has("PIPELINING") {
		inFlight = maxChunksInFlight
	}
	var final *wire.Reply
	// drain reads the outstanding replies after a failure, so that the
	// reply to the next command (RSET) is read as such; the first refusal
	// is the error.
	drain := func(err error) error {
		// Once the session has ended (a 421, a protocol error) no more
		// replies can be read.
		for ; pending > 0 && c.err == nil; pending-- {
			rep, rerr := c.read(ctx, "reading the reply to BDAT", c.cmdTO)
			if rerr != nil {
				return rerr
			}
			if err == nil && rep.Code != 250 {
				// A refused chunk fails the transaction (RFC 3030 §2):
				// whatever follows, nothing is delivered.
				c.sentEnd = false
				err = c.unexpected("BDAT", rep)
			}
		}
		return err
	}
	send := func(chunk []byte, last bool) error {
		header := append(append(c.hbuf[:0], "BDAT "...), strconv.Itoa(len(chunk))...)
		if last {
			header = append(header, " LAST"...)
		}
		c.hbuf = header
		if withEnvelope {
			withEnvelope = false
			s.logEnvelope(ctx)
			if c.log != nil {
				c.logCmd(ctx, string(header))
			}
			reps, err := c.flight(ctx, s.envelopeOps(), last, s.envelopePayload(append(header, "\r\n"...)), chunk)
			if err != nil {
				return err
			}
			pending++
			if err := s.judgeEnvelope(reps); err != nil {
				// The chunk went out with the envelope: read its (refusing)
				// answer before giving up on the transaction, which cannot
				// deliver anything now.
				c.sentEnd = false
				return drain(err)
			}
		} else {
			if c.log != nil {
				c.logCmd(ctx, string(header))
			}
			if err := c.writeChunk(ctx, append(header, "\r\n"...), chunk); err != nil {
				return err
			}
			c.sentEnd = last
			pending++
		}
		if last {
			pending-- // the LAST chunk's reply is the final reply
			if err := drain(nil); err != nil {
				// STD-30: a refused chunk ends the transaction.
				if c.err == nil {
					if _, ferr := c.read(ctx, "reading the reply to BDAT", c.dataTO); ferr != nil {
						return ferr
					}
				}
				return err
			}
			var err error
			final, err = c.finalReply(ctx)
			return err
		}
		if pending >= inFlight {
			rep, err := c.read(ctx, "reading the reply to BDAT", c.cmdTO)
			if err != nil {
				return err
			}
			pending--
			if rep.Code != 250 {
				return drain(c.unexpected("BDAT", rep))
			}
		}
		return nil
	}
	if c.cw == nil {
		c.cw = wire.NewChunkWriter(chunkSize, send)
	} else {
		c.cw.Reset(send)
	}
	var dst io.Writer = c.cw
	if !s.tx.binary {
		c.resetEncoder(c.cw, wire.DataOptions{Reject8Bit: s.tx.reject8})
		dst = c.dw
	}
	if err := c.stream(dst, msg); err != nil {
		return err
	}
	if !s.tx.binary {
		if err := c.dw.Close(); err != nil {
			return c.writerErr(err)
		}
	}
	if err := c.cw.Close(); err != nil {
		return c.writerErr(err)
	}
	return s.delivered(final)
}

// SendResult says what the server did with a message it accepted.
type SendResult struct {
	// Accepted lists the recipients the message was delivered to, in the
	// order given; never empty.
	Accepted []string
	// Rejected lists the recipients the server refused: the message was
	// not delivered to them.
	Rejected []*RecipientError
	// Reply is the server's text after the end of the message (it often
	// carries the queue ID).
	Reply string
}

// validate is the part of Envelope checking that needs no server.
func (env *Envelope) validate() error {
	_, _, _, err := env.parse()
	return err
}

func (env *Envelope) rcptOptions(to string) RcptOptions {
	ro := RcptOptions{Notify: env.Notify}
	if o, ok := env.OriginalRecipients[to]; ok {
		ro.OriginalRecipient = o
	}
	return ro
}
