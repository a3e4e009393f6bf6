package smtptest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is a minimal SMTP server for benchmarks. It accepts every command,
// every credential and every message, keeps only a count, and allocates
// almost nothing per message, so that a benchmark's allocations are the
// client's. It offers STARTTLS (when TLSConfig is set), then PIPELINING,
// CHUNKING, 8BITMIME, SMTPUTF8 and AUTH PLAIN LOGIN. It is not a
// conformance fixture: use Server for tests.
type Sink struct {
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// ImplicitTLS starts TLS before the greeting.
	ImplicitTLS bool
	// NoChunking leaves CHUNKING out of the EHLO reply, so that clients
	// send the data with DATA.
	NoChunking bool

	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	messages atomic.Int64
}

// Start listens on 127.0.0.1:0 and serves in the background.
func (s *Sink) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = ln
	s.conns = map[net.Conn]struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nil
}

// Addr returns the listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Port returns the listening port.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns the number of messages accepted so far.
func (s *Sink) Messages() int64 { return s.messages.Load() }

// Close stops the server and waits for its goroutines.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

var (
	sinkGreeting  = []byte("220 sink.test ESMTP\r\n")
	sinkEHLOPlain = []byte("250-sink.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
	sinkEHLO      = []byte("250-sink.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n")
	sinkEHLOData  = []byte("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n")
	sinkOK        = []byte("250 2.0.0 OK\r\n")
	sinkAuthOK    = []byte("235 2.7.0 OK\r\n")
	sinkAuthMore  = []byte("334 \r\n")
	sinkData      = []byte("354 go ahead\r\n")
	sinkReady     = []byte("220 2.0.0 ready\r\n")
	sinkBye       = []byte("221 2.0.0 bye\r\n")
	sinkBad       = []byte("500 5.5.2 unrecognised\r\n")
	sinkEnd       = []byte(".\r\n")
)

func (s *Sink) serve(conn net.Conn) {
	if s.ImplicitTLS {
		conn = tls.Server(conn, s.TLSConfig)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 4<<10)
	inTLS := s.ImplicitTLS
	send := func(b []byte) error {
		w.Write(b)
		if r.Buffered() > 0 {
			return nil // more pipelined commands to answer first
		}
		return w.Flush()
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	if send(sinkGreeting) != nil {
		return
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		verb := line
		if i := bytes.IndexByte(line, ' '); i >= 0 {
			verb = line[:i]
		}
		verb = bytes.TrimRight(verb, "\r\n")
		switch {
		case asciiEqualFold(verb, "EHLO"), asciiEqualFold(verb, "HELO"):
			reply := sinkEHLO
			if s.NoChunking {
				reply = sinkEHLOData
			}
			if !inTLS && s.TLSConfig != nil {
				reply = sinkEHLOPlain
			}
			err = send(reply)
		case asciiEqualFold(verb, "STARTTLS") && !inTLS && s.TLSConfig != nil:
			if err = send(sinkReady); err == nil {
				conn = tls.Server(conn, s.TLSConfig)
				r.Reset(conn)
				w.Reset(conn)
				inTLS = true
			}
		case asciiEqualFold(verb, "AUTH"):
			if bytes.Count(line, []byte(" ")) >= 2 {
				err = send(sinkAuthOK)
				break
			}
			if err = send(sinkAuthMore); err == nil {
				if _, err = r.ReadSlice('\n'); err == nil {
					err = send(sinkAuthOK)
				}
			}
		case asciiEqualFold(verb, "MAIL"), asciiEqualFold(verb, "RCPT"), asciiEqualFold(verb, "RSET"), asciiEqualFold(verb, "NOOP"):
			err = send(sinkOK)
		case asciiEqualFold(verb, "DATA"):
			if err = send(sinkData); err != nil {
				return
			}
			for {
				l, rerr := r.ReadSlice('\n')
				if rerr != nil && !errors.Is(rerr, bufio.ErrBufferFull) {
					return
				}
				if bytes.Equal(l, sinkEnd) {
					break
				}
			}
			s.messages.Add(1)
			err = send(sinkOK)
		case asciiEqualFold(verb, "BDAT"):
			n, last, ok := sinkParseBDAT(line)
			if !ok {
				err = send(sinkBad)
				break
			}
			if _, err = r.Discard(n); err != nil {
				return
			}
			if last {
				s.messages.Add(1)
			}
			err = send(sinkOK)
		case asciiEqualFold(verb, "QUIT"):
			send(sinkBye)
			return
		default:
			err = send(sinkBad)
		}
		if err != nil {
			return
		}
		conn.SetDeadline(time.Now().Add(time.Minute))
	}
}

// sinkParseBDAT reads "BDAT <n>[ LAST]\r\n" without allocating.
func sinkParseBDAT(line []byte) (n int, last, ok bool) {
	rest := bytes.TrimRight(line[len("BDAT"):], "\r\n")
	if len(rest) < 2 || rest[0] != ' ' {
		return 0, false, false
	}
	rest = rest[1:]
	i := 0
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
		if n > 1<<30 {
			return 0, false, false
		}
		n = n*10 + int(rest[i]-'0')
	}
	if i == 0 {
		return 0, false, false
	}
	switch tail := rest[i:]; {
	case len(tail) == 0:
		return n, false, true
	case asciiEqualFold(tail, " LAST"):
		return n, true, true
	}
	return 0, false, false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
