package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

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
		_, err := w.c.endData(w.ctx, nil)
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
		if dw, ok := dataWriters.Get().(*wire.DataWriter); ok {
			c.dw = dw
			c.dw.Reset(w, opts)
		} else {
			c.dw = wire.NewDataWriter(w, opts)
		}
	} else {
		c.dw.Reset(w, opts)
	}
}

// endData writes the end-of-data marker, and trailer after it in the same
// write (QUIT, see Client.send, or nothing), and reads the final reply.
func (c *Client) endData(ctx context.Context, trailer []byte) (*wire.Reply, error) {
	c.quitSent = trailer != nil
	// Close writes the marker; if that fails, it did not leave in full,
	// so nothing was delivered.
	if err := c.dw.CloseWith(trailer); err != nil {
		return nil, c.writerErr(err)
	}
	c.logCmd(ctx, "<end of data>")
	c.logQuit(ctx, trailer)
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
	if rep.Code == 221 && c.quitSent {
		return rep, c.quitAnswered(rep)
	}
	if rep.Code != 250 {
		return rep, c.unexpected("end of data", rep)
	}
	return rep, nil
}

// quitAnswered is the outcome of a 221 where the reply to the end of the
// message was due, when QUIT went out right behind the message: the reply
// looks like QUIT's, so the server may have taken the message and skipped
// its reply, or refused nothing at all. Nothing tells, and the outcome is
// never taken from QUIT's reply: the delivery is uncertain. It ends the
// session.
func (c *Client) quitAnswered(rep *wire.Reply) error {
	err := &UncertainDeliveryError{Host: c.host, Err: &ProtocolError{Host: c.host, Op: "reading the reply to the end of data",
		Err: fmt.Errorf("reply code 221 (%q), QUIT's, where the reply to the end of the message was due", firstLine(rep))}}
	c.fail(err)
	return err
}

// logQuit logs QUIT when it goes out behind a message (trailer is set).
func (c *Client) logQuit(ctx context.Context, trailer []byte) {
	if trailer != nil {
		c.logCmd(ctx, "QUIT")
	}
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
	c.tw.w = dst
	_, err := io.Copy(&c.tw, msg)
	c.tw.w = nil
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

// The message encoders of finished sessions, for the next ones: a program
// that sends each message on a new connection (Dialer.Send, SendMail) does
// not allocate their buffers for every message.
var (
	dataWriters  sync.Pool // *wire.DataWriter
	chunkWriters sync.Pool // *wire.ChunkWriter
)

// releaseBuffers hands the session's encoders to the next session. Only
// the owner of a Client that nobody else can reach any more calls it
// (Dialer.Send, the pool), after the session ended.
func (c *Client) releaseBuffers() {
	if c.dw != nil {
		c.dw.Reset(nil, wire.DataOptions{})
		dataWriters.Put(c.dw)
		c.dw = nil
	}
	if c.cw != nil {
		c.cw.Reset(nil)
		chunkWriters.Put(c.cw)
		c.cw = nil
	}
}
