// Package mxworld is an in-process world of recipient domains for tests of
// MX delivery: a DNS server that answers as a validating resolver on
// loopback would, one SMTP server per MX host, each with its own
// certificate and behaviour, HTTPS MTA-STS policy hosts, and a dial hook
// that maps the documentation addresses published in DNS (192.0.2.0/24,
// 2001:db8::/32, 198.51.100.0/24) to the loopback listeners.
//
// The world is data: Domains lists every recipient domain, what it
// publishes (signed or unsigned zone, MX records, TLSA records, MTA-STS),
// how its hosts behave (no STARTTLS, a 421 greeting, 550 to RCPT, down,
// REQUIRETLS offered) and what delivery to it must do (Expect). A test
// starts it with New and configures the code under test with exactly four
// things:
//
//	w := mxworld.New(t)
//	resolver := &dane.Resolver{Servers: []string{w.ResolverAddr()}}
//	roots := w.RootCAs()          // MX certificates and policy hosts
//	dial := w.DialContext         // "192.0.2.7:25" -> the host's listener
//	cache := w.MTASTSCacheDir()   // optional: seeded MTA-STS cache
//
// and then asserts on the recording of each MX host (MX): its sessions,
// with every byte the client sent before and inside TLS, and the messages
// it accepted; Leaks lists any mail-transaction command that reached a host
// in plaintext.
//
// Test support sits above the packages it exercises: mxworld imports dane
// (to derive TLSA records) and mta_sts (to seed a policy cache); no library
// package imports it.
package mxworld
