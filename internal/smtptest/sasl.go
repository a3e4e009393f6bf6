package smtptest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// builtinMechanisms are the SASL mechanisms the server knows without
// Server.Mechanisms.
var builtinMechanisms = map[string]func(*Conn) SASLServer{
	"PLAIN":       newPlainServer,
	"LOGIN":       newLoginServer,
	"CRAM-MD5":    newCRAMMD5Server,
	"XOAUTH2":     newXOAuth2Server,
	"OAUTHBEARER": newOAuthBearerServer,
}

var (
	errBadCredentials = errors.New("smtptest: unknown user or wrong password or token")
	errUnexpected     = errors.New("smtptest: unexpected SASL response")
)

// checkSecret compares the password or token of user in constant time.
func (s *Server) checkSecret(user, secret string) bool {
	want, ok := s.Users[user]
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1
}

// plainServer wraps go-sasl's PLAIN server (RFC 4616) to learn the user.
type plainServer struct {
	sasl.Server
	user string
}

func newPlainServer(c *Conn) SASLServer {
	m := &plainServer{}
	m.Server = sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errors.New("smtptest: PLAIN authorization identity differs from the user")
		}
		if !c.srv.checkSecret(username, password) {
			return errBadCredentials
		}
		m.user = username
		return nil
	})
	return m
}

func (m *plainServer) Username() string { return m.user }

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// challenges "Username:" and "Password:"; an initial response is the user
// name.
type loginServer struct {
	c     *Conn
	state int
	name  string
	user  string
}

func newLoginServer(c *Conn) SASLServer { return &loginServer{c: c} }

func (m *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch m.state {
	case 0:
		if resp == nil {
			m.state = 1
			return []byte("Username:"), false, nil
		}
		m.name, m.state = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		m.name, m.state = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		m.state = 3
		if !m.c.srv.checkSecret(m.name, string(resp)) {
			return nil, false, errBadCredentials
		}
		m.user = m.name
		return nil, true, nil
	}
	return nil, false, errUnexpected
}

func (m *loginServer) Username() string { return m.user }

// cramMD5Server is CRAM-MD5 (RFC 2195): the server sends a unique challenge,
// the client answers "user SP hex(HMAC-MD5(password, challenge))".
type cramMD5Server struct {
	c         *Conn
	challenge []byte
	user      string
}

func newCRAMMD5Server(c *Conn) SASLServer { return &cramMD5Server{c: c} }

func (m *cramMD5Server) Next(resp []byte) ([]byte, bool, error) {
	if m.challenge == nil {
		if resp != nil {
			return nil, false, errors.New("smtptest: CRAM-MD5 takes no initial response")
		}
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, false, err
		}
		m.challenge = fmt.Appendf(nil, "<%x.%d@%s>", r, time.Now().UnixNano(), m.c.srv.hostname())
		return m.challenge, false, nil
	}
	i := bytes.LastIndexByte(resp, ' ')
	if i < 0 {
		return nil, false, errors.New("smtptest: CRAM-MD5 response is not \"user digest\"")
	}
	name, digest := string(resp[:i]), resp[i+1:]
	secret, ok := m.c.srv.Users[name]
	if !ok {
		return nil, false, errBadCredentials
	}
	mac := hmac.New(md5.New, []byte(secret))
	mac.Write(m.challenge)
	want := hex.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), digest) != 1 {
		return nil, false, errBadCredentials
	}
	m.user = name
	return nil, true, nil
}

func (m *cramMD5Server) Username() string { return m.user }

// xoauth2Server is Google's and Microsoft's XOAUTH2: the client sends
// "user=" user 0x01 "auth=Bearer " token 0x01 0x01. On failure the server
// sends a base64 JSON status as a challenge, the client answers with an
// empty line, and the server then fails the exchange.
type xoauth2Server struct {
	c      *Conn
	state  int
	failed bool
	user   string
}

// xoauth2Failure is the JSON error challenge Google documents for XOAUTH2.
const xoauth2Failure = `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`

func newXOAuth2Server(c *Conn) SASLServer { return &xoauth2Server{c: c} }

func (m *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if m.failed {
		return nil, false, errBadCredentials
	}
	if resp == nil && m.state == 0 {
		m.state = 1
		return []byte{}, false, nil
	}
	if m.state == 2 {
		return nil, false, errUnexpected
	}
	m.state = 2
	user, token, ok := parseXOAuth2(resp)
	if !ok || !m.c.srv.checkSecret(user, token) {
		m.failed = true
		return []byte(xoauth2Failure), false, nil
	}
	m.user = user
	return nil, true, nil
}

func (m *xoauth2Server) Username() string { return m.user }

// parseXOAuth2 reads "user=" u "\x01auth=Bearer " t "\x01\x01".
func parseXOAuth2(resp []byte) (user, token string, ok bool) {
	s, found := strings.CutSuffix(string(resp), "\x01\x01")
	if !found {
		return "", "", false
	}
	u, a, found := strings.Cut(s, "\x01")
	if !found || !strings.HasPrefix(u, "user=") {
		return "", "", false
	}
	const bearer = "auth=bearer "
	if len(a) < len(bearer) || !strings.EqualFold(a[:len(bearer)], bearer) {
		return "", "", false
	}
	return u[len("user="):], a[len(bearer):], true
}

// oauthBearerServer wraps go-sasl's OAUTHBEARER server (RFC 7628) to learn
// the user and to answer an empty response after a failure (which go-sasl
// does not expect) with an error.
type oauthBearerServer struct {
	inner     sasl.Server
	responded bool // a response was passed to inner
	user      string
}

func newOAuthBearerServer(c *Conn) SASLServer {
	m := &oauthBearerServer{}
	m.inner = sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		if opts.Username == "" || !c.srv.checkSecret(opts.Username, opts.Token) {
			return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
		}
		m.user = opts.Username
		return nil
	})
	return m
}

func (m *oauthBearerServer) Next(resp []byte) ([]byte, bool, error) {
	if m.responded && len(resp) == 0 {
		return nil, false, errBadCredentials
	}
	if resp != nil {
		m.responded = true
	}
	return m.inner.Next(resp)
}

func (m *oauthBearerServer) Username() string { return m.user }
