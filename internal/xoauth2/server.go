package xoauth2

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Server is a small XOAUTH2 server side for tests. Its Next method has the
// shape of go-sasl's sasl.Server and of the project's test SMTP server. It
// behaves like the providers: a refused token gets the JSON error challenge
// and, after the client's empty response, the failure.
type Server struct {
	check func(user, token string) bool
	// Scope is reported in the error challenge; NewServer sets it to
	// "https://mail.google.com/".
	Scope string

	state    serverState
	username string
}

type serverState int

const (
	serverInit      serverState = iota // waiting for the initial response
	serverSentError                    // error challenge sent, waiting for the empty response
	serverDone                         // token accepted
	serverFailed
)

// NewServer returns a server that accepts a user name and token when check
// returns true.
func NewServer(check func(user, token string) bool) *Server {
	return &Server{check: check, Scope: "https://mail.google.com/"}
}

// Username returns the user name of a successful exchange, "" otherwise.
func (s *Server) Username() string {
	if s.state != serverDone {
		return ""
	}
	return s.username
}

// Next takes the client's response and returns the next challenge, or
// done=true when the token was accepted. A nil response (no initial
// response) is answered with an empty challenge.
func (s *Server) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case serverInit:
		if response == nil {
			return []byte{}, false, nil
		}
		user, token, err := parseInitialResponse(response)
		if err != nil {
			s.state = serverFailed
			return nil, false, err
		}
		if s.check != nil && s.check(user, token) {
			s.state, s.username = serverDone, user
			return nil, true, nil
		}
		s.state = serverSentError
		status, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": s.Scope})
		return status, false, nil
	case serverSentError:
		s.state = serverFailed
		if len(response) != 0 {
			return nil, false, fmt.Errorf("%w: %w: non-empty response to the error challenge", ErrTokenRejected, ErrMalformed)
		}
		return nil, false, fmt.Errorf("%w (status 401)", ErrTokenRejected)
	default:
		return nil, false, errors.New("xoauth2: exchange already finished")
	}
}

// parseInitialResponse splits an XOAUTH2 initial response into user name and
// token. It expects "\x01"-terminated key=value fields followed by a final
// "\x01", with exactly one "user" and one "auth" field whose value is
// "Bearer " (scheme case-insensitive) and a token; other fields are ignored.
func parseInitialResponse(msg []byte) (user, token string, err error) {
	s := string(msg)
	body, ok := strings.CutSuffix(s, "\x01\x01")
	if !ok {
		return "", "", fmt.Errorf("%w: initial response does not end with \\x01\\x01", ErrMalformed)
	}
	var haveUser, haveAuth bool
	for _, field := range strings.Split(body, "\x01") {
		k, v, ok := strings.Cut(field, "=")
		if !ok || k == "" {
			return "", "", fmt.Errorf("%w: field without key=value in the initial response", ErrMalformed)
		}
		switch k {
		case "user":
			if haveUser || !validField(v) {
				return "", "", fmt.Errorf("%w: repeated or empty user field", ErrMalformed)
			}
			user, haveUser = v, true
		case "auth":
			scheme, t, ok := strings.Cut(v, " ")
			if haveAuth || !ok || !strings.EqualFold(scheme, "Bearer") || !validField(t) {
				return "", "", fmt.Errorf("%w: repeated auth field or not \"Bearer <token>\"", ErrMalformed)
			}
			token, haveAuth = t, true
		}
	}
	if !haveUser || !haveAuth {
		return "", "", fmt.Errorf("%w: initial response lacks the user or auth field", ErrMalformed)
	}
	return user, token, nil
}
