// Package smtptest is a scriptable, in-process SMTP server for tests of an
// SMTP client, in particular of its security promise: that it never sends a
// credential, an envelope address or a message byte in the clear when it was
// told to require TLS.
//
// # Starting a server
//
// A Server listens on 127.0.0.1 with a port chosen by the system. The zero
// value, with the extensions a test wants, is a small but correct RFC 5321
// server:
//
//	ca, _ := testpki.NewCA("test root")
//	leaf, _ := ca.Issue(testpki.LeafOptions{DNSNames: []string{"mx.test.example"}})
//	srv := &smtptest.Server{
//		TLSConfig:  leaf.ServerConfig(), // offers STARTTLS
//		Extensions: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"},
//		TLSExtensions: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
//			"AUTH PLAIN LOGIN"}, // AUTH only after STARTTLS
//		Users: map[string]string{"alice": "secret"},
//		Logf:  t.Logf,
//	}
//	if err := srv.Start(); err != nil { t.Fatal(err) }
//	t.Cleanup(func() { srv.Close() })
//	// connect the client under test to srv.Addr(), trusting ca.Pool()
//
// Close waits for every goroutine of the server, so a test that defers it
// never logs after it returned and never leaks a goroutine.
//
// # What is recorded
//
// Each accepted connection is a Session. Session.Plaintext holds every byte
// the client sent before TLS began and Session.Encrypted every byte it sent
// inside TLS, so a test can prove that, say, no "AUTH" or "MAIL" ever
// crossed the network in the clear. Session.Commands lists the command lines,
// each marked with whether it arrived over TLS; Session.Err says how the
// session ended. Server.Messages lists the messages accepted, with their
// envelope, parameters and content. Server.WaitSessions lets a test wait for
// sessions to end instead of sleeping.
//
// # Default behaviour
//
// The greeting is "220 <Hostname> ESMTP smtptest". EHLO lists Extensions
// before TLS (plus STARTTLS when TLSConfig is set) and TLSExtensions inside
// TLS; after STARTTLS the client must send EHLO again, and AUTH or MAIL
// before it get 503 (RFC 3207 section 4.2). AUTH supports PLAIN, LOGIN,
// CRAM-MD5, XOAUTH2 and OAUTHBEARER against Users, plus any mechanism in
// Server.Mechanisms (for example a SCRAM server), but only those listed on an
// AUTH line of the current extension list (RFC 4954). MAIL and RCPT record
// their parameters and answer 555 to a parameter whose extension was not
// advertised; DATA is read strictly (only CRLF "." CRLF ends it) and BDAT
// (RFC 3030) reads exactly the announced octets. Replies carry enhanced
// status codes when ENHANCEDSTATUSCODES is advertised.
//
// # Misbehaving on purpose
//
// A Hook sees every command (and the pseudo-commands CONNECT before the
// greeting and EOD after the message data) and may take it over: answer with
// any reply, write garbage with Conn.Write, start TLS at an unexpected
// moment with Conn.StartTLS, hang up with Conn.Close or Conn.Reset, or stop
// answering with Conn.Stall to test the client's timeouts:
//
//	srv.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
//		if cmd.Verb == "STARTTLS" {
//			return "454 4.7.0 TLS not available right now", true
//		}
//		return "", false // default handling
//	}
//
// Package mitm, beside this one, puts a man in the middle between a client
// and such a server to strip or inject bytes on the wire.
package smtptest
