//go:build !unix || aix

package smtpsecure

import "net"

// peekConn cannot look at the socket on this system: the idle check sees
// only what the reader and the TLS connection already hold.
func peekConn(net.Conn) peekResult { return peekResult{state: peekUnknown} }
