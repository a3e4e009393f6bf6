package smtpsecure

import (
	"context"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// A pipelined group is written before its replies are read when it has at
// most syncReplyLimit commands and syncWriteLimit octets: the replies to
// so few commands (a few hundred octets) fit in any socket buffer, so the
// server can always write them while it reads the rest, and neither side
// can block the other (RFC 2920 §3.1, STD-26). The write itself is bounded
// by the write deadline. Larger groups (hundreds of recipients) are written
// by a goroutine while the replies are read.
const (
	syncReplyLimit = 32
	syncWriteLimit = chunkSize + 16<<10
	// copyLimit is the size up to which the parts of a group are copied
	// into one write (one TLS record); larger parts are written as they
	// are.
	copyLimit = 16 << 10
)

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
	if total <= syncWriteLimit && len(ops) <= syncReplyLimit {
		if err := c.writeParts(ctx, ops[0], total, parts); err != nil {
			return nil, err
		}
		c.sentEnd = endsMessage
	} else {
		werr = make(chan error, 1)
		c.flightWritten.Store(false)
		// The writer gets a copy of the list of parts, so that parts (the
		// caller's arguments) does not escape: a group that is written
		// in place allocates nothing for it.
		bufs := append([][]byte(nil), parts...)
		go func() {
			var err error
			for _, p := range bufs {
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
	reps := c.repsBuf[:0] // cleared by Send when the message is done
	var rerr error
	for _, op := range ops {
		c.setDeadline(ctx, readDeadline, c.cmdTO)
		rep, err := c.r.ReadReply()
		if err != nil {
			if endsMessage && werr != nil && c.flightWritten.Load() {
				c.sentEnd = true
			}
			rerr = c.ioFail(readingOp(op), err)
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
	c.repsBuf = reps
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

// writeParts writes a group: in one write when it is small, else each
// part as it is, so that a large chunk is never copied.
func (c *Client) writeParts(ctx context.Context, verb string, total int, parts [][]byte) error {
	if total <= copyLimit {
		c.wbuf = sized(c.wbuf, total)
		for _, p := range parts {
			c.wbuf = append(c.wbuf, p...)
		}
		return c.write(ctx, sendingOp(verb), c.wbuf)
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if err := c.write(ctx, sendingOp(verb), p); err != nil {
			return err
		}
	}
	return nil
}
