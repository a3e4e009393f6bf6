package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// Security selects how a Dialer secures the connection. Every mode verifies
// the server's certificate chain and host name unless InsecureSkipVerify is
// set.
type Security int

const (
	// SecurityAuto, the zero value, uses implicit TLS when the port is 465
	// and required STARTTLS on any other port.
	SecurityAuto Security = iota
	// SecurityImplicitTLS starts TLS before the first SMTP byte (RFC 8314,
	// "submissions" on port 465).
	SecurityImplicitTLS
	// SecuritySTARTTLS requires STARTTLS (RFC 3207): a server that does not
	// offer it, refuses it, or fails the handshake gives a *DowngradeError.
	SecuritySTARTTLS
)

// String returns the mode's name.
func (s Security) String() string {
	switch s {
	case SecurityAuto:
		return "auto"
	case SecurityImplicitTLS:
		return "implicit TLS"
	case SecuritySTARTTLS:
		return "STARTTLS"
	}
	return "Security(" + strconv.Itoa(int(s)) + ")"
}

// Default timeouts; each can be changed on the Dialer.
const (
	DefaultConnectTimeout  = 30 * time.Second
	DefaultGreetingTimeout = 30 * time.Second
	DefaultCommandTimeout  = 60 * time.Second
	DefaultDataTimeout     = 10 * time.Minute
)

// A Dialer connects to an SMTP server and returns a session that is secured,
// verified and, if Auth is set, authenticated. Its zero value, with Host set,
// is secure: implicit TLS on port 465, required STARTTLS elsewhere, the
// certificate chain and host name verified, TLS 1.2 or later. Every way to
// weaken that is a field whose name starts with Insecure.
//
// A Dialer may be used by several goroutines at once; it is not changed by
// use.
type Dialer struct {
	// Host is the server's host name (or IP address). It is the name the
	// certificate is verified against and the SNI sent, in A-label form; it
	// is never replaced by a CNAME or MX target. "host:port" is accepted when
	// Port is 0.
	Host string
	// Port is the TCP port. Zero means 465 with SecurityImplicitTLS and 587
	// otherwise.
	Port int
	// Security selects implicit TLS or required STARTTLS; the zero value
	// picks by port.
	Security Security

	// TLSConfig is the base TLS configuration. It is cloned, never changed.
	// ServerName defaults to Host; MinVersion is raised to TLS 1.2. Its
	// VerifyConnection hook, if any, runs as Dialer.VerifyConnection does,
	// after it.
	TLSConfig *tls.Config
	// VerifyConnection, when set, is called during the handshake after the
	// server's certificate has been verified (by the Web PKI, or by DANE),
	// as tls.Config.VerifyConnection is: it can refuse a server, never
	// accept one that verification refused. An error aborts the handshake
	// with a *DowngradeError whose Reason is ReasonPolicy and whose Err is
	// the hook's error. A hook that returns nil changes nothing.
	VerifyConnection func(tls.ConnectionState) error
	// DANE, when set, authenticates the server by its DANE TLSA records
	// (RFC 7672) instead of the Web PKI: the certificate chain must satisfy
	// the verifier, SNI is the verifier's ServerName (the TLSA base domain,
	// RFC 7672 §8.1), and the session counts as verified, for AUTH and
	// REQUIRETLS. A chain the records do not authenticate gives a
	// *DowngradeError with ReasonDANE, whose Err is the *dane.VerifyError.
	// Client.ServerAuth and Client.DANEMatch tell how the chain matched.
	// It cannot be combined with InsecureSkipVerify,
	// InsecureOpportunisticTLS, InsecurePlaintext, TLSConfig.InsecureSkipVerify
	// or a TLSConfig.ServerName other than the TLSA base domain.
	DANE *dane.Verifier

	// Auth, when set, authenticates the session after TLS (see PlainAuth,
	// PasswordAuth, OAuthBearerAuth, NetSMTPAuth).
	Auth Auth
	// LocalName is the name sent with EHLO; empty means "localhost". A
	// U-label name is sent as A-labels and an IP address as an address
	// literal.
	LocalName string

	// ConnectTimeout bounds the TCP connection (default 30 s).
	ConnectTimeout time.Duration
	// GreetingTimeout bounds the wait for the server's greeting (default
	// 30 s, as submission clients such as nodemailer use). A server that
	// says nothing on a port other than 465 usually expects implicit TLS,
	// and the error says so. For delivery to MX hosts, RFC 5321
	// §4.5.3.2.1 asks for 5 minutes.
	GreetingTimeout time.Duration
	// CommandTimeout bounds the TLS handshake, each command's reply and
	// each write (default 60 s).
	CommandTimeout time.Duration
	// DataTimeout bounds the wait for the reply after the end of the
	// message (default 10 minutes, RFC 5321 §4.5.3.2.6).
	DataTimeout time.Duration

	// DialContext, when set, makes the TCP connection, for proxies and tests.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives a debug record for every command and reply, with AUTH
	// exchanges redacted. Nil means no logging.
	Logger *slog.Logger

	// InsecureSkipVerify accepts any certificate: the connection is
	// encrypted but not authenticated, and AUTH is refused unless
	// InsecureAuth is set too. Setting TLSConfig.InsecureSkipVerify has the
	// same effect. VerifyConnection hooks still run.
	InsecureSkipVerify bool
	// InsecureOpportunisticTLS continues in plaintext when the server does
	// not offer STARTTLS or refuses it, instead of failing with a
	// *DowngradeError. An attacker on the path can force plaintext.
	InsecureOpportunisticTLS bool
	// InsecurePlaintext never starts TLS, for a local development server
	// (Mailpit, MailHog) on its plaintext port. Everything, credentials
	// included (with InsecureAuth), crosses the network in the clear. It is
	// refused with port 465, SecurityImplicitTLS, an explicit
	// SecuritySTARTTLS, DANE, VerifyConnection, InsecureOpportunisticTLS or
	// InsecureSkipVerify, which contradict it or would do nothing.
	InsecurePlaintext bool
	// InsecureAuth sends credentials over a connection that is plaintext or
	// whose certificate was not verified.
	InsecureAuth bool

	// webPKINames is set only by MX delivery, for a host whose local
	// "verify" rule names certificate names other than the host's own (see
	// Deliverer.DialHost): the chain is verified against TLSConfig.RootCAs
	// as crypto/tls verifies it, and the certificate must then be valid for
	// one of these names instead of the server name. It widens the names,
	// never skips verification.
	webPKINames []string
}

// target returns the host (without port) and the port to connect to.
func (d *Dialer) target() (string, int, error) {
	host, port := d.Host, d.Port
	if host == "" {
		return "", 0, optionsErr("Dialer.Host is empty")
	}
	if port == 0 {
		if h, p, err := net.SplitHostPort(host); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return "", 0, optionsErr("invalid port in Dialer.Host %q", d.Host)
			}
			host, port = h, n
		}
	}
	if port == 0 {
		port = 587
		if d.Security == SecurityImplicitTLS {
			port = 465
		}
	}
	if port < 0 || port > 65535 {
		return "", 0, optionsErr("invalid Dialer.Port %d", d.Port)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if strings.ContainsAny(host, "\r\n\x00 /") || host == "" {
		return "", 0, optionsErr("invalid Dialer.Host %q", d.Host)
	}
	return host, port, nil
}

// mode returns the effective security mode for port.
func (d *Dialer) mode(port int) (Security, error) {
	switch d.Security {
	case SecurityAuto:
		if port == 465 {
			return SecurityImplicitTLS, nil
		}
		return SecuritySTARTTLS, nil
	case SecurityImplicitTLS:
		return SecurityImplicitTLS, nil
	case SecuritySTARTTLS:
		return SecuritySTARTTLS, nil
	}
	return 0, optionsErr("unknown Dialer.Security %d", int(d.Security))
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// ehloName returns the EHLO argument: A-labels or an address literal.
func (d *Dialer) ehloName() (string, error) {
	name := d.LocalName
	if name == "" {
		return "localhost", nil
	}
	if addr, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		if addr.Is4() {
			return "[" + addr.String() + "]", nil
		}
		return "[IPv6:" + addr.String() + "]", nil
	}
	a, err := idn.ToASCII(name)
	if err != nil {
		return "", optionsErr("Dialer.LocalName: %w", err)
	}
	return a, nil
}

// plan is a Dialer's configuration checked and resolved for one session.
type plan struct {
	host, addr string // host without port; host:port
	mode       Security
	tls        *tlsPlan // nil with InsecurePlaintext, else &tlsBuf
	ehlo       string
	tlsBuf     tlsPlan // tls, in the same allocation
}

// prepare checks the configuration before anything is dialled.
func (d *Dialer) prepare() (*plan, error) {
	host, port, err := d.target()
	if err != nil {
		return nil, err
	}
	p := &plan{host: host, addr: net.JoinHostPort(host, strconv.Itoa(port))}
	if p.mode, err = d.mode(port); err != nil {
		return nil, err
	}
	if err := d.checkInsecure(port); err != nil {
		return nil, err
	}
	if p.ehlo, err = d.ehloName(); err != nil {
		return nil, err
	}
	if !d.InsecurePlaintext {
		if err = d.tlsFor(&p.tlsBuf, host); err != nil {
			return nil, err
		}
		p.tls = &p.tlsBuf
	}
	return p, nil
}

// checkInsecure refuses combinations of options that contradict each
// other, or that would silently do nothing, before anything is dialled.
func (d *Dialer) checkInsecure(port int) error {
	if d.DANE != nil {
		switch {
		case d.InsecureSkipVerify:
			return optionsErr("Dialer.DANE cannot be combined with InsecureSkipVerify: DANE authenticates the server, and skipping verification would throw that away")
		case d.InsecureOpportunisticTLS:
			return optionsErr("Dialer.DANE cannot be combined with InsecureOpportunisticTLS: a host with usable TLSA records must not be reached in plaintext (RFC 7672 §2.2)")
		case d.InsecurePlaintext:
			return optionsErr("Dialer.DANE cannot be combined with InsecurePlaintext")
		}
	}
	if !d.InsecurePlaintext {
		return nil
	}
	switch {
	case port == 465:
		return optionsErr("InsecurePlaintext cannot be used with port 465, which speaks implicit TLS (RFC 8314); connect to the server's plaintext port")
	case d.Security == SecurityImplicitTLS:
		return optionsErr("InsecurePlaintext cannot be combined with SecurityImplicitTLS")
	case d.Security == SecuritySTARTTLS:
		return optionsErr("InsecurePlaintext cannot be combined with SecuritySTARTTLS, which requires TLS; leave Security at SecurityAuto")
	case d.InsecureOpportunisticTLS:
		return optionsErr("InsecurePlaintext cannot be combined with InsecureOpportunisticTLS: choose plaintext, or TLS when offered")
	case d.InsecureSkipVerify:
		return optionsErr("InsecurePlaintext cannot be combined with InsecureSkipVerify, which would do nothing without TLS")
	case d.VerifyConnection != nil:
		return optionsErr("InsecurePlaintext cannot be combined with VerifyConnection, which would never run without TLS")
	}
	return nil
}

// Dial connects to the server and returns a session that is secured,
// verified and, if Auth is set, authenticated, ready for Send or Mail.
// Errors are *DowngradeError, *AuthError, *SMTPError, *ProtocolError or
// *ConnError; on error nothing is left open.
func (d *Dialer) Dial(ctx context.Context) (*Client, error) {
	p, err := d.prepare()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, orDefault(d.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	var conn net.Conn
	if d.DialContext != nil {
		conn, err = d.DialContext(dctx, "tcp", p.addr)
	} else {
		var nd net.Dialer
		conn, err = nd.DialContext(dctx, "tcp", p.addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &ConnError{Host: p.addr, Op: "connecting", Err: err}
	}
	return d.newClient(ctx, conn, p)
}

// NewClient runs the session setup of Dial (greeting, EHLO, TLS, AUTH) over
// a connection the caller made, for example through a proxy. The connection
// is closed on error. Host (and Port, for the choice of implicit TLS) must
// still be set: they name the server to verify.
func (d *Dialer) NewClient(ctx context.Context, conn net.Conn) (*Client, error) {
	p, err := d.prepare()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return d.newClient(ctx, conn, p)
}

func (d *Dialer) newClient(ctx context.Context, conn net.Conn, p *plan) (*Client, error) {
	c, err := d.open(ctx, conn, p)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// open runs the session setup and AUTH over conn. On error the session is
// closed, and the Client is returned all the same, so that MX delivery can
// report what the server said before it failed (Client.peerName).
func (d *Dialer) open(ctx context.Context, conn net.Conn, p *plan) (*Client, error) {
	c := newClient(conn, p, d)
	if err := c.setup(ctx, p.mode, p.tls, d.InsecureOpportunisticTLS); err != nil {
		c.abort()
		var ce *ConnError
		if errors.As(err, &ce) && ce.notStarted {
			// The context ended before the setup began: the connection
			// made for it is closed, and no session remains.
			err = &ConnError{Host: ce.Host, Op: ce.Op, Err: ce.Err}
		}
		return c, err
	}
	if d.Auth != nil {
		if err := c.Auth(ctx, d.Auth); err != nil {
			c.quitQuietly(ctx)
			return c, err
		}
	}
	return c, nil
}

// Send connects, sends one message and quits. The message is streamed from
// msg: line endings are normalised to CRLF and it is dot-stuffed or sent
// with BDAT.
//
// As with Client.Send, a nil error means that the message was accepted for
// at least one recipient, and the result lists the accepted and the refused
// ones; a non-nil error means that it was delivered to nobody (a
// *RecipientsError when every recipient was refused), except an
// *UncertainDeliveryError. Set env.AllOrNothing to send only if every
// recipient is accepted.
//
// When the server offers PIPELINING, QUIT goes in the same write as the end
// of the message (RFC 2920 §3.1), which saves its round trip. The outcome
// is still the server's reply to the message: a failing QUIT changes
// nothing, and a 221 where that reply was due makes the delivery uncertain.
func (d *Dialer) Send(ctx context.Context, env *Envelope, msg io.Reader) (*SendResult, error) {
	if err := env.validate(); err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	// QUIT goes out with the end of the message when the server offers
	// PIPELINING (see Client.send); the outcome is the message's reply, and
	// a failing QUIT cannot change it.
	res, err := c.send(ctx, env, msg, true)
	c.quitQuietly(ctx)
	c.releaseBuffers()
	if err != nil {
		return nil, err
	}
	return res, nil
}
