// Package bench compares smtpsecure with other Go SMTP clients (net/smtp,
// github.com/emersion/go-smtp, github.com/wneessen/go-mail) on the same
// STARTTLS server. It is its own module so that users of smtpsecure never
// download the peers it imports.
//
// The server is an allocation-light sink run in a child process (the test
// binary started again), so that the CPU time each benchmark reports
// (cpu-ns/msg, from getrusage) is the client's alone. The child also runs
// the MX host of a DANE domain and a DNS server answering for it as a
// validating resolver, for BenchmarkDeliver (MX delivery with a new
// session per message, or through an MXPool). Round trips per
// message (RT/msg) are measured, not inferred: the *RoundTrips benchmarks
// and BenchmarkPool go through a proxy that delays each direction by half
// a round-trip time and counts the turns of the conversation (server data
// after client data).
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench
