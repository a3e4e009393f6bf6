package smtpsecure

import (
	"context"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// syncWriteLimit is the size up to which a pipelined group is written
// before its replies are read. Larger groups are written by a goroutine
// while the replies are read, so that neither side can block the other
// (RFC 2920 §3.1, STD-26).
const syncWriteLimit = 4 << 10

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
