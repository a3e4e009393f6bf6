package main

import (
	"context"
	"net/smtp"

	"github.com/smtpsecure/smtpsecure"
)

// submitAuth returns the Auth of an account, reading its password (or
// OAuth token) now; nil when the account does not authenticate.
func (c *cli) submitAuth(ctx context.Context, cfg *submitConfig) (smtpsecure.Auth, error) {
	if cfg.Auth == "" {
		return nil, nil
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
	case "xoauth2":
		return smtpsecure.XOAuth2Auth(cfg.User, pw), nil
	case "oauthbearer":
		return smtpsecure.OAuthBearerAuth(cfg.User, pw), nil
	}
	return smtpsecure.PasswordAuth(cfg.User, pw), nil
}
