package mxworld

import (
	"crypto/tls"
	"fmt"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// extensions are what every MX host offers, before and after STARTTLS.
var extensions = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "SIZE 10485760"}

// startMX starts the SMTP server of an MX host.
func startMX(name string, h Host, leaf *testpki.Leaf) (*smtptest.Server, error) {
	srv := &smtptest.Server{
		Hostname:      name,
		Extensions:    extensions,
		TLSExtensions: extensions,
	}
	if h.Do&NoSTARTTLS == 0 {
		srv.TLSConfig = leaf.ServerConfig()
		srv.TLSConfig.MinVersion = tls.VersionTLS12
	}
	if h.Do&OfferREQUIRETLS != 0 {
		srv.TLSExtensions = append(append([]string(nil), extensions...), "REQUIRETLS")
	}
	srv.Hook = hook(name, h.Do)
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("MX host %s: %w", h.Name, err)
	}
	return srv, nil
}

// hook returns the server hook for a host's behaviours, or nil.
func hook(name string, do Behaviour) func(*smtptest.Conn, smtptest.Command) (string, bool) {
	if do&(Greeting421|Rcpt550) == 0 {
		return nil
	}
	return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
		switch {
		case cmd.Verb == "CONNECT" && do&Greeting421 != 0:
			c.Write("421 4.3.2 " + name + " is not accepting mail right now\r\n")
			c.Close()
			return "", true
		case cmd.Verb == "RCPT" && do&Rcpt550 != 0:
			return "550 5.1.1 No such user here", true
		}
		return "", false
	}
}
