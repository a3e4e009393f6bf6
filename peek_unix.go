//go:build unix && !aix

package smtpsecure

import (
	"errors"
	"net"
	"syscall"
)

// socketPeeker looks at the socket under a connection without reading
// from it and without waiting (recv with MSG_PEEK and MSG_DONTWAIT): has
// data arrived, has the peer closed or reset the connection, or nothing.
// There is one per connection, so that looking allocates nothing.
type socketPeeker struct {
	conn net.Conn
	rc   syscall.RawConn
	res  peekResult
	buf  [1]byte
	look func(fd uintptr) bool
}

// newPeeker returns a peeker for conn, or nil when conn does not give
// access to its socket (a wrapper made by a DialContext hook, say).
func newPeeker(conn net.Conn) *socketPeeker {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &socketPeeker{conn: conn, rc: rc}
	p.look = p.lookAt
	return p
}

// peek looks at the socket. The connection's read deadline must not have
// passed: a deadline in the past, or a closed connection, gives
// peekUnknown.
func (p *socketPeeker) peek() peekResult {
	if p == nil {
		return peekResult{state: peekUnknown}
	}
	p.res = peekResult{state: peekUnknown}
	if err := p.rc.Read(p.look); err != nil {
		return peekResult{state: peekUnknown}
	}
	return p.res
}

// lookAt is the raw read: it never asks to wait.
func (p *socketPeeker) lookAt(fd uintptr) bool {
	for {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
			p.res.state = peekNothing
		case err != nil:
			p.res = peekResult{state: peekError, err: &net.OpError{Op: "read", Net: "tcp", Source: p.conn.LocalAddr(), Addr: p.conn.RemoteAddr(), Err: err}}
		case n > 0:
			p.res.state = peekData
		default:
			p.res.state = peekEOF
		}
		return true
	}
}
