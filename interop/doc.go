// Package interop holds smtpsecure's tests against real mail and DNS
// servers: Postfix (five SMTP listeners), Dovecot and Cyrus SASL, NSD
// serving DNSSEC-signed zones and a validating Unbound, as started on
// loopback by scripts/interop (see scripts/README.md for the lab).
//
// The package has no code of its own. Its test files carry the build tag
// "interop", so that "go test ./..." stays offline and hermetic; with the
// tag and without a lab (SMTPSECURE_LAB_DIR unset) every test skips.
//
// The one command, as root on Debian 12, from the repository root:
//
//	scripts/interop run --check -- go test -tags interop -count=1 -v ./interop/...
//
// It installs what is missing, brings a lab up in a scratch directory,
// cross-checks it with swaks, gsasl, openssl and dig, runs the tests with
// the SMTPSECURE_LAB_* variables set, and brings the lab down again.
//
// To work on one test, keep a lab running:
//
//	d=$(mktemp -d -p /tmp); chmod 755 $d; scripts/interop up $d
//	eval "$(scripts/interop env $d)"
//	go test -tags interop -count=1 -run 'TestInterop/DANE' ./interop/
//	scripts/interop down $d
//
// What the tests need from the environment: root (the Maildir's files are
// mode 600 and owned by nobody), the lab's variables, and swaks on PATH for
// the swaks cross-check (it skips without). Every test finds its own
// message by a unique Message-ID and its own SMTP session in Postfix's log
// by its client port, so the tests run in parallel and never count what
// other tests or the lab's own checks left behind.
package interop
