package smtpsecure

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/smtp"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/scram"
	"github.com/smtpsecure/smtpsecure/internal/xoauth2"
)

// Auth authenticates a session. It is given what the server offers and
// returns the SASL client to run; PlainAuth, PasswordAuth and the other
// constructors cover the usual cases, SASLAuth takes any sasl.Client, and
// NetSMTPAuth takes a net/smtp Auth.
type Auth interface {
	// Start chooses a mechanism among those the server offers and returns
	// a SASL client for it. ctx is the context of the authentication, for
	// credentials that must be fetched (an OAuth token). An error wrapping
	// ErrAuthUnavailable says that no mechanism fits; any error ends the
	// authentication before anything is sent, with an *AuthError.
	Start(ctx context.Context, server *ServerInfo) (sasl.Client, error)
}

// ServerInfo is what an Auth is told about the server.
type ServerInfo struct {
	// Host is the server's name as the caller wrote it in Dialer.Host,
	// without the port, the brackets of an IPv6 address or a trailing dot.
	Host string
	// ServerName is the name the server's certificate was verified for:
	// A-labels (the TLSA base domain with Dialer.DANE), or an IP address.
	// It is "" unless Verified.
	ServerName string
	// Mechanisms are the SASL mechanisms offered after TLS, upper-case.
	Mechanisms []string
	// TLS is the connection state, nil when the session is not encrypted.
	TLS *tls.ConnectionState
	// Verified reports whether the server was authenticated (by the Web PKI
	// or by DANE).
	Verified bool
}

// Offers reports whether the server offers the mechanism.
func (s *ServerInfo) Offers(mech string) bool {
	return slices.Contains(s.Mechanisms, strings.ToUpper(mech))
}

func unavailable(s *ServerInfo, want ...string) error {
	return fmt.Errorf("%w: the server offers %v, the credentials can use %v", ErrAuthUnavailable, s.Mechanisms, want)
}

type authFunc func(context.Context, *ServerInfo) (sasl.Client, error)

// Start calls f.
func (f authFunc) Start(ctx context.Context, s *ServerInfo) (sasl.Client, error) { return f(ctx, s) }

// PlainAuth authenticates with PLAIN (RFC 4616). identity is the
// authorization identity, usually "" to act as username. Like every Auth it
// is used only over verified TLS unless Dialer.InsecureAuth is set.
func PlainAuth(identity, username, password string) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		if !s.Offers(sasl.Plain) {
			return nil, unavailable(s, sasl.Plain)
		}
		return sasl.NewPlainClient(identity, username, password), nil
	})
}

// LoginAuth authenticates with the obsolete LOGIN mechanism, for servers
// that offer nothing better.
func LoginAuth(username, password string) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		if !s.Offers(sasl.Login) {
			return nil, unavailable(s, sasl.Login)
		}
		return &loginClient{sasl.NewLoginClient(username, password), username}, nil
	})
}

// loginClient answers a "Username:" prompt that some servers send even
// after an initial response, and leaves the rest to go-sasl.
type loginClient struct {
	sasl.Client
	username string
}

// Next answers the server's prompts.
func (l *loginClient) Next(challenge []byte) ([]byte, error) {
	if strings.EqualFold(string(challenge), "Username:") {
		return []byte(l.username), nil
	}
	if strings.EqualFold(string(challenge), "Password:") {
		challenge = []byte("Password:")
	}
	return l.Client.Next(challenge)
}

// ScramAuth authenticates with SCRAM-SHA-256-PLUS (bound to the TLS
// connection, RFC 9266) when the server offers it, else SCRAM-SHA-256. The
// password never leaves the client, and the server proves that it knows
// it. It never falls back to a weaker mechanism.
func ScramAuth(username, password string) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		if c := scramClient(s, username, password); c != nil {
			return c, nil
		}
		return nil, unavailable(s, "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
	})
}

// scramClient returns a started SCRAM client for the best variant the
// server offers, or nil. Channel binding (RFC 9266 tls-exporter) is used on
// TLS 1.3 only: on TLS 1.2 servers expect tls-unique. A client whose
// credentials SASLprep cannot prepare is nil too, so that PasswordAuth can
// fall back to PLAIN.
func scramClient(s *ServerInfo, username, password string) sasl.Client {
	var cb *scram.ChannelBinding
	if s.TLS != nil && s.TLS.Version >= tls.VersionTLS13 {
		cb, _ = scram.TLSExporter(s.TLS)
	}
	var c sasl.Client
	switch {
	case cb != nil && s.Offers(scram.MechanismPlus):
		c = scram.NewClient(username, password, "", cb, true)
	case s.Offers(scram.Mechanism):
		c = scram.NewClient(username, password, "", nil, cb != nil)
	default:
		return nil
	}
	mech, ir, err := c.Start()
	if err != nil {
		return nil
	}
	return &startedClient{Client: c, mech: mech, ir: ir}
}

// PasswordAuth authenticates with the strongest mechanism the server offers
// for a user name and password: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN,
// then LOGIN.
func PasswordAuth(username, password string) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		if c := scramClient(s, username, password); c != nil {
			return c, nil
		}
		switch {
		case s.Offers(sasl.Plain):
			return sasl.NewPlainClient("", username, password), nil
		case s.Offers(sasl.Login):
			return &loginClient{sasl.NewLoginClient(username, password), username}, nil
		}
		return nil, unavailable(s, "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", sasl.Plain, sasl.Login)
	})
}

// TokenSource returns an OAuth 2.0 access token. OAuthBearerAuth and
// XOAuth2Auth call it at each authentication, with that authentication's
// context, so that a long-running program hands out a fresh token and
// refreshes an expired one. With golang.org/x/oauth2, for example:
//
//	func(ctx context.Context) (string, error) {
//		t, err := src.Token() // an oauth2.TokenSource, which refreshes
//		if err != nil {
//			return "", err
//		}
//		return t.AccessToken, nil
//	}
//
// An error ends the authentication before anything is sent, as an
// *AuthError that wraps it. For a token that does not change, use
// StaticToken.
type TokenSource func(ctx context.Context) (string, error)

// StaticToken returns a TokenSource that always returns token, for
// short-lived programs and tests.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// fetch calls the token source and checks its result.
func (ts TokenSource) fetch(ctx context.Context) (string, error) {
	if ts == nil {
		return "", errors.New("no TokenSource given")
	}
	tok, err := ts(ctx)
	if err != nil {
		return "", fmt.Errorf("getting the OAuth 2.0 access token: %w", err)
	}
	if tok == "" {
		return "", errors.New("the TokenSource returned an empty OAuth 2.0 access token")
	}
	return tok, nil
}

// OAuthBearerAuth authenticates with an OAuth 2.0 access token from token,
// called at each authentication: OAUTHBEARER (RFC 7628) when the server
// offers it, else XOAUTH2 (Gmail, Microsoft 365).
func OAuthBearerAuth(username string, token TokenSource) Auth {
	return authFunc(func(ctx context.Context, s *ServerInfo) (sasl.Client, error) {
		oauthBearer := s.Offers(sasl.OAuthBearer)
		if !oauthBearer && !s.Offers("XOAUTH2") {
			return nil, unavailable(s, sasl.OAuthBearer, "XOAUTH2")
		}
		tok, err := token.fetch(ctx)
		if err != nil {
			return nil, err
		}
		if oauthBearer {
			return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: username, Token: tok}), nil
		}
		return xoauth2.NewClient(username, tok), nil
	})
}

// XOAuth2Auth authenticates with XOAUTH2 only, with an OAuth 2.0 access
// token from token, called at each authentication.
func XOAuth2Auth(username string, token TokenSource) Auth {
	return authFunc(func(ctx context.Context, s *ServerInfo) (sasl.Client, error) {
		if !s.Offers("XOAUTH2") {
			return nil, unavailable(s, "XOAUTH2")
		}
		tok, err := token.fetch(ctx)
		if err != nil {
			return nil, err
		}
		return xoauth2.NewClient(username, tok), nil
	})
}

// SASLAuth runs any SASL client, for mechanisms this package does not name.
// The client's Start is called once, to learn its mechanism.
func SASLAuth(c sasl.Client) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		mech, ir, err := c.Start()
		if err != nil {
			return nil, err
		}
		if !s.Offers(mech) {
			return nil, unavailable(s, mech)
		}
		return &startedClient{Client: c, mech: mech, ir: ir}, nil
	})
}

type startedClient struct {
	sasl.Client
	mech string
	ir   []byte
}

// Start returns what the wrapped client's Start returned.
func (c *startedClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }

// Complete passes the mutual-authentication check through.
func (c *startedClient) Complete() error {
	if m, ok := c.Client.(mutualAuth); ok {
		return m.Complete()
	}
	return nil
}

// NetSMTPAuth adapts a net/smtp Auth (smtp.PlainAuth, smtp.CRAMMD5Auth, or
// one of the caller's own). What net/smtp's PlainAuth checks is given as
// net/smtp's dialling would give it:
//
//   - ServerInfo.Name is the host as the caller wrote it (without port,
//     brackets or trailing dot) when that is the name the certificate was
//     verified for, compared as A-labels without regard to case; otherwise
//     it is the verified name, as A-labels. So smtp.PlainAuth("", user,
//     pass, "smtp.example.com") works with Dialer{Host:
//     "smtp.example.com:587"}, and an international name works when it is
//     written the same way in both places. Without verification (an
//     Insecure option) it is the host as written.
//   - ServerInfo.TLS is true only on TLS with a verified server.
func NetSMTPAuth(a smtp.Auth) Auth {
	return authFunc(func(_ context.Context, s *ServerInfo) (sasl.Client, error) {
		return &netSMTPClient{a: a, info: &smtp.ServerInfo{Name: netSMTPName(s), TLS: s.TLS != nil && s.Verified, Auth: s.Mechanisms}}, nil
	})
}

// netSMTPName is the name net/smtp's Auth is told: the host as written when
// it is the verified name, else the verified name.
func netSMTPName(s *ServerInfo) string {
	if s.ServerName == "" || sameName(s.Host, s.ServerName) {
		return s.Host
	}
	return s.ServerName
}

// sameName reports whether two host names (or IP addresses) are the same:
// as A-labels without regard to case, or as addresses.
func sameName(a, b string) bool {
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x == y
	}
	return idn.Equal(a, b)
}

type netSMTPClient struct {
	a    smtp.Auth
	info *smtp.ServerInfo
}

// Start runs the net/smtp Auth's Start and checks that the server offers its mechanism.
func (c *netSMTPClient) Start() (string, []byte, error) {
	mech, ir, err := c.a.Start(c.info)
	if err != nil {
		return "", nil, err
	}
	if !slices.Contains(c.info.Auth, strings.ToUpper(mech)) {
		return "", nil, fmt.Errorf("%w: the server offers %v, the net/smtp Auth uses %s", ErrAuthUnavailable, c.info.Auth, mech)
	}
	return mech, ir, nil
}

// Next passes a challenge to the net/smtp Auth, which expects more data.
func (c *netSMTPClient) Next(challenge []byte) ([]byte, error) { return c.a.Next(challenge, true) }

// succeeded is net/smtp's last call, with the 235 text and more=false.
func (c *netSMTPClient) succeeded(text []byte) error {
	_, err := c.a.Next(text, false)
	return err
}

// completer is implemented by SASL clients that must see the end of the
// exchange: a mutual-authentication mechanism must have checked the
// server's proof before a 235 is believed.
type completer interface{ succeeded(text []byte) error }

// mutualAuth is implemented by mechanisms in which the server proves
// itself (SCRAM): Complete fails unless that proof was checked.
type mutualAuth interface{ Complete() error }

// maxAuthLine is the longest AUTH command sent with an initial response;
// longer responses are sent after the server's first 334 (RFC 4954 §4).
const maxAuthLine = 512

// maxAuthRounds bounds a hostile server's challenges.
const maxAuthRounds = 16

// Auth authenticates the session. Dial does this when Dialer.Auth is set;
// call it for a session dialled without Auth. Credentials are sent only
// over TLS with a verified certificate unless Dialer.InsecureAuth was set.
func (c *Client) Auth(ctx context.Context, a Auth) error {
	return c.auth(ctx, a, c.authHost, c.insecureAuth)
}

func (c *Client) auth(ctx context.Context, a Auth, host string, insecureOK bool) error {
	if err := c.usable("AUTH"); err != nil {
		return err
	}
	if c.authMech != "" {
		return &AuthError{Host: c.host, Err: errors.New("already authenticated (RFC 4954 allows one AUTH per session)")}
	}
	if c.tx != nil {
		return &AuthError{Host: c.host, Err: errors.New("AUTH is not allowed during a mail transaction")}
	}
	if !c.Verified() && !insecureOK {
		why := "the session is not encrypted"
		if c.tlsState != nil {
			why = "the server's certificate was not verified"
		}
		return &AuthError{Host: c.host, Err: fmt.Errorf("%w (%s; set Dialer.InsecureAuth to allow it)", ErrInsecureAuth, why)}
	}
	if !c.ext.Has("AUTH") {
		return &AuthError{Host: c.host, Err: fmt.Errorf("%w: the server does not offer AUTH", ErrAuthUnavailable)}
	}
	info := &ServerInfo{Host: host, ServerName: c.verifiedAs, Mechanisms: c.ext.AuthMechanisms(), TLS: c.tlsState, Verified: c.Verified()}
	sc, err := a.Start(ctx, info)
	if err != nil {
		return &AuthError{Host: c.host, Err: err}
	}
	mech, ir, err := sc.Start()
	if err != nil {
		return &AuthError{Host: c.host, Mechanism: mech, Err: err}
	}
	mech = strings.ToUpper(mech)
	if !info.Offers(mech) {
		return &AuthError{Host: c.host, Mechanism: mech, Err: unavailable(info, mech)}
	}
	return c.call(ctx, "AUTH", func() error {
		return c.saslExchange(ctx, sc, mech, ir)
	})
}

// saslExchange runs AUTH: the command, the 334 challenges and the final
// reply (RFC 4954 §4). Nothing the client sends is logged.
func (c *Client) saslExchange(ctx context.Context, sc sasl.Client, mech string, ir []byte) error {
	line := "AUTH " + mech
	shown := line
	var pendingIR []byte
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "=" // STD-17: an empty initial response
		}
		if len(line)+1+len(enc)+2 <= maxAuthLine {
			line += " " + enc
			shown += " [redacted]"
		} else {
			pendingIR = ir
		}
	}
	fail := func(err error) error { return &AuthError{Host: c.host, Mechanism: mech, Err: err} }
	rep, err := c.cmd(ctx, line, shown)
	for round := 0; err == nil; round++ {
		switch {
		case rep.Code == 235:
			if comp, ok := sc.(completer); ok {
				if err := comp.succeeded([]byte(rep.Text())); err != nil {
					return fail(err)
				}
			}
			if m, ok := sc.(mutualAuth); ok {
				if err := m.Complete(); err != nil {
					return fail(fmt.Errorf("the server reported success without proving that it knows the password: %w", err))
				}
			}
			c.authMech = mech
			return nil
		case rep.Code == 334 && round < maxAuthRounds:
			var resp []byte
			if pendingIR != nil {
				resp, pendingIR = pendingIR, nil
			} else {
				chal, derr := base64.StdEncoding.DecodeString(strings.Join(rep.Lines, ""))
				if derr != nil {
					c.cancelAuth(ctx)
					return &ProtocolError{Host: c.host, Op: "AUTH " + mech, Err: fmt.Errorf("challenge is not base64: %w", derr)}
				}
				if resp, err = sc.Next(chal); err != nil {
					// STD-19: "*" cancels the exchange.
					c.cancelAuth(ctx)
					return fail(err)
				}
			}
			rep, err = c.cmd(ctx, base64.StdEncoding.EncodeToString(resp), "[redacted]")
		case rep.Code == 334:
			c.cancelAuth(ctx)
			return &ProtocolError{Host: c.host, Op: "AUTH " + mech, Err: errors.New("too many challenges")}
		default:
			uerr := c.unexpected("AUTH "+mech, rep)
			var se *SMTPError
			if !errors.As(uerr, &se) {
				return uerr // not a reply AUTH can get
			}
			// XOAUTH2 reports the provider's reason (expired token, missing
			// scope) in a challenge before the failure.
			if pe, ok := sc.(interface{ Err() error }); ok && pe.Err() != nil {
				return fail(fmt.Errorf("%w (the provider said: %w)", se, pe.Err()))
			}
			return fail(se)
		}
	}
	return err
}

// cancelAuth sends "*" and reads the server's answer (501 expected).
func (c *Client) cancelAuth(ctx context.Context) {
	if c.err == nil {
		c.cmd(ctx, "*", "*")
	}
}
