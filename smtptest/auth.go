package smtptest

import (
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/scram"
	ismtptest "github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// builtinMechanisms are the mechanisms the internal server knows by itself.
var builtinMechanisms = map[string]bool{
	"PLAIN": true, "LOGIN": true, "CRAM-MD5": true, "XOAUTH2": true, "OAUTHBEARER": true,
}

// scramIterations is the PBKDF2 iteration count the server asks SCRAM
// clients for: the minimum of RFC 7677, as tests should be fast.
const scramIterations = scram.MinIterations

// mechanisms checks the mechanism names and returns the server-side
// mechanisms to add to the built-in ones (SCRAM, backed by users).
func mechanisms(names []string, users map[string]string) (map[string]func(*ismtptest.Conn) ismtptest.SASLServer, error) {
	var scramWanted, plusOffered bool
	for _, n := range names {
		switch m := strings.ToUpper(n); {
		case builtinMechanisms[m]:
		case m == scram.Mechanism:
			scramWanted = true
		case m == scram.MechanismPlus:
			scramWanted, plusOffered = true, true
		default:
			return nil, fmt.Errorf("smtptest: unknown SASL mechanism %q in Server.AuthMechanisms (known: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256, SCRAM-SHA-256-PLUS, XOAUTH2, OAUTHBEARER)", n)
		}
	}
	if !scramWanted {
		return nil, nil
	}
	creds := make(map[string]scram.Credentials, len(users))
	for u, p := range users {
		creds[u] = scram.NewCredentials(p, nil, scramIterations)
	}
	lookup := func(u string) (scram.Credentials, bool) {
		c, ok := creds[u]
		return c, ok
	}
	return map[string]func(*ismtptest.Conn) ismtptest.SASLServer{
		// With -PLUS offered, plain SCRAM knows the binding too, so that a
		// client saying it could bind but saw no -PLUS is caught (RFC 5802
		// section 6).
		scram.Mechanism: func(c *ismtptest.Conn) ismtptest.SASLServer {
			if !plusOffered {
				return scram.NewServer(lookup, nil)
			}
			return scram.NewServer(lookup, channelBinding(c))
		},
		scram.MechanismPlus: func(c *ismtptest.Conn) ismtptest.SASLServer {
			cb := channelBinding(c)
			if cb == nil {
				return nil // no TLS, nothing to bind to: 504
			}
			return scram.NewServer(lookup, cb)
		},
	}, nil
}

// channelBinding returns the tls-exporter binding of the connection (RFC
// 9266), nil without TLS.
func channelBinding(c *ismtptest.Conn) *scram.ChannelBinding {
	st, ok := c.TLSState()
	if !ok {
		return nil
	}
	cb, err := scram.TLSExporter(&st)
	if err != nil {
		return nil
	}
	return cb
}
