package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

const deliverUsage = `Usage: smtpsecure deliver [options] [--] recipient...

Reads a message on standard input and delivers it straight to the MX hosts of
each recipient's domain, as a mail server does, under the domain's published
policy: DANE where DNSSEC proves TLSA records, MTA-STS otherwise, local rules
(--rules) above both. A domain that publishes nothing still gets STARTTLS,
without certificate checks; plaintext only under a local insecure-… rule.
For each recipient it prints where the message went (MX host and address),
how the server was authenticated (DANE-EE, DANE-TA, Web PKI or none) and which
rule decided, or why the message was not delivered (the enhanced status code,
and the RFC 8460 result type of a TLS failure). Nothing is queued: a
temporary failure is for the caller to retry.

Exit code: 0 when every recipient got the message. Otherwise each recipient
that did not has a code: 77 when security could not be had (no MX host met
the TLS its policy requires, DNSSEC or MTA-STS ruled every host out, or
REQUIRETLS could not be met), 75 for any other temporary failure, 68 when the
domain does not exist, 67 when an MX host refused the recipient for good, 69
for any other permanent failure. As in sendmail, any code but 75 beats 75,
and among those the first recipient's, in the order given, is the exit code:
so 75 means that every recipient not delivered may be tried again as it is.
Recipients that got the message are never tried again by a retry of the
others: the output says which they are.

sendmail options:
  -t                   also deliver to the To, Cc and Bcc addresses of the message (Bcc is removed)
  -f ADDR, -r ADDR     envelope sender (required; -f '<>' for the null sender of a bounce)
  -F NAME              the name in the From field the command adds when there is none
  -i, -oi              a line with a single dot does not end the message
  -v                   show each plan and SMTP dialogue on standard error (domains are then
                       delivered one after the other)
  -N never|success,failure,delay   DSN notifications;  -R full|hdrs   DSN return
  -V ENVID             DSN envelope ID
  ignored: -bm -B type -G -h N -L tag -m -n -O opt=val -oX (except -oi) -U
msmtp options:
  --from=ADDR --read-recipients --read-envelope-from --dsn-notify=C --dsn-return=R
  --domain=NAME        the name sent with EHLO; default: this host's fully qualified name
  --set-from-header[=auto|on|off] --set-date-header[=auto|off] --set-msgid-header[=auto|off]
  --remove-bcc-headers[=on|off] --undisclosed-recipients[=on|off]
smtpsecure options:
  --json               print the outcome for each recipient as JSON on standard output
  --dkim-domain=D --dkim-selector=S --dkim-key=FILE   DKIM-sign (RSA or Ed25519 PEM key)
Policy, DNS and reporting options (one dash or two):
`

// deliverMessageKeys are the msmtp settings deliver takes from the
// command line: what it does to the message and the envelope. The others
// describe a submission server, which deliver does not use.
var deliverMessageKeys = []string{
	"domain", "dsn_notify", "dsn_return", "set_from_header", "set_date_header",
	"set_msgid_header", "remove_bcc_headers", "keepbcc", "undisclosed_recipients",
}

// deliverFlags are deliver's own options, beside those of send.
type deliverFlags struct {
	net         netFlags
	requireTLS  bool
	tlsrptStore string
}

func (f *deliverFlags) register(fs *flag.FlagSet) {
	f.net.register(fs, true)
	fs.BoolVar(&f.requireTLS, "requiretls", false, "ask for REQUIRETLS (RFC 8689): only MX hosts found through DNSSEC or an MTA-STS\nenforce policy, authenticated, and offering REQUIRETLS may take the message; else it fails with 5.7.30")
	fs.StringVar(&f.tlsrptStore, "tlsrpt-store", "", "record the TLS-RPT result (RFC 8460) of each session and plan in `DIR`, counts per\nrecipient domain and day kept across runs (a tlsrpt.FileStore), for a program that\nsends the reports from it (a tlsrpt.Scheduler)")
}

// deliver runs "smtpsecure deliver".
func (c *cli) deliver(ctx context.Context, args []string) error {
	fs := c.newFlagSet("deliver", deliverUsage)
	var df deliverFlags
	df.register(fs)
	o, err := parseMailArgs(args, fs)
	if err != nil {
		return err
	}
	if o.Help {
		fs.SetOutput(c.stdout)
		fs.Usage()
		return &helpShown{}
	}
	cfg, err := deliverConfig(o)
	if err != nil {
		return err
	}
	d, err := df.net.deliverer(c.now(), c.dial)
	if err != nil {
		return err
	}
	d.LocalName = cfg.LocalName
	var rec *tlsrpt.Recorder
	if df.tlsrptStore != "" {
		store, err := tlsrpt.NewFileStore(df.tlsrptStore)
		if err != nil {
			return configError("--tlsrpt-store: %v", err)
		}
		rec = tlsrpt.NewRecorder(store)
		d.TLSReports = rec
	}
	signer, err := newDKIMSigner(o.DKIM)
	if err != nil {
		return err
	}

	msg, err := readMessage(c.stdin, o.IgnoreDots)
	if err != nil {
		return err
	}
	rcpts, err := o.recipients(msg)
	if err != nil {
		return err
	}
	from := o.From
	switch {
	case o.ReadEnvelopeFrom:
		if from, err = msg.fromAddress(); err != nil {
			return err
		}
	case !o.FromSet || from == "":
		return usageError("no envelope sender: give it with -f (or --read-envelope-from); -f '<>' sends with the null sender of a bounce")
	case from == "<>":
		from = ""
	}
	msg.completeHeader(cfg, from, o.FullName, c.now())
	// Signed once for the whole run, by the library path send uses and
	// Deliverer.Signer calls, so that every domain gets the same octets,
	// also when -v delivers them one by one.
	data, err := signMessage(ctx, signer, msg.bytes())
	if err != nil {
		return err
	}
	env := &smtpsecure.Envelope{From: from, To: rcpts}
	env.SMTPUTF8 = msg.headerIs8Bit()
	env.RequireTLS = df.requireTLS
	env.EnvelopeID = o.EnvelopeID
	if err := applyDSN(env, cfg); err != nil {
		return withCode(exitUsage, err) // from the command line, not a file
	}

	if o.Verbose {
		tr := newTranscript(c.stderr, false)
		d.Logger = slog.New(tr)
		d.DialContext = verboseDial(tr, d.DialContext)
	}
	results, err := deliverAll(ctx, d, env, data, o.Verbose)
	if rec != nil {
		// What was recorded before an error counts; it goes to the store
		// even if the run was interrupted.
		if ferr := rec.Flush(context.WithoutCancel(ctx)); ferr != nil {
			fmt.Fprintf(c.stderr, "%s: --tlsrpt-store: recording the TLS-RPT results failed: %v\n", c.name(), ferr)
		}
	}
	if err != nil {
		return err
	}
	rep := newDeliverReport(from, data.Size(), env, results)
	if signer != nil {
		rep.DKIM = &dkimReport{Domain: o.DKIM.Domain, Selector: o.DKIM.Selector, Algorithm: dkimAlgorithm(signer)}
	}
	rep.DNSSEC, _ = dnssecSource(d.Resolver)
	rep.TLSRPTStore = df.tlsrptStore
	if o.JSON {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(c.stdout)
	}
	if !rep.daneChecked {
		_, detail := dnssecSource(d.Resolver)
		fmt.Fprintf(c.stderr, "%s: warning: DANE was not checked: DNSSEC %s; use --trusted-resolver for a validating resolver that is not on this host, or --dnssec-validate\n", c.name(), detail)
	}
	if rep.ExitCode != exitOK {
		return &exitError{Code: rep.ExitCode, Err: errNotDelivered{rep}}
	}
	return nil
}

// deliverConfig checks that the options are deliver's and resolves what
// they say about the message and the envelope.
func deliverConfig(o *sendOptions) (*submitConfig, error) {
	elsewhere := func(flags string) error {
		return usageError("%s is an option of send, which submits through a server of yours; deliver goes straight to the recipients' MX hosts", flags)
	}
	switch {
	case o.ConfigFile != "":
		return nil, elsewhere("-C/--file")
	case o.Account != "":
		return nil, elsewhere("-a/--account")
	case o.Pretend:
		return nil, elsewhere("-P/--pretend")
	case o.PasswordFile != "" || o.PasswordEnv != "":
		return nil, elsewhere("--password-file/--password-env")
	case o.Insecure != insecureFlags{}:
		return nil, usageError("--insecure-plaintext and --insecure-skip-verify are options of send; deliver follows each domain's policy, weakened only by a local rule in --rules (insecure-opportunistic, say)")
	}
	keys := slices.Sorted(maps.Keys(o.Overrides))
	for _, k := range keys {
		if !slices.Contains(deliverMessageKeys, k) {
			return nil, elsewhere("--" + strings.ReplaceAll(k, "_", "-"))
		}
	}
	cfg := withMessageDefaults(&submitConfig{Source: "command line", LocalName: o.Overrides["domain"].Value})
	bad := func(key, format string, args ...any) error { return usageError(format, args...) }
	if err := resolveMessageSettings(cfg, o.Overrides, bad); err != nil {
		return nil, err
	}
	return cfg, nil
}

// verboseDial says, on the transcript, which address each SMTP session
// goes to, and starts the transcript of a new session.
func verboseDial(tr *transcript, inner func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	if inner == nil {
		var d net.Dialer
		inner = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		if port != "25" {
			return inner(ctx, network, addr) // an MTA-STS policy host
		}
		tr.newSession()
		tr.event("", "Trying %s...", addr)
		conn, err := inner(ctx, network, addr)
		if err != nil {
			tr.event("", "Connection to %s failed: %v", addr, err)
			return nil, err
		}
		tr.event("", "Connected to %s", addr)
		return conn, nil
	}
}

// deliverAll delivers the message to every recipient: in one Deliver
// call, which works on several domains at once, or, with one at a time,
// in one call per domain, in the order the domains first appear, so that
// a transcript shows one session at a time.
func deliverAll(ctx context.Context, d *smtpsecure.Deliverer, env *smtpsecure.Envelope, msg *io.SectionReader, oneAtATime bool) ([]smtpsecure.RecipientResult, error) {
	if !oneAtATime {
		return d.Deliver(ctx, env, msg)
	}
	var order []string
	groups := map[string][]int{}
	for i, r := range env.To {
		dom := strings.ToLower(r[strings.LastIndexByte(r, '@')+1:])
		if groups[dom] == nil {
			order = append(order, dom)
		}
		groups[dom] = append(groups[dom], i)
	}
	out := make([]smtpsecure.RecipientResult, len(env.To))
	for _, dom := range order {
		e := *env
		e.To = nil
		for _, i := range groups[dom] {
			e.To = append(e.To, env.To[i])
		}
		res, err := d.Deliver(ctx, &e, msg)
		if err != nil {
			return nil, err
		}
		for j, i := range groups[dom] {
			out[i] = res[j]
		}
	}
	return out, nil
}
