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
// DANE, the caller's policy), its Err gives the cause (the server's reply,
// the x509 or TLS error, the *dane.VerifyError), and ReportResultType gives
// the RFC 8460 result type for a TLS report (package tlsrpt). Nothing but
// QUIT is sent after such a failure, and nothing is ever retried in the
// clear.
//
//	var dg *smtpsecure.DowngradeError
//	if errors.As(err, &dg) {
//		log.Printf("%s: refused to send: %v (%s)", dg.Host, dg.Reason, dg.ReportResultType())
//	}
//
// # Sending
//
// Dialer.Send connects, sends one message and quits. Dialer.Dial returns a
// Client: one session, already secured and authenticated, that sends many
// messages with Client.Send. Both have one shape:
//
//	res, err := d.Send(ctx, &smtpsecure.Envelope{From: from, To: to}, msg)
//
// A nil error means the message was accepted for at least one recipient;
// res.Rejected lists the recipients the server refused, which did not get
// it. A partial delivery is a result, not an error, so it never invites a
// resend and a duplicate. A non-nil error means the message was delivered
// to nobody (a *RecipientsError when every recipient was refused), with one
// exception: an *UncertainDeliveryError says that the connection failed
// after the whole message was sent and before the server's verdict.
// Envelope.AllOrNothing sends the message only if every recipient is
// accepted, as net/smtp does.
//
// Messages are streamed from an io.Reader: line endings become CRLF, lines
// starting with a dot are dot-stuffed (or the message goes in BDAT chunks
// when the server offers CHUNKING), so no content can end the data early
// (SMTP smuggling). The envelope and the message go in one round trip when
// the server offers PIPELINING. SIZE is declared only when it is known
// exactly (a *bytes.Reader, *strings.Reader or *bytes.Buffer, say), or
// given in MailOptions.Size.
//
// # Delivering to MX hosts
//
// Deliver sends a message straight to the MX hosts of each recipient's
// domain, as a mail server does, under the domain's published policy: DANE
// (RFC 7672) where DNSSEC proves TLSA records, MTA-STS (RFC 8461) otherwise,
// and local rules (policy.Rules) above both. A Deliverer carries the
// configuration; its zero value uses the system's resolvers and roots:
//
//	d := &smtpsecure.Deliverer{TLSReports: recorder} // one field for TLS reports
//	results, err := d.Deliver(ctx, env, bytes.NewReader(msg))
//	for _, r := range results {
//		switch r.Outcome {
//		case smtpsecure.OutcomeDelivered: // r.Host, r.ServerAuth (DANE-EE, DANE-TA, Web PKI, none)
//		case smtpsecure.OutcomeTemporary: // keep the message, try again later
//		case smtpsecure.OutcomePermanent: // bounce, with r.Err's enhanced status
//		}
//	}
//
// For each domain, package policy makes a plan: the MX hosts in order, and
// for each what a session requires and which rule decided it. Deliver tries
// the hosts, and each host's addresses, in that order, never one the plan
// excludes; the Dialer enforces each host's requirement during the TLS
// handshake, so a host that fails it (no STARTTLS, a certificate that DANE
// or the Web PKI does not authenticate) gets nothing of the message, and the
// next host is tried. A domain that publishes nothing still gets STARTTLS,
// without certificate checks (its MX hosts were found through DNS nothing
// authenticates); plaintext happens only under a local rule named insecure-….
// Every recipient's result says what happened, where, how the server was
// authenticated and under which rule; a failure is a *DeliveryError, with
// an enhanced status code for a bounce and the typed cause (a
// *DowngradeError, an *SMTPError, a *policy.Error) underneath.
//
// Most receivers now expect a DKIM signature (RFC 6376) on mail delivered
// to their MX hosts. Deliverer.Signer signs each message once, before the
// first session, so that every host gets the same signed octets, and
// without holding the message in memory:
//
//	d.Signer = &smtpsecure.DKIMSigner{Domain: "example.org", Selector: "mail", Key: key} // RSA or Ed25519
//
// The public key goes in DNS at mail._domainkey.example.org. Any other
// MessageSigner can take its place; SignMessage signs a message the same
// way for Dialer.Send, through a server that does not sign.
//
// MailOptions.RequireTLS (RFC 8689) limits a message to hosts whose plan
// allows it and that advertise REQUIRETLS, or fails it with 5.7.30. Every
// session attempt yields a TLS-RPT result (RFC 8460), given to
// Deliverer.TLSReports (a *tlsrpt.Recorder) and logged; MailTLSReport sends
// the reports themselves, signed by the Signer. DialHost dials one host of
// a plan under its requirement, for a program that checks a domain's hosts.
//
// Deliverer.Pool, an *MXPool, keeps sessions open for the next messages to
// the same MX host, and reuses a session only for a message whose
// requirement it met: a session made for a domain without a policy never
// carries mail for a host that another domain's DANE or MTA-STS policy
// protects (MXPool has the rule).
//
// # Migrating from net/smtp
//
// The package-level SendMail has net/smtp.SendMail's signature and
// meaning (the message goes to nobody unless every recipient is accepted),
// and takes net/smtp's Auth values, so code that calls
//
//	smtp.SendMail(addr, smtp.PlainAuth("", user, pass, host), from, to, msg)
//
// keeps importing net/smtp for PlainAuth and calls smtpsecure.SendMail
// instead. Importing this package under the name smtp is not enough:
// its PlainAuth has another signature. What changes is that TLS is
// required and verified against the system's roots only (a local
// development server without TLS, such as Mailpit or MailHog, needs a
// Dialer with InsecurePlaintext on its port), and that every step has a
// timeout.
//
// # Authentication
//
// Dialer.Auth authenticates after TLS: PasswordAuth picks the strongest of
// SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN and LOGIN that the server
// offers; PlainAuth, LoginAuth, ScramAuth, OAuthBearerAuth (OAUTHBEARER or
// XOAUTH2) and XOAuth2Auth name one; SASLAuth takes any go-sasl client and
// NetSMTPAuth any net/smtp Auth. OAuth tokens come from a TokenSource,
// called with the context at each authentication, so that an expired token
// is refreshed (StaticToken wraps a fixed one). Credentials go only over
// TLS with an authenticated server. Logs never contain them.
//
// # How the server is authenticated
//
// By default the server's certificate must chain to a trusted root and be
// valid for Host (the Web PKI). Dialer.VerifyConnection, like
// tls.Config.VerifyConnection, runs after that check and can only refuse a
// server: its error is a *DowngradeError with ReasonPolicy.
//
// Dialer.DANE authenticates the server by its DNSSEC-signed TLSA records
// instead (RFC 7672), with a *dane.Verifier from package dane: SNI is the
// TLSA base domain, and a chain the records do not authenticate is a
// *DowngradeError with ReasonDANE. Client.ServerAuth says how the server of
// a session was authenticated (none, Web PKI, DANE-EE, DANE-TA), and
// Client.DANEMatch which record matched.
//
// # Weakening it, on purpose
//
// Every option that lowers security is named Insecure…, so that it is
// visible in the caller's code and in review:
//
//   - InsecureSkipVerify: encrypt without authenticating the server;
//   - InsecureOpportunisticTLS: continue in plaintext when STARTTLS is
//     missing or refused;
//   - InsecurePlaintext: never start TLS, for a development server on its
//     plaintext port (refused with port 465, an explicit Security, DANE and
//     the other Insecure options, which it contradicts);
//   - InsecureAuth: send credentials over plaintext or unauthenticated TLS.
//
// No zero value, port number, nil field or server reply selects any of
// them.
//
// # Errors
//
// Every error is typed and names the host once: *DowngradeError,
// *SMTPError (the server's refusal, with its code, enhanced status code and
// text), *AuthError, *ExtensionError (the message needs SMTPUTF8,
// 8BITMIME, REQUIRETLS or DSN and the server lacks it: nothing is sent),
// *RecipientsError (nobody got the message), *AddressError (an envelope
// address with CR, LF, NUL or bad syntax, refused before anything is
// sent), *ProtocolError (a malformed or oversized reply, or a code the
// command cannot get, such as 354 to MAIL: the session is closed),
// *ConnError (network failure, timeout), *MessageError (the caller's
// reader failed: nothing was delivered), *SignError (the message could not
// be signed: nothing was sent) and *UncertainDeliveryError; Deliver's
// per-recipient failures are *DeliveryErrors around them.
// errors.Is works with the package's sentinel errors (ErrDowngrade,
// ErrRefused, ErrAuthFailed, ErrTimeout, …) and with the causes
// (context.Canceled, os.ErrDeadlineExceeded). Mistakes in the caller's own
// configuration or call order match ErrInvalidOptions or ErrSequence and
// send nothing.
//
// # Sessions that last
//
// A reply that ends the session (421), a network failure or a protocol
// error closes it: every later call returns an error matching
// ErrClientClosed and the error that ended it, and Client.Err returns that
// error. Before the first write of each call, a Client checks without
// waiting whether the server closed the session while it was idle; if so,
// nothing is written and the error is a *ConnError matching ErrIdleClosed:
// the message was not sent and may be sent on a new session. Client.Err
// runs the same check, for a pool that reuses sessions.
//
// # Time
//
// Every call that can block takes a context.Context; cancelling it
// interrupts the I/O at once and closes the session, and the error then
// wraps the context's error. Each phase also has its own bound:
// ConnectTimeout (30 s), GreetingTimeout (30 s), CommandTimeout (60 s, for
// the handshake and each reply) and DataTimeout (10 minutes, for the reply
// after the message); MX delivery uses those of RFC 5321 §4.5.3.2 (5
// minutes for the greeting and each reply, 10 after the message). Replies are limited in line length, number of lines
// and total size, so a hostile server cannot make the client allocate
// without bound.
package smtpsecure
