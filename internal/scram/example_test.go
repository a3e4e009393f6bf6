package scram_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/smtpsecure/smtpsecure/internal/scram"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// authenticate runs a SASL client against a SCRAM server the way an SMTP
// session does: the initial response with AUTH, then one response per 334
// challenge until the server is done.
func authenticate(c sasl.Client, s *scram.Server) (mech string, err error) {
	mech, resp, err := c.Start()
	if err != nil {
		return "", err
	}
	for {
		challenge, done, err := s.Next(resp)
		if err != nil {
			return mech, err
		}
		if done {
			// 235: the server is satisfied. Is the client satisfied with the server?
			return mech, c.(*scram.Client).Complete()
		}
		if resp, err = c.Next(challenge); err != nil {
			return mech, err
		}
	}
}

// A complete SCRAM-SHA-256 exchange: the password never crosses the wire and
// each side proves itself to the other.
func Example() {
	stored := scram.NewCredentials("pencil", nil, 4096) // what the server keeps
	server := scram.NewServer(func(user string) (scram.Credentials, bool) {
		return stored, user == "user"
	}, nil)

	client := scram.NewClient("user", "pencil", "", nil, false)
	mech, err := authenticate(client, server)
	fmt.Println(mech, err, server.Username())

	// A wrong password fails at the server; the client learns nothing.
	server = scram.NewServer(func(string) (scram.Credentials, bool) { return stored, true }, nil)
	_, err = authenticate(scram.NewClient("user", "wrong", "", nil, false), server)
	fmt.Println(errors.Is(err, scram.ErrInvalidProof))
	// Output:
	// SCRAM-SHA-256 <nil> user
	// true
}

// SCRAM-SHA-256-PLUS binds the exchange to the TLS connection: each end takes
// the tls-exporter value of its own side of the connection.
func ExampleTLSExporter() {
	ca, _ := testpki.NewCA("example CA")
	leaf, _ := ca.Issue(testpki.LeafOptions{DNSNames: []string{"mail.example.net"}})
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clientConn := tls.Client(c1, &tls.Config{RootCAs: ca.Pool(), ServerName: "mail.example.net"})
	serverConn := tls.Server(c2, leaf.ServerConfig())
	go serverConn.HandshakeContext(ctx)
	if err := clientConn.HandshakeContext(ctx); err != nil {
		fmt.Println(err)
		return
	}

	clientState, serverState := clientConn.ConnectionState(), serverConn.ConnectionState()
	clientCB, err := scram.TLSExporter(&clientState)
	if err != nil {
		// No binding possible (TLS 1.2 without extended master secret):
		// fall back to SCRAM-SHA-256 with clientCouldBind=false.
		fmt.Println(err)
		return
	}
	serverCB, _ := scram.TLSExporter(&serverState)

	stored := scram.NewCredentials("pencil", nil, 4096)
	server := scram.NewServer(func(string) (scram.Credentials, bool) { return stored, true }, serverCB)
	mech, err := authenticate(scram.NewClient("user", "pencil", "", clientCB, true), server)
	fmt.Println(mech, err)
	// Output: SCRAM-SHA-256-PLUS <nil>
}
