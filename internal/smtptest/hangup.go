package smtptest

import (
	"io"
	"net"
)

// maxDrain bounds what Hangup reads and discards while it waits for the
// client to close its side.
const maxDrain = 1 << 20

// Hangup ends the connection the way a server that means it does, so that
// the client reads every reply written before it and then the end of the
// stream: a TLS close_notify when TLS is up, a TCP FIN, then it reads and
// discards what the client still sends (recorded in Plaintext or Encrypted
// as usual) until the client closes its side, the read deadline passes, 1
// MiB was discarded or the server is closed. Closing a socket with unread
// input would send a TCP RST instead, and the client could lose the replies.
// The session ends with ErrClosed. Hangup belongs to the goroutine serving
// the connection (the hook).
func (c *Conn) Hangup() error {
	c.mu.Lock()
	if c.closeReason != nil {
		c.mu.Unlock()
		return nil
	}
	c.closeReason = ErrClosed
	tc := c.tlsConn
	c.mu.Unlock()
	if tc != nil {
		// Sends close_notify; the TLS connection stays readable.
		tc.CloseWrite()
	}
	if tcp, ok := c.raw.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	io.CopyN(io.Discard, c.r, maxDrain)
	return c.raw.Close()
}

// PendingMessage returns, while the hook handles the pseudo-command EOD, the
// message whose data just ended, as it will be recorded if the reply is
// positive; nil at any other time. It must not be modified.
func (c *Conn) PendingMessage() *Message { return c.pending }

// CloseConnections closes every open connection with Conn.Close (their
// sessions end with ErrClosed) and keeps the server listening: a server
// hanging up on its clients.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ParsePathArg parses the argument of MAIL (prefix "FROM:") or RCPT
// ("TO:") as the server does and returns the address without angle
// brackets and the parameters by upper-case keyword ("" for a parameter
// without a value).
func ParsePathArg(arg, prefix string) (path string, params map[string]string, err error) {
	path, ps, err := parsePathArg(arg, prefix)
	if err != nil {
		return "", nil, err
	}
	params = make(map[string]string, len(ps))
	for _, p := range ps {
		params[p.Key] = p.Value
	}
	return path, params, nil
}
