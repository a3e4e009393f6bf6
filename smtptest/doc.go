// Package smtptest runs SMTP servers on loopback for the tests of code that
// sends mail with smtpsecure: what net/http/httptest is to HTTP. A server
// has a certificate from a throwaway certificate authority, hands out a
// Dialer that trusts it, records everything it receives, and can be told to
// refuse, fail or hang up where a test wants.
//
// # Starting a server and sending to it
//
// NewServer starts a server on 127.0.0.1 that offers STARTTLS, with a
// certificate for "localhost", 127.0.0.1 and ::1; NewTLSServer starts one
// that speaks implicit TLS, as on port 465. To change a setting first, use
// NewUnstartedServer, set the fields, then call Start or StartTLS. Close
// stops the server and waits for all its goroutines:
//
//	srv := smtptest.NewUnstartedServer()
//	srv.Users = map[string]string{"me@example.com": "secret"} // offers AUTH, inside TLS only
//	srv.Start()
//	t.Cleanup(srv.Close)
//
//	d := srv.Dialer() // an *smtpsecure.Dialer that points at srv and trusts its CA
//	d.Auth = smtpsecure.PlainAuth("", "me@example.com", "secret")
//	_, err := d.Send(ctx, &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}, msg)
//
// Dialer weakens nothing: the certificate is verified for the server's name
// as the library always does, only against the server's CA instead of the
// system's roots. Code under test that builds its own Dialer needs Addr (or
// Port) and RootCAs.
//
// # Reading what arrived
//
// Messages lists the messages the server accepted, with their envelope, the
// data exactly as received (Message.Data; Message.Header parsed with
// net/mail), and how they came: over which TLS version (Message.TLS), as
// which user (Message.AuthUser), after which EHLO name. WaitMessages waits
// for messages sent from another goroutine; no test needs to sleep.
//
// Sessions lists one Session per connection. Session.Plaintext holds every
// byte the client sent before TLS and Session.Encrypted every byte it sent
// inside TLS, so a test can prove that no credential, envelope address or
// message byte crossed the network in the clear. WaitSessions waits until
// sessions have ended, when everything the client sent is recorded.
//
// # Making it fail
//
// Server.Respond is called before each answer and may replace it with a
// Response: a 4xx or 5xx reply to any command (a recipient refused, a sender
// refused, a message refused at EndOfData), a 421 that ends the session, a
// hang-up at any point (before the final reply, it leaves the client unsure
// whether the message was delivered), or a delay to test timeouts:
//
//	srv.Respond = func(c smtptest.Command) smtptest.Response {
//		if c.Verb == "RCPT" && c.Address == "nobody@example.net" {
//			return smtptest.Response{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
//		}
//		return smtptest.Response{} // the server's own answer
//	}
//
// DisableSTARTTLS makes the server look like one without TLS, or like any
// server seen through a man in the middle who strips STARTTLS: the client
// must fail with an *smtpsecure.DowngradeError and send nothing else.
// Extensions sets what EHLO offers (PIPELINING, CHUNKING, SMTPUTF8,
// 8BITMIME, "SIZE n", DSN, REQUIRETLS, BINARYMIME), and AuthMechanisms the
// SASL mechanisms. CloseClientConnections hangs up on every open session.
//
// # Code that calls the drop-in SendMail
//
// smtpsecure.SendMail, like net/smtp.SendMail, trusts only the system's
// roots, so it cannot reach a test server. Code that calls it through a
// variable (var sendMail = smtpsecure.SendMail) is tested by setting the
// variable to Server.SendMail, which behaves the same but trusts the
// server's CA.
//
// # What it is not
//
// A Server keeps every message in memory and listens on loopback only. It
// is a fixture for tests, not a mail server, and its certificate authority
// must never be trusted outside a test.
package smtptest
