package smtpsecure

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

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
	DefaultConnectTimeout = 30 * time.Second
	DefaultCommandTimeout = 60 * time.Second
	DefaultDataTimeout    = 10 * time.Minute
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
	// ServerName defaults to Host; MinVersion is raised to TLS 1.2.
	TLSConfig *tls.Config
	// VerifyConnection, when set, authenticates the server in place of the
	// Web PKI chain and name checks: it is called during the handshake and
	// an error aborts it with a *DowngradeError (ReasonPolicy). This is how
	// DANE plugs in (see package dane). The connection still counts as
	// verified for AUTH.
	VerifyConnection func(tls.ConnectionState) error

	// Auth, when set, authenticates the session after TLS (see PlainAuth,
	// PasswordAuth, OAuthBearerAuth, NetSMTPAuth).
	Auth Auth
	// LocalName is the name sent with EHLO; empty means "localhost". A
	// U-label name is sent as A-labels and an IP address as an address
	// literal.
	LocalName string

	// ConnectTimeout bounds the TCP connection (default 30 s).
	ConnectTimeout time.Duration
	// CommandTimeout bounds the greeting, the TLS handshake, each command's
	// reply and each write (default 60 s).
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
	// same effect.
	InsecureSkipVerify bool
	// InsecureOpportunisticTLS continues in plaintext when the server does
	// not offer STARTTLS or refuses it, instead of failing with a
	// *DowngradeError. An attacker on the path can force plaintext.
	InsecureOpportunisticTLS bool
	// InsecurePlaintext never starts TLS. It cannot be combined with
	// SecurityImplicitTLS.
	InsecurePlaintext bool
	// InsecureAuth sends credentials over a connection that is plaintext or
	// whose certificate was not verified.
	InsecureAuth bool
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
		if d.InsecurePlaintext {
			return 0, optionsErr("InsecurePlaintext cannot be combined with SecurityImplicitTLS")
		}
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

// serverName returns the name to verify and send as SNI: the caller's
// TLSConfig.ServerName or the host, as A-labels; "" plus the address for an
// IP literal (no SNI is sent for an IP address, RFC 6066 §3).
func serverName(cfgName, host string) (string, error) {
	name := cfgName
	if name == "" {
		name = host
	}
	if addr, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return addr.String(), nil
	}
	a, err := idn.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("smtpsecure: server name for TLS: %w", err)
	}
	return a, nil
}

// tlsConfig builds the TLS configuration for one connection and reports
// whether the certificate will be verified.
func (d *Dialer) tlsConfig(host string) (*tls.Config, bool, error) {
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	name, err := serverName(cfg.ServerName, host)
	if err != nil {
		return nil, false, err
	}
	cfg.ServerName = name
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12 {
		return nil, false, optionsErr("Dialer.TLSConfig.MaxVersion is below TLS 1.2")
	}
	verified := !(d.InsecureSkipVerify || cfg.InsecureSkipVerify)
	if d.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	if d.VerifyConnection != nil {
		own, theirs := d.VerifyConnection, cfg.VerifyConnection
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := own(cs); err != nil {
				return err
			}
			if theirs != nil {
				return theirs(cs)
			}
			return nil
		}
		verified = true
	}
	return cfg, verified, nil
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
		return "", fmt.Errorf("smtpsecure: Dialer.LocalName: %w", err)
	}
	return a, nil
}

// plan is a Dialer's configuration checked and resolved for one session.
type plan struct {
	host, addr string // host without port; host:port
	mode       Security
	cfg        *tls.Config // nil with InsecurePlaintext
	verified   bool        // cfg verifies the server
	ehlo       string
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
	if p.ehlo, err = d.ehloName(); err != nil {
		return nil, err
	}
	if !d.InsecurePlaintext {
		if p.cfg, p.verified, err = d.tlsConfig(host); err != nil {
			return nil, err
		}
	}
	return p, nil
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
	c := newClient(conn, p.addr, d)
	c.ehloName = p.ehlo
	if err := c.setup(ctx, p.mode, p.cfg, p.verified, d.InsecureOpportunisticTLS); err != nil {
		c.abort()
		return nil, err
	}
	if d.Auth != nil {
		if err := c.Auth(ctx, d.Auth); err != nil {
			c.quitQuietly(ctx)
			return nil, err
		}
	}
	return c, nil
}

// SendMail connects, sends one message from msg to the recipients, and
// quits. The message is streamed from msg: line endings are normalised to
// CRLF and it is dot-stuffed or sent with BDAT. If the server refuses some
// recipients the message still goes to the others and the error is a
// *RecipientsError listing the refused ones (Delivered reports whether the
// others got it).
func (d *Dialer) SendMail(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := d.Send(ctx, &Envelope{From: from, To: to}, msg)
	return err
}

// Send connects, sends one message with the envelope's options, and quits.
// It returns what the server said about each recipient and the message.
func (d *Dialer) Send(ctx context.Context, env *Envelope, msg io.Reader) (*SendResult, error) {
	if err := env.validate(); err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Send(ctx, env, msg)
	// The outcome is settled; a failing QUIT cannot change it.
	c.quitQuietly(ctx)
	return res, err
}
