package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Credentials is what a SCRAM server stores for a user instead of the
// password (RFC 5802 section 3).
type Credentials struct {
	// Salt is the per-user salt sent to the client.
	Salt []byte
	// Iterations is the PBKDF2 iteration count sent to the client.
	Iterations int
	// StoredKey is H(ClientKey); it verifies the client's proof.
	StoredKey []byte
	// ServerKey signs the server-final-message.
	ServerKey []byte
}

// NewCredentials derives the stored credentials for password. A nil or empty
// salt is replaced by 16 random bytes. The password is prepared with SASLprep
// like the client does; a password SASLprep refuses is used as given (a client
// of this package cannot log in with it anyway).
//
// NewCredentials does not enforce MinIterations, so tests can offer a count
// the client must refuse; an iteration count below 1 gives credentials the
// Server refuses to use.
func NewCredentials(password string, salt []byte, iterations int) Credentials {
	if len(salt) == 0 {
		salt = make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return Credentials{Iterations: iterations}
		}
	} else {
		salt = append([]byte(nil), salt...)
	}
	cr := Credentials{Salt: salt, Iterations: iterations}
	if iterations < 1 {
		return cr
	}
	prepared, err := saslprep(password)
	if err != nil {
		prepared = password
	}
	salted, err := pbkdf2.Key(sha256.New, prepared, salt, iterations, keyLen)
	if err != nil {
		return cr
	}
	storedKey := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	cr.StoredKey = storedKey[:]
	cr.ServerKey = hmacSHA256(salted, "Server Key")
	return cr
}

func (cr Credentials) usable() bool {
	return len(cr.Salt) > 0 && cr.Iterations >= 1 && len(cr.StoredKey) == keyLen && len(cr.ServerKey) == keyLen
}

type serverState int

const (
	serverInit      serverState = iota // waiting for the client-first-message
	serverSentFirst                    // server-first-message sent
	serverSentFinal                    // server-final-message sent, waiting for the empty response
	serverDone                         // authenticated
	serverFailed
)

// Server is the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS for test
// servers. Its Next method has the shape of go-sasl's sasl.Server and of the
// project's test SMTP server, so it plugs into either. A Server runs one
// exchange and is not safe for concurrent use.
//
// The server-final-message is sent as a challenge (SMTP 334) and the exchange
// is done once the client answers it with an empty response, as RFC 4954
// requires for mechanisms with additional data on success. Failures are
// returned as errors (the SMTP server answers 535) without a
// server-final-message, which RFC 5802 section 5.1 permits.
type Server struct {
	// Lookup returns the credentials of a user name (as sent by the client,
	// after undoing the =2C and =3D escapes), or false for an unknown user.
	Lookup func(username string) (Credentials, bool)
	// ChannelBinding is the server's own view of the TLS connection's
	// binding (TLSExporter on the server's ConnectionState). Non-nil means the
	// server offers SCRAM-SHA-256-PLUS: a client binding with it must present
	// the same data, and a client saying "y" (could bind, saw no -PLUS) is a
	// downgrade and fails. Nil means no binding is offered.
	ChannelBinding *ChannelBinding

	testNonce string // tests only: the server nonce to use instead of a random one

	state         serverState
	username      string
	authenticated bool
	gs2Header     string
	clientBare    string
	serverFirst   string
	nonce         string
	creds         Credentials
}

// NewServer returns a server that looks users up with lookup. cb is the
// server's view of the connection's channel binding, nil when the server does
// not offer SCRAM-SHA-256-PLUS.
func NewServer(lookup func(username string) (Credentials, bool), cb *ChannelBinding) *Server {
	s := &Server{Lookup: lookup}
	if cb != nil {
		s.ChannelBinding = &ChannelBinding{Type: cb.Type, Data: append([]byte(nil), cb.Data...)}
	}
	return s
}

// Username returns the user name the client authenticated as, or "" until
// the client's proof has been verified.
func (s *Server) Username() string {
	if !s.authenticated {
		return ""
	}
	return s.username
}

// Next takes the client's next response and returns the next challenge, or
// done=true once the exchange succeeded. A nil response before the
// client-first-message (no initial response) is answered with an empty
// challenge. Any error fails the exchange for good.
func (s *Server) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case serverInit:
		if response == nil {
			return []byte{}, false, nil
		}
		challenge, err = s.first(response)
		if err != nil {
			s.state = serverFailed
			return nil, false, err
		}
		s.state = serverSentFirst
		return challenge, false, nil
	case serverSentFirst:
		challenge, err = s.final(response)
		if err != nil {
			s.state = serverFailed
			return nil, false, err
		}
		s.state = serverSentFinal
		return challenge, false, nil
	case serverSentFinal:
		if len(response) != 0 {
			s.state = serverFailed
			s.authenticated = false
			return nil, false, fmt.Errorf("%w: non-empty response to the server-final-message", ErrMalformed)
		}
		s.state = serverDone
		return nil, true, nil
	case serverDone:
		return nil, false, errors.New("scram: exchange already finished")
	default:
		return nil, false, errors.New("scram: exchange already failed")
	}
}

func (s *Server) first(msg []byte) ([]byte, error) {
	cf, err := parseClientFirst(msg)
	if err != nil {
		return nil, err
	}
	cb := s.ChannelBinding
	switch {
	case cf.flag == 'y' && cb != nil:
		return nil, fmt.Errorf("%w: client could bind but did not see %s (server-does-support-channel-binding)", ErrChannelBindingDowngrade, MechanismPlus)
	case cf.flag == 'p' && cb == nil:
		return nil, fmt.Errorf("%w: client binds but this server offers no binding (channel-binding-not-supported)", ErrChannelBinding)
	case cf.flag == 'p' && cf.cbName != cb.Type:
		return nil, fmt.Errorf("%w: client binds with %q, server offers %q (unsupported-channel-binding-type)", ErrChannelBinding, cf.cbName, cb.Type)
	}
	if cf.authzid != "" && cf.authzid != cf.username {
		return nil, fmt.Errorf("%w: %q may not act as %q", ErrAuthorization, cf.username, cf.authzid)
	}
	if s.Lookup == nil {
		return nil, fmt.Errorf("%w: %q (no user database)", ErrUnknownUser, cf.username)
	}
	creds, ok := s.Lookup(cf.username)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, cf.username)
	}
	if !creds.usable() {
		return nil, fmt.Errorf("scram: stored credentials of %q are unusable", cf.username)
	}
	snonce := s.testNonce
	if snonce == "" {
		var b [nonceBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("scram: drawing the server nonce: %w", err)
		}
		snonce = encodeBase64(b[:])
	}
	s.username = cf.username
	s.gs2Header = cf.gs2Header
	s.clientBare = cf.bare
	s.creds = creds
	s.nonce = cf.nonce + snonce
	s.serverFirst = "r=" + s.nonce + ",s=" + encodeBase64(creds.Salt) + ",i=" + strconv.Itoa(creds.Iterations)
	return []byte(s.serverFirst), nil
}

func (s *Server) final(msg []byte) ([]byte, error) {
	cf, err := parseClientFinal(msg)
	if err != nil {
		return nil, err
	}
	want := []byte(s.gs2Header)
	if strings.HasPrefix(s.gs2Header, "p=") {
		if s.ChannelBinding == nil {
			return nil, fmt.Errorf("%w: server binding removed during the exchange", ErrChannelBinding)
		}
		want = append(want, s.ChannelBinding.Data...)
	}
	if subtle.ConstantTimeCompare(cf.cbind, want) != 1 {
		return nil, fmt.Errorf("%w: c= differs from the GS2 header and binding data (channel-bindings-dont-match)", ErrChannelBinding)
	}
	if cf.nonce != s.nonce {
		return nil, fmt.Errorf("%w: client-final-message nonce differs from the server-first-message", ErrNonce)
	}
	authMessage := s.clientBare + "," + s.serverFirst + "," + cf.withoutProof
	clientKey := hmacSHA256(s.creds.StoredKey, authMessage)
	for i := range clientKey {
		clientKey[i] ^= cf.proof[i]
	}
	storedKey := sha256.Sum256(clientKey)
	if !hmac.Equal(storedKey[:], s.creds.StoredKey) {
		return nil, fmt.Errorf("%w for %q (invalid-proof)", ErrInvalidProof, s.username)
	}
	s.authenticated = true
	return []byte("v=" + encodeBase64(hmacSHA256(s.creds.ServerKey, authMessage))), nil
}

// clientFirst is a parsed client-first-message.
type clientFirst struct {
	gs2Header string // with both commas
	flag      byte   // 'n', 'y' or 'p'
	cbName    string // for 'p'
	authzid   string // unescaped, "" if absent
	bare      string // client-first-message-bare
	username  string // unescaped
	nonce     string
}

// parseClientFirst parses a client-first-message:
//
//	client-first-message = gs2-header client-first-message-bare
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
func parseClientFirst(msg []byte) (clientFirst, error) {
	const what = "client-first-message"
	if err := checkMessage(what, msg); err != nil {
		return clientFirst{}, err
	}
	s := string(msg)
	var cf clientFirst
	i := strings.IndexByte(s, ',')
	if i < 0 {
		return clientFirst{}, fmt.Errorf("%w: %s has no GS2 header", ErrMalformed, what)
	}
	switch flag := s[:i]; {
	case flag == "n", flag == "y":
		cf.flag = flag[0]
	case strings.HasPrefix(flag, "p=") && validCBName(flag[2:]):
		cf.flag, cf.cbName = 'p', flag[2:]
	default:
		return clientFirst{}, fmt.Errorf("%w: %s does not start with n, y or p=<cb-name>", ErrMalformed, what)
	}
	j := strings.IndexByte(s[i+1:], ',')
	if j < 0 {
		return clientFirst{}, fmt.Errorf("%w: %s GS2 header is not terminated", ErrMalformed, what)
	}
	j += i + 1
	if az := s[i+1 : j]; az != "" {
		if !strings.HasPrefix(az, "a=") {
			return clientFirst{}, fmt.Errorf("%w: %s GS2 header has %q where a= or nothing belongs", ErrMalformed, what, az)
		}
		name, err := unescapeSASLName(az[2:])
		if err != nil {
			return clientFirst{}, fmt.Errorf("%s authzid: %w", what, err)
		}
		cf.authzid = name
	}
	cf.gs2Header = s[:j+1]
	cf.bare = s[j+1:]
	if cf.bare == "" {
		return clientFirst{}, fmt.Errorf("%w: %s has no user name and nonce", ErrMalformed, what)
	}
	attrs, err := splitAttrs(what, cf.bare)
	if err != nil {
		return clientFirst{}, err
	}
	if attrs[0].name == 'm' {
		return clientFirst{}, fmt.Errorf("%w: %s starts with m= (extensions-not-supported)", ErrExtension, what)
	}
	if len(attrs) < 2 || attrs[0].name != 'n' || attrs[1].name != 'r' {
		return clientFirst{}, fmt.Errorf("%w: %s is not n=...,r=...", ErrMalformed, what)
	}
	if err := checkExtensions(what, attrs[2:], "nr"); err != nil {
		return clientFirst{}, err
	}
	if cf.username, err = unescapeSASLName(attrs[0].value); err != nil {
		return clientFirst{}, fmt.Errorf("%s user name: %w", what, err)
	}
	cf.nonce = attrs[1].value
	if !isPrintable(cf.nonce) {
		return clientFirst{}, fmt.Errorf("%w: %s nonce has a non-printable character", ErrMalformed, what)
	}
	return cf, nil
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	cbind        []byte // decoded c=
	nonce        string
	withoutProof string // client-final-message-without-proof
	proof        []byte
}

// parseClientFinal parses a client-final-message:
//
//	client-final-message = channel-binding "," nonce ["," extensions] "," proof
func parseClientFinal(msg []byte) (clientFinal, error) {
	const what = "client-final-message"
	if err := checkMessage(what, msg); err != nil {
		return clientFinal{}, err
	}
	s := string(msg)
	attrs, err := splitAttrs(what, s)
	if err != nil {
		return clientFinal{}, err
	}
	last := len(attrs) - 1
	if len(attrs) < 3 || attrs[0].name != 'c' || attrs[1].name != 'r' || attrs[last].name != 'p' {
		return clientFinal{}, fmt.Errorf("%w: %s is not c=...,r=...,p=...", ErrMalformed, what)
	}
	if err := checkExtensions(what, attrs[2:last], "crp"); err != nil {
		return clientFinal{}, err
	}
	var cf clientFinal
	if cf.cbind, err = decodeBase64(attrs[0].value); err != nil {
		return clientFinal{}, fmt.Errorf("%s channel binding: %w", what, err)
	}
	cf.nonce = attrs[1].value
	if !isPrintable(cf.nonce) {
		return clientFinal{}, fmt.Errorf("%w: %s nonce has a non-printable character", ErrMalformed, what)
	}
	if cf.proof, err = decodeBase64(attrs[last].value); err != nil {
		return clientFinal{}, fmt.Errorf("%s proof: %w", what, err)
	}
	if len(cf.proof) != keyLen {
		return clientFinal{}, fmt.Errorf("%w: %s proof is %d bytes, not %d", ErrMalformed, what, len(cf.proof), keyLen)
	}
	cf.withoutProof = s[:len(s)-len(attrs[last].value)-3]
	return cf, nil
}
