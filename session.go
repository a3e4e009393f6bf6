package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

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
		c.peerName = greetingName(rep)
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
	rep, err := c.cmdArg(ctx, "EHLO", c.ehloName)
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return c.unexpected("EHLO", rep)
	}
	var name string
	name, c.ext = wire.ParseEHLO(rep)
	if name != "" {
		c.peerName = sanitize(name)
	}
	return nil
}

// greetingName returns the first word of a greeting, the name the server
// gives for itself (RFC 5321 §4.2: "220 mx.example.org ESMTP").
func greetingName(rep *wire.Reply) string {
	if len(rep.Lines) == 0 {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimSpace(rep.Lines[0]), " ")
	return sanitize(name)
}

// helo is the RFC 821 fallback, used only when plaintext is allowed.
func (c *Client) helo(ctx context.Context) error {
	rep, err := c.cmdArg(ctx, "HELO", c.ehloName)
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
	c.tlsStateBuf = tconn.ConnectionState()
	cs := &c.tlsStateBuf
	c.conn = tconn
	c.r.Reset(tconn)
	c.tlsState = cs
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
	now := time.Now()
	if tp.cfg.Time != nil {
		now = tp.cfg.Time()
	}
	return &DowngradeError{Host: c.host, Reason: classifyTLSError(err, now), Err: err}
}

// quitQuietly sends QUIT, waits briefly for the answer and closes. Used on
// the way out of a failed session, or after a message whose outcome is
// settled; its own errors do not matter. When QUIT already went out behind
// the message (quitSent), it only waits for the answer. Cancelling ctx cuts
// it short.
func (c *Client) quitQuietly(ctx context.Context) {
	if c.err == nil && ctx.Err() == nil {
		stop := c.interruptOn(ctx)
		c.setDeadline(ctx, bothDeadlines, min(c.cmdTO, 5*time.Second))
		if c.quitSent {
			c.r.ReadReply()
		} else {
			c.logCmd(ctx, "QUIT")
			if _, err := c.conn.Write(quitCommand); err == nil {
				c.r.ReadReply()
			}
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
