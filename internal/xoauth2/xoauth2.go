// Package xoauth2 implements XOAUTH2, the SASL mechanism Google and Microsoft
// accept for OAuth 2.0 access tokens over SMTP, IMAP and POP, as a go-sasl
// client, plus a small server side for tests.
//
// The client sends one message, the initial response
//
//	"user=" username "\x01auth=Bearer " token "\x01\x01"
//
// and the server answers 235 when it accepts the token. When it does not, the
// provider first sends a 334 challenge carrying a JSON error status, such as
//
//	{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}
//
// and expects an empty response before it ends the exchange with a 5xx reply.
// Client.Next does exactly that: it parses the status into an *Error, answers
// with the empty response, and keeps the *Error for the caller, who reads it
// with Client.Err to say why the provider refused (expired token, missing
// scope) next to the SMTP error. A further challenge gets the *Error back.
//
// The standard mechanism for the same purpose is OAUTHBEARER (RFC 7628), which
// github.com/emersion/go-sasl provides; XOAUTH2 exists because providers
// offered it first and some offer nothing else.
//
// Tokens are secrets: nothing in this package puts a token in an error.
package xoauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Mechanism is the SASL mechanism name.
const Mechanism = "XOAUTH2"

// maxChallenge bounds the error challenge the client parses; providers send
// well under 200 bytes.
const maxChallenge = 4 << 10

var (
	// ErrInvalidCredentials means the user name or token cannot be sent:
	// empty, or containing \x01 (the field separator), CR or LF.
	ErrInvalidCredentials = errors.New("xoauth2: invalid user name or token")

	// ErrMalformed means a message does not have the XOAUTH2 form: an error
	// challenge that is not the JSON status object, or (server side) an
	// initial response that is not "user=...\x01auth=Bearer ...\x01\x01".
	ErrMalformed = errors.New("xoauth2: malformed message")

	// ErrTokenRejected is returned by the test Server when check refuses the
	// token.
	ErrTokenRejected = errors.New("xoauth2: token rejected")
)

// Error is the JSON error status a provider sends as a challenge when it
// refuses the token. It tells the caller what to fix: "401" with a scope
// means the token is expired or lacks that scope; "400" a malformed request.
type Error struct {
	// Status is the HTTP-like status code, for example "401".
	Status string
	// Schemes lists the authentication schemes the server accepts, for
	// example "bearer" or "Bearer".
	Schemes string
	// Scope is the OAuth scope the token needs, for example
	// "https://mail.google.com/"; Microsoft omits it.
	Scope string
}

// Error describes the refusal; it never contains the token.
func (e *Error) Error() string {
	msg := fmt.Sprintf("xoauth2: server refused the token: status %q", e.Status)
	if e.Schemes != "" {
		msg += fmt.Sprintf(", schemes %q", e.Schemes)
	}
	if e.Scope != "" {
		msg += fmt.Sprintf(", scope %q (the token needs this scope and must not be expired)", e.Scope)
	}
	return msg
}

// ParseError parses the JSON error status of an XOAUTH2 challenge (already
// base64-decoded). The object must carry a "status" (a string or a number,
// printable, at most 32 characters); "schemes" and "scope", when present, must
// be strings. Unknown members are ignored.
func ParseError(challenge []byte) (*Error, error) {
	if len(challenge) > maxChallenge {
		return nil, fmt.Errorf("%w: error challenge longer than %d bytes", ErrMalformed, maxChallenge)
	}
	var raw struct {
		Status  json.RawMessage `json:"status"`
		Schemes *string         `json:"schemes"`
		Scope   *string         `json:"scope"`
	}
	dec := json.NewDecoder(bytes.NewReader(challenge))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: error challenge is not a JSON status object: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON status object", ErrMalformed)
	}
	if len(raw.Status) == 0 {
		return nil, fmt.Errorf("%w: error challenge has no status", ErrMalformed)
	}
	var e Error
	switch raw.Status[0] {
	case '"':
		if err := json.Unmarshal(raw.Status, &e.Status); err != nil {
			return nil, fmt.Errorf("%w: bad status: %v", ErrMalformed, err)
		}
	default:
		var n json.Number
		if err := json.Unmarshal(raw.Status, &n); err != nil {
			return nil, fmt.Errorf("%w: status is neither a string nor a number", ErrMalformed)
		}
		e.Status = n.String()
	}
	if e.Status == "" || len(e.Status) > 32 || !printable(e.Status) {
		return nil, fmt.Errorf("%w: status is empty, too long or not printable", ErrMalformed)
	}
	if raw.Schemes != nil {
		e.Schemes = *raw.Schemes
	}
	if raw.Scope != nil {
		e.Scope = *raw.Scope
	}
	return &e, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// validField reports whether s can be sent as a user name or token.
func validField(s string) bool {
	return s != "" && !strings.ContainsAny(s, "\x01\r\n")
}

type clientState int

const (
	clientInit  clientState = iota
	clientSent              // initial response sent
	clientError             // error challenge answered
)

// Client is the XOAUTH2 client. It implements sasl.Client; after a refused
// token, Err returns the provider's reason. A Client is not safe for
// concurrent use.
type Client struct {
	username, token string
	state           clientState
	resent          bool
	err             error
}

// NewClient returns an XOAUTH2 client for an OAuth 2.0 access token. The
// returned value is a *Client.
func NewClient(username, token string) sasl.Client {
	return &Client{username: username, token: token}
}

// Start returns the mechanism name and the initial response. It fails with
// ErrInvalidCredentials for an empty user name or token or one containing
// \x01, CR or LF, which would let them forge fields of the message.
func (c *Client) Start() (mech string, ir []byte, err error) {
	c.state, c.resent, c.err = clientInit, false, nil
	if !validField(c.username) {
		return "", nil, fmt.Errorf("%w: user name is empty or contains \\x01, CR or LF", ErrInvalidCredentials)
	}
	if !validField(c.token) {
		return "", nil, fmt.Errorf("%w: token is empty or contains \\x01, CR or LF", ErrInvalidCredentials)
	}
	c.state = clientSent
	return Mechanism, c.initialResponse(), nil
}

func (c *Client) initialResponse() []byte {
	return []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01")
}

// Next answers a challenge. The XOAUTH2 server only challenges to report an
// error: Next parses it, keeps it for Err and returns the empty response the
// providers require, so the server can end the exchange with its 5xx reply.
// A challenge after that returns the kept error. An empty challenge before
// any error asks for the initial response (a server that did not get it with
// AUTH) and is answered with it, once.
func (c *Client) Next(challenge []byte) ([]byte, error) {
	switch c.state {
	case clientInit:
		return nil, errors.New("xoauth2: Next called before a successful Start")
	case clientSent:
		if len(challenge) == 0 && !c.resent {
			c.resent = true
			return c.initialResponse(), nil
		}
		e, err := ParseError(challenge)
		if err != nil {
			c.err = err
		} else {
			c.err = e
		}
		c.state = clientError
		return []byte{}, nil
	default:
		return nil, c.err
	}
}

// Err returns the provider's reason for refusing the token: an *Error, or an
// error wrapping ErrMalformed when the challenge could not be parsed. It is
// nil when the server sent no error challenge.
func (c *Client) Err() error { return c.err }
