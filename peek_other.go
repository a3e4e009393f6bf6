//go:build !unix || aix

package smtpsecure

import "net"

// socketPeeker cannot look at a socket on this system: the idle check sees
// only what the reader and the TLS connection already hold.
type socketPeeker struct{}

func newPeeker(net.Conn) *socketPeeker { return nil }

func (p *socketPeeker) peek() peekResult { return peekResult{state: peekUnknown} }
