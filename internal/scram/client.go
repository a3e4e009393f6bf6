package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Mechanism names (RFC 7677).
const (
	Mechanism     = "SCRAM-SHA-256"
	MechanismPlus = "SCRAM-SHA-256-PLUS"
)

// Bounds on the iteration count a server may ask the client for. RFC 7677
// section 4 asks for at least 4096; the upper bound caps the PBKDF2 work a
// hostile server can demand (about a few seconds of one core).
const (
	MinIterations = 4096
	MaxIterations = 10_000_000
)

// nonceBytes is the number of random bytes in a nonce (base64: 32 characters).
const nonceBytes = 24

// keyLen is the SHA-256 output size, the length of every SCRAM key.
const keyLen = sha256.Size

type clientState int

const (
	clientInit      clientState = iota // Start not called (or failed)
	clientSentFirst                    // client-first-message sent
	clientSentFinal                    // client-final-message sent
	clientDone                         // server signature verified
	clientFailed                       // any error after Start
)

// Client is the client side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS. It
// implements sasl.Client. A Client runs one exchange at a time and is not
// safe for concurrent use; Start begins a new exchange.
type Client struct {
	username, password, authzid string
	cb                          *ChannelBinding
	couldBind                   bool

	testNonce string // tests only: the client nonce to use instead of a random one

	state           clientState
	prepPassword    string
	gs2Header       string
	clientFirst     string // gs2Header + clientFirstBare
	clientFirstBare string
	nonce           string
	resent          bool
	serverSignature []byte
}

// NewClient returns a client for SCRAM-SHA-256, or SCRAM-SHA-256-PLUS when cb
// is non-nil (normally from TLSExporter). authzid is the identity to act as;
// leave it empty to act as username.
//
// clientCouldBind sets the GS2 flag used without cb: true ("y") when TLS is up
// and TLSExporter works, so the client could bind but the server did not
// advertise SCRAM-SHA-256-PLUS — a server that does support binding then
// detects that the -PLUS mechanism was stripped from its list; false ("n")
// when the client cannot bind.
//
// The user name and password are checked with SASLprep when Start is called.
// The returned value is a *Client.
func NewClient(username, password, authzid string, cb *ChannelBinding, clientCouldBind bool) sasl.Client {
	c := &Client{username: username, password: password, authzid: authzid, couldBind: clientCouldBind}
	if cb != nil {
		c.cb = &ChannelBinding{Type: cb.Type, Data: append([]byte(nil), cb.Data...)}
	}
	return c
}

// Start begins the exchange: it prepares the user name, password and
// authorization identity with SASLprep, draws a fresh nonce and returns the
// mechanism name and the client-first-message as the initial response.
func (c *Client) Start() (mech string, ir []byte, err error) {
	c.state = clientInit
	c.resent = false
	c.serverSignature = nil

	user, err := saslprep(c.username)
	if err != nil {
		return "", nil, fmt.Errorf("scram: user name: %w", err)
	}
	if user == "" {
		return "", nil, fmt.Errorf("scram: user name: %w: empty after preparation", ErrSASLprep)
	}
	pass, err := saslprep(c.password)
	if err != nil {
		return "", nil, fmt.Errorf("scram: password: %w", redact(err))
	}
	if pass == "" {
		return "", nil, fmt.Errorf("scram: password: %w: empty after preparation", ErrSASLprep)
	}
	var authz string
	if c.authzid != "" {
		if authz, err = saslprep(c.authzid); err != nil {
			return "", nil, fmt.Errorf("scram: authorization identity: %w", err)
		}
		if authz == "" {
			return "", nil, fmt.Errorf("scram: authorization identity: %w: empty after preparation", ErrSASLprep)
		}
	}

	mech = Mechanism
	var flag string
	switch {
	case c.cb != nil:
		if !validCBName(c.cb.Type) {
			return "", nil, fmt.Errorf("%w: invalid channel binding type %q", ErrChannelBinding, c.cb.Type)
		}
		if len(c.cb.Data) == 0 {
			return "", nil, fmt.Errorf("%w: empty %s binding data", ErrChannelBinding, c.cb.Type)
		}
		mech, flag = MechanismPlus, "p="+c.cb.Type
	case c.couldBind:
		flag = "y"
	default:
		flag = "n"
	}

	nonce := c.testNonce
	if nonce == "" {
		var b [nonceBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", nil, fmt.Errorf("scram: drawing the client nonce: %w", err)
		}
		nonce = encodeBase64(b[:])
	}

	c.prepPassword = pass
	c.nonce = nonce
	c.gs2Header = flag + ","
	if authz != "" {
		c.gs2Header += "a=" + escapeSASLName(authz)
	}
	c.gs2Header += ","
	c.clientFirstBare = "n=" + escapeSASLName(user) + ",r=" + nonce
	c.clientFirst = c.gs2Header + c.clientFirstBare
	c.state = clientSentFirst
	return mech, []byte(c.clientFirst), nil
}

// Next processes a server challenge: the server-first-message, answered with
// the client-final-message, then the server-final-message, whose signature is
// verified in constant time and answered with an empty response. Any error
// ends the exchange; the caller then cancels the authentication.
//
// An empty challenge before the server-first-message asks for the
// client-first-message (a server that did not get it as initial response);
// it is answered once.
func (c *Client) Next(challenge []byte) ([]byte, error) {
	switch c.state {
	case clientInit:
		return nil, errors.New("scram: Next called before a successful Start")
	case clientSentFirst:
		if len(challenge) == 0 && !c.resent {
			c.resent = true
			return []byte(c.clientFirst), nil
		}
		resp, err := c.final(challenge)
		if err != nil {
			c.fail()
			return nil, err
		}
		c.state = clientSentFinal
		return resp, nil
	case clientSentFinal:
		if err := c.verify(challenge); err != nil {
			c.fail()
			return nil, err
		}
		c.state = clientDone
		return []byte{}, nil
	default:
		c.fail()
		return nil, fmt.Errorf("scram: %w after the exchange ended", sasl.ErrUnexpectedServerChallenge)
	}
}

// Complete reports whether the exchange ended with a verified
// server-final-message. Call it when the server reports success (SMTP 235): a
// server that claims success without having proved knowledge of the password
// gets ErrIncomplete, and the session must not be trusted.
func (c *Client) Complete() error {
	if c.state == clientDone {
		return nil
	}
	return ErrIncomplete
}

func (c *Client) fail() {
	c.state = clientFailed
	c.prepPassword = ""
	c.serverSignature = nil
}

// final parses the server-first-message and computes the client-final-message.
func (c *Client) final(serverFirst []byte) ([]byte, error) {
	sf, err := parseServerFirst(serverFirst, c.nonce)
	if err != nil {
		return nil, err
	}
	salted, err := pbkdf2.Key(sha256.New, c.prepPassword, sf.salt, sf.iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("scram: deriving the salted password: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)

	cbindInput := []byte(c.gs2Header)
	if c.cb != nil {
		cbindInput = append(cbindInput, c.cb.Data...)
	}
	withoutProof := "c=" + encodeBase64(cbindInput) + ",r=" + sf.nonce
	authMessage := c.clientFirstBare + "," + string(serverFirst) + "," + withoutProof

	proof := hmacSHA256(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = hmacSHA256(hmacSHA256(salted, "Server Key"), authMessage)
	c.prepPassword = ""
	return []byte(withoutProof + ",p=" + encodeBase64(proof)), nil
}

// verify checks the server-final-message.
func (c *Client) verify(serverFinal []byte) error {
	v, err := parseServerFinal(serverFinal)
	if err != nil {
		return err
	}
	if !hmac.Equal(v, c.serverSignature) {
		return fmt.Errorf("%w: wrong verifier in server-final-message", ErrServerSignature)
	}
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// serverFirst is a parsed server-first-message.
type serverFirst struct {
	nonce      string
	salt       []byte
	iterations int
}

// parseServerFirst parses a server-first-message strictly:
//
//	server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
//
// The nonce must extend clientNonce, the salt must be non-empty base64 and
// the iteration count must lie in [MinIterations, MaxIterations].
func parseServerFirst(msg []byte, clientNonce string) (serverFirst, error) {
	const what = "server-first-message"
	if err := checkMessage(what, msg); err != nil {
		return serverFirst{}, err
	}
	attrs, err := splitAttrs(what, string(msg))
	if err != nil {
		return serverFirst{}, err
	}
	if attrs[0].name == 'm' {
		return serverFirst{}, fmt.Errorf("%w: %s starts with m=", ErrExtension, what)
	}
	if len(attrs) < 3 || attrs[0].name != 'r' || attrs[1].name != 's' || attrs[2].name != 'i' {
		return serverFirst{}, fmt.Errorf("%w: %s is not r=...,s=...,i=...", ErrMalformed, what)
	}
	if err := checkExtensions(what, attrs[3:], "rsi"); err != nil {
		return serverFirst{}, err
	}
	var sf serverFirst
	sf.nonce = attrs[0].value
	if !isPrintable(sf.nonce) {
		return serverFirst{}, fmt.Errorf("%w: %s nonce has a non-printable character", ErrMalformed, what)
	}
	if !strings.HasPrefix(sf.nonce, clientNonce) {
		return serverFirst{}, fmt.Errorf("%w: server nonce does not start with the client nonce", ErrNonce)
	}
	if len(sf.nonce) == len(clientNonce) {
		return serverFirst{}, fmt.Errorf("%w: server added no nonce of its own", ErrNonce)
	}
	if sf.salt, err = decodeBase64(attrs[1].value); err != nil {
		return serverFirst{}, fmt.Errorf("%s salt: %w", what, err)
	}
	if len(sf.salt) == 0 {
		return serverFirst{}, fmt.Errorf("%w: %s salt is empty", ErrMalformed, what)
	}
	n, over, ok := parsePositNumber(attrs[2].value, MaxIterations)
	switch {
	case !ok:
		return serverFirst{}, fmt.Errorf("%w: %s iteration count is not a positive number", ErrMalformed, what)
	case over:
		return serverFirst{}, fmt.Errorf("%w: server asks for more than %d iterations", ErrIterationCount, MaxIterations)
	case n < MinIterations:
		return serverFirst{}, fmt.Errorf("%w: server asks for %d iterations, fewer than %d", ErrIterationCount, n, MinIterations)
	}
	sf.iterations = n
	return sf, nil
}

// parseServerFinal parses a server-final-message and returns the decoded
// verifier, or a *ServerError for "e=":
//
//	server-final-message = (server-error / verifier) ["," extensions]
func parseServerFinal(msg []byte) ([]byte, error) {
	const what = "server-final-message"
	if err := checkMessage(what, msg); err != nil {
		return nil, err
	}
	attrs, err := splitAttrs(what, string(msg))
	if err != nil {
		return nil, err
	}
	if attrs[0].name == 'm' {
		return nil, fmt.Errorf("%w: %s starts with m=", ErrExtension, what)
	}
	if err := checkExtensions(what, attrs[1:], "ve"); err != nil {
		return nil, err
	}
	switch attrs[0].name {
	case 'e':
		return nil, &ServerError{Value: attrs[0].value}
	case 'v':
		v, err := decodeBase64(attrs[0].value)
		if err != nil {
			return nil, fmt.Errorf("%s verifier: %w", what, err)
		}
		if len(v) != keyLen {
			return nil, fmt.Errorf("%w: verifier is %d bytes, not %d", ErrServerSignature, len(v), keyLen)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("%w: %s has neither v= nor e=", ErrServerSignature, what)
	}
}
