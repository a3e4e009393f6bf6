package smtpsecure

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// STD-13: Quit sends QUIT and then closes TLS with a close_notify alert.
// The server counts the raw octets that arrive after its 221: a bare TCP
// close sends none, the alert record does.
func TestQuitSendsCloseNotify(t *testing.T) {
	_, leaf := pki(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	result := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			result <- err
			return
		}
		defer conn.Close()
		counted := &countingConn{Conn: conn}
		tc := tls.Server(counted, leaf.ServerConfig())
		r := bufio.NewReader(tc)
		io.WriteString(tc, "220 mx.test.example ESMTP\r\n")
		for _, reply := range []string{"250 mx.test.example\r\n", "221 bye\r\n"} {
			if _, err := r.ReadString('\n'); err != nil {
				result <- err
				return
			}
			io.WriteString(tc, reply)
		}
		before := counted.n.Load()
		if _, err := r.ReadByte(); err != io.EOF {
			result <- fmt.Errorf("server read %v after QUIT, want io.EOF", err)
			return
		}
		if counted.n.Load() == before {
			result <- errors.New("the client closed the connection without a close_notify alert")
			return
		}
		result <- nil
	}()
	d := dialerFor(t, fixedAddr(ln.Addr().String()))
	d.Security = SecurityImplicitTLS
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// countingConn counts the octets read from the connection.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type fixedAddr string

func (a fixedAddr) Addr() string { return string(a) }

// recordingConn keeps every Write the client makes, one entry per call.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// STD-23, STD-24: with PIPELINING, MAIL and the RCPTs go in one write with
// DATA last; EHLO, DATA and QUIT never have a command after them in the same
// write. Without PIPELINING every command is a write of its own.
func TestPipelinedGroupsEndWithDATA(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		var exts []string
		if pipelining {
			exts = []string{"PIPELINING"}
		}
		s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil; s.Extensions = exts })
		d := dialerFor(t, s)
		d.Security, d.InsecurePlaintext = SecurityAuto, true
		var rec *recordingConn
		inner := d.DialContext
		d.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := inner(ctx, network, addr)
			rec = &recordingConn{Conn: conn}
			return rec, err
		}
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example", "c@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
		sawGroup := false
		for _, w := range rec.writes {
			lines := strings.SplitAfter(string(w), "\r\n")
			if strings.HasPrefix(string(w), "MAIL FROM:") {
				sawGroup = len(lines) > 2
				if pipelining && !strings.HasSuffix(string(w), "DATA\r\n") {
					t.Errorf("pipelined group does not end with DATA: %q", w)
				}
			}
			for i, l := range lines[:len(lines)-1] {
				verb := strings.ToUpper(strings.Fields(l + " x")[0])
				switch verb {
				case "EHLO", "DATA", "QUIT", "NOOP", "RSET":
					if i != len(lines)-1 && lines[i+1] != "" {
						t.Errorf("%s is followed by %q in the same write", verb, lines[i+1])
					}
				}
			}
		}
		if sawGroup != pipelining {
			t.Errorf("pipelining=%v but grouped commands=%v", pipelining, sawGroup)
		}
	}
}

// STD-33: a server that offers 8BITMIME gets BODY=8BITMIME, and 8-bit
// content goes through unchanged.
func TestEightBitBodyDeclared(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = []string{"8BITMIME", "SMTPUTF8"} })
	body := "Subject: grüße\r\n\r\nÄrger über Öl\r\n"
	c := dial(t, s)
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"jörg@test.example"}}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	m := s.Messages()
	if len(m) != 1 || m[0].MailParams["BODY"] != "8BITMIME" || string(m[0].Data) != body {
		t.Fatalf("messages %+v", m)
	}
}

// STD-92: REQUIRETLS is only ever asked for over TLS with a verified
// certificate; an unverified session refuses it before sending anything.
func TestRequireTLSNeedsVerifiedTLS(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = []string{"REQUIRETLS"} })
	d := dialerFor(t, s)
	d.InsecureSkipVerify = true
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}, MailOptions: MailOptions{RequireTLS: true}}, strings.NewReader(testMsg))
	var xe *ExtensionError
	if !errors.As(err, &xe) || xe.Extension != "REQUIRETLS" || xe.EnhancedCode() != CodeRequireTLSUnsupported {
		t.Fatalf("err = %v", err)
	}
}
