package smtpsecure

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// A Client is one SMTP session, made by Dialer.Dial. By the time a caller
// holds one, TLS is up and verified (unless an Insecure option said
// otherwise) and AUTH is done. It can send many messages, one after the
// other.
//
// A Client is not safe for use by several goroutines at once. When a call
// fails because of the network, the server's protocol or a reply that ends
// the session (421), the session is closed: every later call returns an
// error that matches ErrClientClosed and the error that ended it, and Err
// returns that error. Before the first write of each call the Client checks,
// without waiting, that the server has not closed the idle session; if it
// has, nothing is written and the error matches ErrIdleClosed.
type Client struct {
	conn     net.Conn      // the current connection: a *tls.Conn once TLS is up
	raw      net.Conn      // the TCP connection, which never changes
	peeker   *socketPeeker // looks at raw's socket for the idle check; nil if it cannot
	peekerOK bool          // peeker was made (at the first idle check)
	r        *wire.Reader
	dw       *wire.DataWriter  // message encoder, reused
	cw       *wire.ChunkWriter // BDAT chunker, reused
	ebuf     []byte            // the pipelined envelope, reused
	wbuf     []byte            // small writes assembled, reused
	lineBuf  []string          // the RCPT lines of a message, reused
	opsBuf   []string          // the verbs of a pipelined group, reused
	repsBuf  []*wire.Reply     // the replies of a pipelined group, reused
	rcptBuf  []envAddr         // the parsed recipients of a message, reused
	txBuf    txState           // the open transaction's state (tx points here)
	// The first backing arrays of the buffers above, and room for a
	// command line and a BDAT header, inside the Client: a session's
	// commands and its first messages to a few recipients allocate no
	// buffers of their own.
	rcptArr [4]envAddr
	lineArr [4]string
	opsArr  [8]string
	repsArr [8]*wire.Reply
	cmdArr  [256]byte
	hdrArr  [32]byte

	tw       taggedWriter // the writer stream copies into, reused
	op       sendOp       // the message under way in Send
	host     string       // host:port, for errors
	ehloName string
	log      *slog.Logger
	greetTO  time.Duration
	cmdTO    time.Duration
	dataTO   time.Duration

	ext         wire.Extensions
	tlsState    *tls.ConnectionState // nil, or &tlsStateBuf once TLS is up
	tlsStateBuf tls.ConnectionState
	serverAuth  ServerAuth  // how the server was authenticated
	daneMatch   *dane.Match // with DANE, how the chain matched
	verifiedAs  string      // the name the certificate was verified for
	authMech    string
	// peerName is the name the server gave for itself: the first word of
	// its greeting, replaced by the domain of each EHLO reply. It goes into
	// TLS reports (receiving-mx-helo).
	peerName string

	authHost     string // the Dialer's Host without port, for Auth
	insecureAuth bool   // the Dialer's InsecureAuth

	tx   *txState    // the open mail transaction, nil if none
	data *dataWriter // the open Data writer, nil if none
	err  error       // the error that ended the session; ErrClientClosed after Close or Quit

	// sentEnd is set while the end of a message has been sent and its
	// final reply has not been read: a network failure then leaves the
	// delivery uncertain.
	sentEnd bool
	// quitSent is set once QUIT went out in the group that ends a message
	// (see send): its reply follows the message's, and nothing more may be
	// sent.
	quitSent bool
	// flightWritten is set by flight's writer goroutine once the whole
	// group is written.
	flightWritten atomic.Bool
}

// txState is what a MAIL command declared.
type txState struct {
	smtputf8 bool
	reject8  bool // the body must be 7-bit
	binary   bool // BODY=BINARYMIME: no normalisation, BDAT only
	accepted int  // recipients accepted so far
}

func newClient(conn net.Conn, p *plan, d *Dialer) *Client {
	c := &Client{
		conn:     conn,
		raw:      conn,
		r:        wire.NewReader(conn),
		host:     p.addr,
		ehloName: p.ehlo,
		log:      d.Logger,
		greetTO:  orDefault(d.GreetingTimeout, DefaultGreetingTimeout),
		cmdTO:    orDefault(d.CommandTimeout, DefaultCommandTimeout),
		dataTO:   orDefault(d.DataTimeout, DefaultDataTimeout),

		authHost:     p.host,
		insecureAuth: d.InsecureAuth,
	}
	c.lineBuf, c.opsBuf, c.repsBuf, c.rcptBuf = c.lineArr[:0], c.opsArr[:0], c.repsArr[:0], c.rcptArr[:0]
	return c
}

// sized returns b emptied, with room for n octets: b itself when it has
// it, else a new slice of exactly that capacity, so that a buffer that
// must grow grows once.
func sized(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:0]
	}
	return make([]byte, 0, n)
}

// Extension reports whether the server offered an SMTP extension in its
// EHLO reply after TLS, and the extension's parameters.
func (c *Client) Extension(name string) (bool, string) {
	return c.ext.Has(name), c.ext.Param(name)
}

// Extensions returns the EHLO keywords the server offered after TLS,
// upper-case and sorted.
func (c *Client) Extensions() []string { return c.ext.Keywords() }

// TLSConnectionState returns the TLS state and true, or false when the
// session is not encrypted (only possible with an Insecure option).
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// Verified reports whether the session is TLS with an authenticated server:
// by the Web PKI, or by DANE (see ServerAuth).
func (c *Client) Verified() bool { return c.tlsState != nil && c.serverAuth != ServerAuthNone }

// ServerAuth returns how the server was authenticated: ServerAuthNone
// (plaintext, or TLS with InsecureSkipVerify), ServerAuthWebPKI,
// ServerAuthDANEEE or ServerAuthDANETA.
func (c *Client) ServerAuth() ServerAuth {
	if c.tlsState == nil {
		return ServerAuthNone
	}
	return c.serverAuth
}

// DANEMatch returns the TLSA record that authenticated the server, and
// where in the chain it matched, for a session authenticated by
// Dialer.DANE; nil otherwise.
func (c *Client) DANEMatch() *dane.Match { return c.daneMatch }

// AuthMechanism returns the SASL mechanism the session authenticated with,
// or "".
func (c *Client) AuthMechanism() string { return c.authMech }

func (c *Client) logCmd(ctx context.Context, shown string) {
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "smtp command", slog.String("host", c.host), slog.String("command", sanitize(shown)))
	}
}

func (c *Client) logReply(ctx context.Context, rep *wire.Reply) {
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "smtp reply", slog.String("host", c.host), slog.Int("code", rep.Code), slog.String("text", rep.Text()))
	}
}
