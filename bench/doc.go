// Package bench compares smtpsecure with other Go SMTP clients on the same
// loopback TLS server. It is its own module so that users of smtpsecure
// never download the peers it imports.
//
//	cd bench && go test -bench . -benchmem
package bench
