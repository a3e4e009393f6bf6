// Package scram implements the SASL mechanisms SCRAM-SHA-256 and
// SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with the "tls-exporter" channel
// binding of RFC 9266: a client for the library and a server for its tests.
//
// # Why SCRAM
//
// With PLAIN the server learns the password. With SCRAM the client proves it
// knows the password without sending it, and the server proves in turn that it
// knows the stored verifier, so an impostor who got a certificate for the host
// name still cannot complete the exchange. SCRAM-SHA-256-PLUS also binds the
// proof to the TLS connection: a man in the middle who terminates TLS with a
// certificate the client accepts gets a proof that does not verify at the real
// server.
//
// # Using the client
//
// After TLS is up and EHLO listed the mechanisms:
//
//	cs := tlsConn.ConnectionState()
//	cb, cbErr := scram.TLSExporter(&cs)
//	var c sasl.Client
//	switch {
//	case cbErr == nil && offered(scram.MechanismPlus):
//		c = scram.NewClient(user, pass, "", cb, true) // SCRAM-SHA-256-PLUS
//	case offered(scram.Mechanism):
//		// "y" when we could have bound: a server that supports -PLUS
//		// will notice that -PLUS was removed from its list.
//		c = scram.NewClient(user, pass, "", nil, cbErr == nil)
//	}
//
// Run c through the AUTH exchange (Start, then Next for each 334 challenge).
// The server's last challenge carries its signature; Next verifies it and
// answers with an empty response. When the server then reports success (235),
// call c.(*scram.Client).Complete: it fails with ErrIncomplete if the server
// claimed success without proving that it knows the password.
//
// Every error is wrapped around one of the exported sentinels (ErrNonce,
// ErrIterationCount, ErrServerSignature, ErrChannelBinding, ...) or is a
// *ServerError carrying the server's "e=" reason; use errors.Is and errors.As.
// Errors never contain the password, keys or proofs.
//
// # Limits the client enforces
//
// The server's nonce must extend the client's 24-byte random nonce, the salt
// must be non-empty, the iteration count must lie in [MinIterations,
// MaxIterations] (so a hostile server can neither weaken the verifier nor burn
// the client's CPU), a mandatory extension ("m=") fails the exchange, and
// messages are limited to 8 KiB.
//
// # SASLprep
//
// User names, passwords and authorization identities are prepared with
// SASLprep (RFC 4013) before use. The standard library has no Unicode NFKC
// tables, so this package carries its own small ones: printable ASCII, the
// roughly 90,000 Unicode 3.2 characters that are their own NFKC form in every
// context (precomposed Latin, Greek, Cyrillic, Hebrew, Arabic, CJK, Hangul,
// kana, symbols ...), and the NFKC forms of about 400 compatibility characters
// people do type (fullwidth ASCII, "ª", "½", ligatures, roman numerals). Non-ASCII
// spaces become U+0020, soft hyphens and other invisible characters are
// removed, prohibited characters and the bidirectional rule are enforced as
// RFC 4013 says. Strings outside those tables — combining marks (decomposed
// "a" + U+0308 instead of "ä"), characters unassigned in Unicode 3.2 such as
// emoji — fail with ErrSASLprepUnsupported instead of being normalised
// wrongly; such users can use PLAIN over TLS.
//
// # Server
//
// Server and Credentials are the server side for in-process test servers:
// NewCredentials derives the stored keys, NewServer answers a client, and
// Server.Next has the shape of go-sasl's sasl.Server.
package scram
