package smtpsecure

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// cmd sends one command line and reads its reply. shown is the command as
// it may appear in logs and errors (credentials removed).
func (c *Client) cmd(ctx context.Context, line, shown string) (*wire.Reply, error) {
	c.logCmd(ctx, shown)
	verb := verbOf(shown)
	if err := c.write(ctx, sendingOp(verb), append(append(c.cmdArr[:0], line...), "\r\n"...)); err != nil {
		return nil, err
	}
	return c.read(ctx, readingOp(verb), c.cmdTO)
}

// cmdArg is cmd for a command of a verb and an argument without
// credentials (EHLO and HELO with the client's name): the line is put
// together in the write buffer, not in a string.
func (c *Client) cmdArg(ctx context.Context, verb, arg string) (*wire.Reply, error) {
	if c.log != nil {
		c.logCmd(ctx, verb+" "+arg)
	}
	if err := c.write(ctx, sendingOp(verb), append(append(append(append(c.cmdArr[:0], verb...), ' '), arg...), "\r\n"...)); err != nil {
		return nil, err
	}
	return c.read(ctx, readingOp(verb), c.cmdTO)
}

func verbOf(shown string) string {
	if i := strings.IndexAny(shown, " :"); i > 0 {
		return shown[:i]
	}
	return shown
}

// sendingOp is "sending " and the verb, and readingOp "reading the reply
// to " and the verb, for errors, without building a string for the verbs
// of every session.
func sendingOp(verb string) string {
	switch verb {
	case "EHLO":
		return "sending EHLO"
	case "STARTTLS":
		return "sending STARTTLS"
	case "MAIL":
		return "sending MAIL"
	case "RCPT":
		return "sending RCPT"
	case "DATA":
		return "sending DATA"
	case "QUIT":
		return "sending QUIT"
	}
	return "sending " + verb
}

func readingOp(verb string) string {
	switch verb {
	case "EHLO":
		return "reading the reply to EHLO"
	case "STARTTLS":
		return "reading the reply to STARTTLS"
	case "MAIL":
		return "reading the reply to MAIL"
	case "RCPT":
		return "reading the reply to RCPT"
	case "DATA":
		return "reading the reply to DATA"
	case "QUIT":
		return "reading the reply to QUIT"
	}
	return "reading the reply to " + verb
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
	err := &ProtocolError{Host: c.host, Op: "reading the reply to " + verbOf(shown),
		Err: fmt.Errorf("unexpected reply code %d (%q) to %s", rep.Code, firstLine(rep), verbOf(shown))}
	c.fail(err)
	return err
}

// firstLine returns the first line of a reply's text, cut at 100 octets,
// for an error message.
func firstLine(rep *wire.Reply) string {
	text := rep.Text()
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 100 {
		text = text[:100] + "..."
	}
	return text
}

// closing reports whether a reply in a pipelined group says that the
// server is closing the channel (421 or 221): no further reply will come.
func closing(rep *wire.Reply) bool { return rep.Code == 421 || rep.Code == 221 }

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
// must accept RSET (RFC 5321 §4.1.1.5); when it does not, or when RSET
// cannot be sent because ctx has ended, the state of the session is
// unknown and the session is closed.
func (c *Client) Reset(ctx context.Context) error {
	if err := c.usable("RSET"); err != nil {
		return err
	}
	err := c.simple(ctx, "RSET")
	if err == nil {
		c.tx = nil
	} else if c.err == nil {
		var ce *ConnError
		if errors.As(err, &ce) && ce.notStarted {
			// The context ended before RSET could be sent: a transaction
			// may still be open, so the session cannot go on.
			err = &ConnError{Host: c.host, Op: "RSET", Err: ce.Err}
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
