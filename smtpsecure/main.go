// Command smtpsecure sends mail over SMTP without ever falling back to
// plaintext, and checks how well a domain protects the mail sent to it.
//
//	smtpsecure send [options] recipient...    submit a message (sendmail/msmtp-compatible)
//	smtpsecure deliver [options] recipient... deliver straight to the recipients' MX hosts
//	smtpsecure check [options] domain         report a domain's mail security posture
//	smtpsecure policy [options] domain        show what delivery to a domain requires
//
// Called as sendmail or msmtp (a link or a copy with that name), it behaves
// as "smtpsecure send", so that it can replace either: it reads the msmtp
// configuration (~/.msmtprc, or the file given with -C), takes sendmail's
// and msmtp's options, and exits with sendmail's exit codes. Unlike them it
// never sends in plaintext or to an unverified server unless an
// --insecure-… flag says so.
//
// Install it with
//
//	go install github.com/smtpsecure/smtpsecure/smtpsecure@latest
//
// and see "smtpsecure help" and "smtpsecure COMMAND -h" for the options.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// cli is one run of the command: its arguments, standard streams and
// environment, so that tests can run it in-process.
type cli struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	// terminal reports whether standard error is a terminal, where check
	// shows its progress.
	terminal bool
	// dial, when set, makes every TCP connection (SMTP, MTA-STS); nil
	// means a net.Dialer. Tests point it at their in-process servers.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{
		args:     os.Args,
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		now:      time.Now,
		terminal: isTerminal(os.Stderr),
	}
	code := c.run(ctx)
	stop()
	os.Exit(code)
}

const usage = `smtpsecure sends mail over SMTP without ever falling back to plaintext.

Usage:
  smtpsecure send [options] recipient...     submit a message through your provider
  smtpsecure deliver [options] recipient...  deliver straight to the recipients' MX hosts
  smtpsecure check [options] domain          report a domain's mail security posture
  smtpsecure policy [options] domain         show what delivery to a domain requires
  smtpsecure help [command]                  show the options of a command

Called as sendmail or msmtp, smtpsecure behaves as "smtpsecure send".
Exit codes follow sysexits.h: 0 success, 64 usage, 65 bad message or address,
67 recipient refused, 69 refused permanently, 75 temporary failure (try again),
76 protocol error, 77 secure session or authentication refused, 78 configuration.
`

// run runs the command and returns its exit code.
func (c *cli) run(ctx context.Context) int {
	err := c.dispatch(ctx)
	if err == nil {
		return exitOK
	}
	var he *helpShown
	if errors.As(err, &he) {
		return exitOK
	}
	// The library's errors start with its name; say the program's once.
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name(), commandMessage(err))
	return exitCode(err)
}

// helpShown ends a run that printed help.
type helpShown struct{}

// Error says that the usage text was shown.
func (*helpShown) Error() string { return "help shown" }

// name is the program name for messages.
func (c *cli) name() string {
	if len(c.args) == 0 {
		return "smtpsecure"
	}
	return filepath.Base(c.args[0])
}

func (c *cli) dispatch(ctx context.Context) error {
	switch strings.TrimSuffix(c.name(), ".exe") {
	case "sendmail", "msmtp":
		return c.send(ctx, c.args[1:])
	}
	if len(c.args) < 2 {
		fmt.Fprint(c.stderr, usage)
		return usageError("no command given")
	}
	cmd, args := c.args[1], c.args[2:]
	switch cmd {
	case "send":
		return c.send(ctx, args)
	case "deliver":
		return c.deliver(ctx, args)
	case "check":
		return c.check(ctx, args)
	case "policy":
		return c.policy(ctx, args)
	case "help", "-h", "--help":
		if len(args) == 1 {
			c.args = []string{c.args[0], args[0], "--help"}
			return c.dispatch(ctx)
		}
		fmt.Fprint(c.stdout, usage)
		return &helpShown{}
	}
	fmt.Fprint(c.stderr, usage)
	return usageError("unknown command %q", cmd)
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
