package scram

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

const tlsHost = "mail.test.example"

// tlsPair returns both ends of a completed TLS connection over net.Pipe.
func tlsPair(t *testing.T, version uint16) (client, server *tls.Conn) {
	t.Helper()
	ca, err := testpki.NewCA("scram test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{tlsHost}})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range []net.Conn{c1, c2} {
		if err := c.SetDeadline(deadline); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	client = tls.Client(c1, &tls.Config{RootCAs: ca.Pool(), ServerName: tlsHost, MinVersion: version, MaxVersion: version})
	server = tls.Server(c2, leaf.ServerConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return client, server
}

func exporter(t *testing.T, c *tls.Conn) *ChannelBinding {
	t.Helper()
	cs := c.ConnectionState()
	cb, err := TLSExporter(&cs)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// serveLines runs srv over conn: one base64 line in, one line out ("+ <b64>"
// for a challenge, "OK <user>" when done, "NO <error>" on failure).
func serveLines(conn net.Conn, srv *Server) {
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		resp, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil {
			fmt.Fprintf(conn, "NO %v\n", err)
			return
		}
		challenge, done, err := srv.Next(resp)
		switch {
		case err != nil:
			fmt.Fprintf(conn, "NO %v\n", err)
			return
		case done:
			fmt.Fprintf(conn, "OK %s\n", srv.Username())
			return
		default:
			fmt.Fprintf(conn, "+ %s\n", base64.StdEncoding.EncodeToString(challenge))
		}
	}
}

// authOverConn runs c against a server reached through conn and returns the
// server's final line.
func authOverConn(conn net.Conn, c *Client) (string, error) {
	r := bufio.NewReader(conn)
	_, resp, err := c.Start()
	if err != nil {
		return "", err
	}
	for {
		if _, err := fmt.Fprintf(conn, "%s\n", base64.StdEncoding.EncodeToString(resp)); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		challenge, ok := strings.CutPrefix(line, "+ ")
		if !ok {
			if strings.HasPrefix(line, "OK ") {
				return line, c.Complete()
			}
			return line, nil
		}
		b, err := base64.StdEncoding.DecodeString(challenge)
		if err != nil {
			return "", err
		}
		if resp, err = c.Next(b); err != nil {
			return "", err
		}
	}
}

func TestTLSExporterBothEnds(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			client, server := tlsPair(t, v)
			cc, sc := exporter(t, client), exporter(t, server)
			if cc.Type != "tls-exporter" || len(cc.Data) != 32 {
				t.Fatalf("client binding %s/%d bytes", cc.Type, len(cc.Data))
			}
			if !bytes.Equal(cc.Data, sc.Data) {
				t.Fatalf("exporters differ: client %x, server %x", cc.Data, sc.Data)
			}
			// RFC 9266 fixes the inputs; check them against crypto/tls directly.
			cs := client.ConnectionState()
			want, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", []byte{}, 32)
			if err != nil || !bytes.Equal(want, cc.Data) {
				t.Fatalf("exporter = %x, want %x (%v)", cc.Data, want, err)
			}
			other, _ := tlsPair(t, v)
			if bytes.Equal(exporter(t, other).Data, cc.Data) {
				t.Fatal("two connections have the same exporter")
			}
		})
	}
}

// SCRAM-SHA-256-PLUS over a real TLS connection, each end binding with its
// own view of the connection.
func TestSCRAMPlusOverTLS(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			client, server := tlsPair(t, v)
			srv := NewServer(lookupOne("user", NewCredentials("pencil", nil, 4096)), exporter(t, server))
			done := make(chan struct{})
			go func() { defer close(done); serveLines(server, srv) }()
			c := NewClient("user", "pencil", "", exporter(t, client), true).(*Client)
			line, err := authOverConn(client, c)
			<-done
			if err != nil || line != "OK user" {
				t.Fatalf("authentication: %q, %v", line, err)
			}
		})
	}
}

// A man in the middle who terminates TLS (with a certificate the client
// trusts) and relays the SCRAM messages has two TLS connections with two
// different exporters; the server refuses the proof.
func TestSCRAMPlusDetectsMITM(t *testing.T) {
	clientSide, _ := tlsPair(t, tls.VersionTLS13) // client <-> MITM
	_, serverSide := tlsPair(t, tls.VersionTLS13) // MITM <-> server
	srv := NewServer(lookupOne("user", NewCredentials("pencil", nil, 4096)), exporter(t, serverSide))
	c := NewClient("user", "pencil", "", exporter(t, clientSide), true).(*Client)
	if err := run(t, c, srv); !errors.Is(err, ErrChannelBinding) {
		t.Fatalf("relayed exchange: %v, want ErrChannelBinding", err)
	}
	// Without binding the relay would have worked: that is what -PLUS adds.
	c = NewClient("user", "pencil", "", nil, false).(*Client)
	srv = NewServer(lookupOne("user", NewCredentials("pencil", nil, 4096)), nil)
	if err := run(t, c, srv); err != nil {
		t.Fatalf("unbound relayed exchange: %v", err)
	}
}

func TestTLSExporterErrors(t *testing.T) {
	tests := []struct {
		name string
		cs   *tls.ConnectionState
	}{
		{"nil", nil},
		{"handshake incomplete", &tls.ConnectionState{Version: tls.VersionTLS13}},
		{"TLS 1.1", &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS11}},
		{"not from crypto/tls", &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := TLSExporter(tt.cs)
			if cb != nil || !errors.Is(err, ErrChannelBinding) {
				t.Fatalf("TLSExporter = %v, %v; want ErrChannelBinding", cb, err)
			}
		})
	}
}
