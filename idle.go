package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// idleWait bounds how long the idle check waits for what has already
// reached the socket: the rest of a reply the server sent unasked, or the
// decryption of TLS records that turn out to carry no data (a late session
// ticket). It is spent only when bytes arrived while the session was idle.
const idleWait = 250 * time.Millisecond

// checkIdle makes sure, before the first write of a call, that the server
// has not closed the session while it was idle, without waiting for
// anything: a read with a deadline already passed sees what the reader and
// the TLS connection hold, and a look at the socket (socketPeeker) sees what
// has arrived. If the server hung up, or sent something unasked (a 421
// before closing), nothing is written: the session ends with a *ConnError
// that matches ErrIdleClosed, and a new session may be tried.
func (c *Client) checkIdle(ctx context.Context) error {
	cause := c.idleCause(ctx)
	if cause == nil {
		return nil
	}
	err := &ConnError{Host: c.host, Op: "checking the idle session", Err: &idleClosedError{cause: cause}}
	c.err = err
	c.fail(err)
	return err
}

// idleCause returns why the idle session cannot be used, or nil.
func (c *Client) idleCause(ctx context.Context) error {
	// What the reader or the TLS connection already holds.
	c.conn.SetReadDeadline(aLongTimeAgo)
	n, err := c.r.Poll()
	if n > 0 {
		return c.unasked(ctx)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// What has reached the socket. Looking needs a deadline that has not
	// passed; if the context ends meanwhile, the look sees nothing and the
	// write that follows fails with the context's error.
	c.setDeadline(ctx, readDeadline, c.cmdTO)
	if !c.peekerOK {
		// Made at the first check: a session that never waits idle (one
		// message, then QUIT) never needs it.
		c.peeker, c.peekerOK = newPeeker(c.raw), true
	}
	p := c.peeker.peek()
	switch p.state {
	case peekEOF:
		return io.EOF
	case peekError:
		return p.err
	case peekData:
		if c.conn == c.raw {
			return c.unasked(ctx)
		}
		// Under TLS the bytes may be records without data: decrypt what
		// came, waiting no longer than it takes to read it.
		c.setDeadline(ctx, readDeadline, min(c.cmdTO, idleWait))
		n, err := c.r.Poll()
		if n > 0 {
			return c.unasked(ctx)
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

// unasked reads what the server sent while the session was idle: a reply
// such as 421 is the cause, as an *SMTPError; anything else is a
// *ProtocolError.
func (c *Client) unasked(ctx context.Context) error {
	n := c.r.Buffered()
	c.setDeadline(ctx, readDeadline, min(c.cmdTO, idleWait))
	rep, err := c.r.ReadReply()
	if err != nil {
		return &ProtocolError{Host: c.host, Op: "checking the idle session", Err: fmt.Errorf("the server sent %d unasked octet(s) that are not a complete reply: %w", n, err)}
	}
	c.logReply(ctx, rep)
	if rep.Code >= 400 {
		return c.replyErr("", rep)
	}
	return &ProtocolError{Host: c.host, Op: "checking the idle session", Err: fmt.Errorf("the server sent an unasked reply %d", rep.Code)}
}

// idleClosedError is the cause of the *ConnError for a session the server
// closed while it was idle: ErrIdleClosed and what showed it.
type idleClosedError struct{ cause error }

// Error says that nothing was sent, and how the server ended the session.
func (e *idleClosedError) Error() string {
	var se *SMTPError
	if errors.As(e.cause, &se) {
		return fmt.Sprintf("%v (it said: %s)", ErrIdleClosed, se.reply())
	}
	return fmt.Sprintf("%v (%v)", ErrIdleClosed, e.cause)
}

// Unwrap returns ErrIdleClosed and the cause.
func (e *idleClosedError) Unwrap() []error { return []error{ErrIdleClosed, e.cause} }

// Err returns nil while the session can take a command, and otherwise the
// error that ended it (after Close or Quit, an error matching
// ErrClientClosed). On a session with nothing outstanding it first checks,
// without waiting, whether the server has closed it while it was idle, as
// every call does before it writes; a pool can call it before reusing a
// Client. While a Data writer is open it returns nil.
func (c *Client) Err() error {
	if c.err == ErrClientClosed {
		return c.closedErr()
	}
	if c.err != nil {
		return c.err
	}
	if c.data != nil {
		return nil
	}
	return c.checkIdle(context.Background())
}

// peekState is what a look at the socket found.
type peekState int

const (
	peekUnknown peekState = iota // the socket cannot be looked at
	peekNothing                  // nothing has arrived: the session is idle
	peekData                     // data has arrived
	peekEOF                      // the peer closed the connection
	peekError                    // the connection failed (reset)
)

// peekResult is a peekState with the error for peekError.
type peekResult struct {
	state peekState
	err   error
}
