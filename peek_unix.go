//go:build unix && !aix

package smtpsecure

import (
	"errors"
	"net"
	"syscall"
)

// peekConn looks at the socket under conn without reading from it and
// without waiting (recv with MSG_PEEK and MSG_DONTWAIT): has data arrived,
// has the peer closed or reset the connection, or nothing.
func peekConn(conn net.Conn) peekResult {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return peekResult{state: peekUnknown}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekResult{state: peekUnknown}
	}
	res := peekResult{state: peekUnknown}
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
				res.state = peekNothing
			case err != nil:
				res = peekResult{state: peekError, err: &net.OpError{Op: "read", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: err}}
			case n > 0:
				res.state = peekData
			default:
				res.state = peekEOF
			}
			return true
		}
	})
	if err != nil {
		// A deadline in the past, or a closed connection: nothing is
		// known, and the write that follows will tell.
		return peekResult{state: peekUnknown}
	}
	return res
}
