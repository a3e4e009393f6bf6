// Package smtpsecure sends mail over SMTP and cannot be talked into
// plaintext.
//
// # The secure default
//
// A Dialer with only Host set is secure:
//
//   - port 465 uses implicit TLS (RFC 8314); every other port, 587 by
//     default, requires STARTTLS (RFC 3207);
//   - the certificate chain is verified against the system roots (or
//     TLSConfig.RootCAs) and the host name against Host, exactly as the
//     caller wrote it (as A-labels for international names; never a CNAME
//     or MX target); SNI is sent as that name, never as an IP address;
//   - TLS 1.2 is the minimum;
//   - everything the server said before TLS is forgotten, and the
//     capabilities come from the EHLO after TLS;
//   - no credential, envelope address or message byte is written before all
//     of that succeeded.
//
// When security cannot be had, the error is a *DowngradeError. Its Reason
// says which step failed (STARTTLS not offered, refused, response
// injection, handshake, certificate untrusted, expired or for another name,
// policy), its Err gives the cause (the server's reply, the x509 or TLS
// error), and ReportResultType gives the RFC 8460 result type for a TLS
// report. Nothing but QUIT is sent after such a failure, and nothing is
// ever retried in the clear.
//
//	var dg *smtpsecure.DowngradeError
//	if errors.As(err, &dg) {
//		log.Printf("%s: refused to send: %v (%s)", dg.Host, dg.Reason, dg.ReportResultType())
//	}
//
// # Sending
//
// Dialer.SendMail connects, sends one message and quits. Dialer.Dial returns
// a Client: one session, already secured and authenticated, that can send
// many messages with Client.Send. Messages are streamed from an io.Reader:
// line endings become CRLF, lines starting with a dot are dot-stuffed (or
// the message goes in BDAT chunks when the server offers CHUNKING), so no
// content can end the data early (SMTP smuggling). Envelope commands are
// pipelined when the server offers PIPELINING.
//
// The package-level SendMail has net/smtp's signature: replacing the import
// of net/smtp with this package makes an application secure without other
// changes.
//
// # Authentication
//
// Dialer.Auth authenticates after TLS: PasswordAuth picks the strongest of
// SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN and LOGIN that the server
// offers; PlainAuth, LoginAuth, ScramAuth, OAuthBearerAuth (OAUTHBEARER or
// XOAUTH2) and XOAuth2Auth name one; SASLAuth takes any go-sasl client and
// NetSMTPAuth any net/smtp Auth. Credentials go only over TLS with a
// verified certificate. Logs never contain them.
//
// # Weakening it, on purpose
//
// Every option that lowers security is named Insecure…, so that it is
// visible in the caller's code and in review:
//
//   - InsecureSkipVerify: encrypt without checking the certificate;
//   - InsecureOpportunisticTLS: continue in plaintext when STARTTLS is
//     missing or refused;
//   - InsecurePlaintext: never start TLS;
//   - InsecureAuth: send credentials over plaintext or unverified TLS.
//
// No zero value, port number, nil field or server reply selects any of
// them.
//
// # Errors
//
// Every error is typed and names the host: *DowngradeError, *SMTPError
// (the server's reply with its code, enhanced status code and text),
// *AuthError, *ExtensionError (the message needs SMTPUTF8, 8BITMIME,
// REQUIRETLS or DSN and the server lacks it: nothing is sent),
// *RecipientsError, *AddressError (an envelope address with CR, LF, NUL or
// bad syntax, refused before anything is sent), *ProtocolError (a
// malformed or oversized reply, or a code the command cannot get, such as
// 354 to MAIL: the session is closed), *ConnError (network failure,
// timeout), and *UncertainDeliveryError (the connection failed after the
// message was sent and before the server answered). A 421 reply ends the
// session as the server asks. errors.Is works with the package's sentinel errors
// (ErrDowngrade, ErrAuthFailed, ErrTimeout, …) and with the causes
// (context.Canceled, os.ErrDeadlineExceeded). Mistakes in the caller's own
// configuration or call order match ErrInvalidOptions or ErrSequence and
// send nothing.
//
// # Time
//
// Every call that can block takes a context.Context; cancelling it
// interrupts the I/O at once and closes the session. Each phase also has its
// own bound: ConnectTimeout (30 s), CommandTimeout (60 s, for the greeting,
// the handshake and each reply) and DataTimeout (10 minutes, for the reply
// after the message). Replies are limited in line length, number of lines
// and total size, so a hostile server cannot make the client allocate
// without bound.
package smtpsecure
