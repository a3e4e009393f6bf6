package main

import (
	"context"
	"net/smtp"

	"github.com/smtpsecure/smtpsecure"
)

// submitAuth returns the Auth of an account, nil when the account does not
// authenticate. A password is read now; an OAuth token is read when the
// server asks for authentication, through a token source, so that a
// passwordeval command that mints tokens runs only then.
func (c *cli) submitAuth(ctx context.Context, cfg *submitConfig) (smtpsecure.Auth, error) {
	if cfg.Auth == "" {
		return nil, nil
	}
	token := func(ctx context.Context) (string, error) { return cfg.Password.read(ctx, c.getenv, c.stderr) }
	switch cfg.Auth {
	case "xoauth2":
		return smtpsecure.XOAuth2Auth(cfg.User, token), nil
	case "oauthbearer":
		return smtpsecure.OAuthBearerAuth(cfg.User, token), nil
	}
	if cfg.Password.kind == secretNone {
		return nil, configError("authentication needs a password: set passwordeval or password in the configuration, or pass --password-file or --password-env")
	}
	pw, err := cfg.Password.read(ctx, c.getenv, c.stderr)
	if err != nil {
		return nil, err
	}
	switch cfg.Auth {
	case "plain":
		return smtpsecure.PlainAuth("", cfg.User, pw), nil
	case "login":
		return smtpsecure.LoginAuth(cfg.User, pw), nil
	case "scram-sha-256":
		return smtpsecure.ScramAuth(cfg.User, pw), nil
	case "cram-md5":
		return smtpsecure.NetSMTPAuth(smtp.CRAMMD5Auth(cfg.User, pw)), nil
	}
	return smtpsecure.PasswordAuth(cfg.User, pw), nil
}
