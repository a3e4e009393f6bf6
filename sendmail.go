package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/smtp"
	"strconv"
)

// SendMail has the signature and the meaning of net/smtp.SendMail, but it
// is secure: port 465 uses implicit TLS and every other port requires
// STARTTLS; the certificate is verified against the system's roots for the
// host in addr; a server that cannot do that gets nothing but QUIT and the
// error is a *DowngradeError.
//
// addr is "host:port". a may be nil, a net/smtp Auth (smtp.PlainAuth,
// smtp.CRAMMD5Auth) or any other smtp.Auth: keep importing net/smtp for
// them, and call this SendMail where net/smtp's was called. net/smtp's
// PlainAuth is told the host as written in addr, so its host check passes
// with the same name in both places. As with net/smtp, the message goes to
// nobody unless every recipient is accepted (the error is then a
// *RecipientsError). The default timeouts of Dialer apply; use a Dialer
// for a context, other roots (TLSConfig.RootCAs), or a development server
// without TLS (InsecurePlaintext).
func SendMail(addr string, a smtp.Auth, from string, to []string, msg []byte) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return optionsErr("SendMail address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return optionsErr("SendMail address %q: invalid port", addr)
	}
	if len(to) == 0 {
		return optionsErr("SendMail: no recipients")
	}
	d := &Dialer{Host: host, Port: port}
	if a != nil {
		d.Auth = NetSMTPAuth(a)
	}
	_, err = d.Send(context.Background(), &Envelope{From: from, To: to, AllOrNothing: true}, bytes.NewReader(msg))
	var dg *DowngradeError
	if errors.As(err, &dg) {
		dg.dropIn = true // its advice must not speak of a Dialer
	}
	return err
}
