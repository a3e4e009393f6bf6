package smtpsecure

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// chunkSize is the BDAT chunk size, and so the memory a Client holds for
// message data.
const chunkSize = 64 << 10

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
	res, err := c.send(ctx, env, msg, false)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// send is Send, except that on error it also returns what the server said
// to the envelope before the transaction failed (Accepted, Rejected; nil
// when nothing was sent), so that MX delivery can tell the recipients of a
// failed transaction from those refused at RCPT.
//
// With once set the session was opened for this message alone and the
// caller ends it after (Dialer.Send, a delivery without a pool): it has not
// been idle, so it is not checked for a server that left meanwhile; a
// failed transaction is not reset; and when the server offers PIPELINING,
// QUIT goes in the group that ends the message (RFC 2920 §3.1), which saves
// the round trip of QUIT. Its reply comes after the message's, and
// quitQuietly reads it; the outcome is always the reply to the message (see
// quitAnswered).
func (c *Client) send(ctx context.Context, env *Envelope, msg io.Reader, once bool) (*SendResult, error) {
	from, rcpts, needUTF8, err := env.parse(c.rcptBuf)
	if err != nil {
		return nil, err
	}
	c.rcptBuf = rcpts
	if err := c.usable("Send"); err != nil {
		return nil, err
	}
	if c.tx != nil {
		return nil, sequenceErr("a mail transaction is already open; finish it or call Reset")
	}
	opts := env.MailOptions
	if _, ok := c.ext.MaxSize(); ok && opts.Size == 0 {
		// RFC 1870: never declare less than will be sent.
		opts.Size = messageSize(msg, opts.Body == BodyBinaryMIME)
	}
	mailLine, tx, err := c.mailCommand(from, &opts, needUTF8)
	if err != nil {
		return nil, err
	}
	lines := c.lineBuf[:0]
	for i, r := range rcpts {
		ro := env.rcptOptions(env.To[i])
		line, err := c.rcptCommand(r, &ro, tx)
		if err != nil {
			return nil, err
		}
		lines = append(lines, line)
	}
	c.lineBuf = lines
	// The op lives in the Client, so that sending allocates little; it is
	// cleared when the message is done.
	s := &c.op
	*s = sendOp{c: c, env: env, tx: tx, mailLine: mailLine, rcptLines: lines,
		quit: once && c.ext.Has("PIPELINING"),
		res:  newResult(len(rcpts))}
	defer func() {
		*s = sendOp{}
		clear(c.lineBuf)
		clear(c.repsBuf)
		clear(c.rcptBuf)
	}()
	err = c.run(ctx, "sending a message", !once, func() error { return s.run(ctx, msg) })
	if err != nil && c.err == nil && c.tx != nil && !once {
		// The transaction failed but the session is fine: clear it so the
		// next message starts clean (STD-27, STD-30). If it cannot be, Reset
		// closes the session rather than leave the transaction open. A
		// session that ends now needs no RSET: QUIT abandons the
		// transaction (RFC 5321 §4.1.1.10).
		c.Reset(ctx)
	}
	if err != nil {
		var ue *UncertainDeliveryError
		if errors.As(err, &ue) {
			ue.Recipients = s.res.Accepted
		}
		return s.res, err
	}
	return s.res, nil
}

// oneResult is a SendResult for one recipient with its Accepted list, in
// one allocation.
type oneResult struct {
	SendResult
	accepted [1]string
}

// newResult returns an empty SendResult for n recipients.
func newResult(n int) *SendResult {
	if n == 1 {
		r := &oneResult{}
		r.Accepted = r.accepted[:0]
		return &r.SendResult
	}
	return &SendResult{Accepted: make([]string, 0, n)}
}

// sendOp is one message on its way.
type sendOp struct {
	c         *Client
	env       *Envelope
	tx        *txState
	mailLine  string
	rcptLines []string
	res       *SendResult
	// quit puts QUIT in the group that ends the message (see send).
	quit bool

	// The state of BDAT chunking (sendBDAT), kept here rather than in
	// closures so that a message allocates nothing for it.
	ctx          context.Context
	withEnvelope bool        // the next chunk goes with MAIL and the RCPTs
	pending      int         // chunks whose replies are outstanding
	inFlight     int         // the most chunks outstanding at once
	final        *wire.Reply // the reply to the LAST chunk
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
	n := len(s.mailLine) + 2 + len(extra)
	for _, l := range s.rcptLines {
		n += len(l) + 2
	}
	b := sized(s.c.ebuf, n)
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
	ops := append(s.c.opsBuf[:0], "MAIL")
	for range s.rcptLines {
		ops = append(ops, "RCPT")
	}
	s.c.opsBuf = ops
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
	var trailer []byte
	if s.quit {
		trailer = quitCommand
	}
	rep, err := c.endData(ctx, trailer)
	if err != nil {
		return err
	}
	return s.delivered(rep)
}

var (
	dataCommand = []byte("DATA\r\n")
	quitCommand = []byte("QUIT\r\n")
)

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
	s.ctx, s.withEnvelope, s.pending, s.inFlight, s.final = ctx, withEnvelope, 0, 1, nil
	if c.ext.Has("PIPELINING") {
		s.inFlight = maxChunksInFlight
	}
	if c.cw == nil {
		if cw, ok := chunkWriters.Get().(*wire.ChunkWriter); ok {
			c.cw = cw
			c.cw.Reset(s)
		} else {
			c.cw = wire.NewChunkWriter(chunkSize, s)
		}
	} else {
		c.cw.Reset(s)
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
	return s.delivered(s.final)
}

// SendChunk makes the message under way the chunk writer's
// wire.ChunkSender: the sendOp lives in the Client, so that handing it over
// allocates nothing.
func (s *sendOp) SendChunk(chunk []byte, last bool) error {
	return s.sendChunk(chunk, last)
}

// drainChunks reads the outstanding replies to BDAT after a failure, so
// that the reply to the next command (RSET) is read as such; the first
// refusal is the error.
func (s *sendOp) drainChunks(err error) error {
	c, ctx := s.c, s.ctx
	// Once the session has ended (a 421, a protocol error) no more
	// replies can be read.
	for ; s.pending > 0 && c.err == nil; s.pending-- {
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

// sendChunk sends one BDAT chunk, with the envelope for the first one.
func (s *sendOp) sendChunk(chunk []byte, last bool) error {
	c, ctx := s.c, s.ctx
	header := strconv.AppendInt(append(c.hdrArr[:0], "BDAT "...), int64(len(chunk)), 10)
	if last {
		header = append(header, " LAST"...)
	}
	var trailer []byte
	if last && s.quit {
		trailer = quitCommand
		c.quitSent = true
	}
	if s.withEnvelope {
		s.withEnvelope = false
		s.logEnvelope(ctx)
		if c.log != nil {
			c.logCmd(ctx, string(header))
		}
		c.logQuit(ctx, trailer)
		reps, err := c.flight(ctx, s.envelopeOps(), last, s.envelopePayload(append(header, "\r\n"...)), chunk, trailer)
		if err != nil {
			return err
		}
		s.pending++
		if err := s.judgeEnvelope(reps); err != nil {
			// The chunk went out with the envelope: read its (refusing)
			// answer before giving up on the transaction, which cannot
			// deliver anything now.
			c.sentEnd = false
			return s.drainChunks(err)
		}
	} else {
		if c.log != nil {
			c.logCmd(ctx, string(header))
		}
		c.logQuit(ctx, trailer)
		if err := c.writeChunk(ctx, append(header, "\r\n"...), chunk, trailer); err != nil {
			return err
		}
		c.sentEnd = last
		s.pending++
	}
	if last {
		s.pending-- // the LAST chunk's reply is the final reply
		if err := s.drainChunks(nil); err != nil {
			// STD-30: a refused chunk ends the transaction.
			if c.err == nil {
				if _, ferr := c.read(ctx, "reading the reply to BDAT", c.dataTO); ferr != nil {
					return ferr
				}
			}
			return err
		}
		var err error
		s.final, err = c.finalReply(ctx)
		return err
	}
	if s.pending >= s.inFlight {
		rep, err := c.read(ctx, "reading the reply to BDAT", c.cmdTO)
		if err != nil {
			return err
		}
		s.pending--
		if rep.Code != 250 {
			return s.drainChunks(c.unexpected("BDAT", rep))
		}
	}
	return nil
}
