package smtpsecure

import (
	"context"
	"errors"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

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
	if ctx.Done() == nil {
		// A context that can never end (context.Background) needs no
		// watch, and costs none.
		return neverFired
	}
	raw := c.raw
	return context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
}

// neverFired is the stop function of a context that cannot end.
func neverFired() bool { return true }

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
	return c.run(ctx, op, true, fn)
}

// do runs fn with the context's cancellation wired to the connection: a
// cancelled context interrupts any read or write at once and ends the
// session. When the context ended, the error wraps its error.
func (c *Client) do(ctx context.Context, op string, fn func() error) error {
	return c.run(ctx, op, false, fn)
}

// run is do, with the idle check first when checkIdle is set.
func (c *Client) run(ctx context.Context, op string, checkIdle bool, fn func() error) error {
	if c.err != nil {
		return c.closedErr()
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the session is as it was.
		return &ConnError{Host: c.host, Op: op, Err: err, notStarted: true,
			hint: "; not started: nothing was sent, and the session is as it was (Client.Err tells whether it is usable)"}
	}
	stop := c.interruptOn(ctx)
	var err error
	if checkIdle {
		err = c.checkIdle(ctx)
	}
	if err == nil {
		err = fn()
	}
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
	if c.err != ErrClientClosed && isIOError(c.err) {
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

// writeChunk writes a BDAT header, its chunk and a trailer (QUIT after the
// last chunk, or nothing): in one write when the chunk is small, else
// each as it is, so that a large chunk is never copied.
func (c *Client) writeChunk(ctx context.Context, header, chunk, trailer []byte) error {
	if len(chunk) <= 16<<10 {
		c.wbuf = append(append(append(sized(c.wbuf, len(header)+len(chunk)+len(trailer)), header...), chunk...), trailer...)
		return c.write(ctx, "sending BDAT", c.wbuf)
	}
	if err := c.write(ctx, "sending BDAT", header); err != nil {
		return err
	}
	if err := c.write(ctx, "sending BDAT", chunk); err != nil || len(trailer) == 0 {
		return err
	}
	return c.write(ctx, "sending BDAT", trailer)
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
