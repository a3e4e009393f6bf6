package mitm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pipeSession builds a session whose client and server sides are in-memory
// pipes; it returns the far ends.
func pipeSession(p *Proxy) (s *session, clientFar, serverFar net.Conn) {
	if p.ctx == nil {
		p.ctx, p.cancel = context.WithCancel(context.Background())
	}
	cNear, cFar := net.Pipe()
	sNear, sFar := net.Pipe()
	s = newSession(p, cNear)
	s.server = &deadlineConn{Conn: sNear, timeout: time.Minute}
	return s, cFar, sFar
}

// collect reads c to the end in the background.
func collect(c net.Conn, wg *sync.WaitGroup) *bytes.Buffer {
	var b bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(&b, c)
	}()
	return &b
}

// FuzzClientStream feeds client bytes, split at an arbitrary point, through
// the client-to-server relay. Without STARTTLSReply it must forward exactly
// what the client sent; with it, never more.
func FuzzClientStream(f *testing.F) {
	for _, s := range []string{
		"EHLO c\r\nSTARTTLS\r\n",
		"STARTTLS\r\nMAIL FROM:<a@b>\r\n",
		"starttls  \r\nNOOP\r\n",
		"START",
		"EHLO c\r\nBDAT 12 LAST\r\nSTARTTLS\r\n\r\nSTARTTLS\r\n",
		"DATA\r\nSTARTTLS\r\n.\r\nSTARTTLS\r\n",
		"BDAT 99999999999999999999999\r\nx",
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s), uint16(3), false)
		f.Add([]byte(s), uint16(100), true)
	}
	f.Fuzz(func(t *testing.T, input []byte, split uint16, intercept bool) {
		p := &Proxy{}
		if intercept {
			p.STARTTLSReply = "454 4.7.0 no"
		}
		s, cFar, sFar := pipeSession(p)
		s.relayed = 1 << 30 // every reply counts as relayed: nothing waits
		var wg sync.WaitGroup
		forwarded := collect(sFar, &wg)
		collect(cFar, &wg)
		st := &c2s{s: s}
		k := min(int(split), len(input))
		err := st.process(input[:k])
		if err == nil {
			err = st.process(input[k:])
		}
		if err == nil {
			err = st.forward(st.held) // a held partial line at the end
		}
		s.client.Close()
		s.server.Close()
		wg.Wait()
		p.cancel()
		if err != nil {
			t.Fatalf("process: %v", err)
		}
		if !intercept && !bytes.Equal(forwarded.Bytes(), input) {
			t.Fatalf("forwarded %q, sent %q", forwarded.Bytes(), input)
		}
		if forwarded.Len() > len(input) {
			t.Fatalf("forwarded %d bytes of %d", forwarded.Len(), len(input))
		}
	})
}

// FuzzReplyStream feeds server bytes through the server-to-client relay.
// Without rewriting options it must relay them unchanged; StripSTARTTLS may
// only remove bytes.
func FuzzReplyStream(f *testing.F) {
	for _, s := range []string{
		"220 ready\r\n250-h\r\n250-STARTTLS\r\n250 X\r\n",
		"220 ready\r\n250-h\r\n250 STARTTLS\r\n",
		"220 ready\r\n250-h\r\n250-STARTTLS\r\n250\r\n",
		"220-a\r\ngarbage\r\n220 b\r\n",
		"250-h\r\n250 STARTTLS",
		"220 ok\r\n220 go ahead\r\n\x16\x03\x03",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, input []byte, strip bool) {
		p := &Proxy{StripSTARTTLS: strip}
		s, cFar, sFar := pipeSession(p)
		s.startTLSCmd = 1 // the second reply answers STARTTLS
		var wg sync.WaitGroup
		relayed := collect(cFar, &wg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sFar.Write(input)
			sFar.Close()
		}()
		err := s.serverToClient()
		s.client.Close()
		s.server.Close()
		wg.Wait()
		p.cancel()
		// net.Pipe reports the far end's close as io.ErrClosedPipe when
		// the next deadline is set; TCP would give io.EOF.
		if err != nil && err != io.EOF && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("serverToClient: %v", err)
		}
		if !strip && !bytes.Equal(relayed.Bytes(), input) {
			t.Fatalf("relayed %q, got %q", relayed.Bytes(), input)
		}
		if relayed.Len() > len(input) {
			t.Fatalf("relayed %d bytes of %d", relayed.Len(), len(input))
		}
	})
}
