package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure"
)

const sendUsage = `Usage: smtpsecure send [options] [--] recipient...
       sendmail [options] recipient...        (the same, called as sendmail or msmtp)

Reads a message on standard input and submits it through the server of an
msmtp account (~/.msmtprc, $XDG_CONFIG_HOME/msmtp/config or /etc/msmtprc),
over verified TLS, or fails: never in plaintext, never to an unverified server
unless an --insecure-… flag allows it.

sendmail options:
  -t                   also send to the To, Cc and Bcc addresses of the message (Bcc is removed)
  -f ADDR, -r ADDR     envelope sender (also picks the account whose from matches)
  -F NAME              the name in the From field the command adds when there is none
  -i, -oi              a line with a single dot does not end the message
  -v                   show the SMTP dialogue (AUTH redacted)
  -N never|success,failure,delay   DSN notifications;  -R full|hdrs   DSN return
  -V ENVID             DSN envelope ID
  ignored: -bm -B type -G -h N -L tag -m -n -O opt=val -oX (except -oi) -U
msmtp options:
  -C, --file=FILE      configuration file;  -a, --account=NAME   account
  --host=H --port=N --user=U --passwordeval=CMD --auth[=on|off|METHOD] --domain=NAME
  --tls[=on|off] --tls-starttls[=on|off] --tls-trust-file=FILE --tls-certcheck[=on|off]
  --tls-cert-file=FILE --tls-key-file=FILE --tls-host-override=NAME --timeout=SECONDS
  --from=ADDR --read-recipients --read-envelope-from --dsn-notify=C --dsn-return=R
  --set-from-header[=auto|on|off] --set-date-header[=auto|off] --set-msgid-header[=auto|off]
  --remove-bcc-headers[=on|off] --undisclosed-recipients[=on|off] -X, --logfile=FILE
  -P, --pretend        print the settings that would be used (password as *) and exit
  -d, --debug          same as -v
smtpsecure options:
  --json               print the result for each recipient as JSON on standard output
  --password-file=FILE read the password (or OAuth token) from the first line of FILE
  --password-env=NAME  read it from the environment variable NAME
  --dkim-domain=D --dkim-selector=S --dkim-key=FILE   DKIM-sign (RSA or Ed25519 PEM key)
  --insecure-plaintext   allow an account's "tls off": the message and the password
                         cross the network in plaintext
  --insecure-skip-verify allow an account's "tls_certcheck off": any certificate is
                         accepted, and the password is sent to whoever presents it

Passwords are never taken from the command line.
`

// send runs "smtpsecure send" (and sendmail, msmtp).
func (c *cli) send(ctx context.Context, args []string) error {
	o, err := parseSendArgs(args)
	if err != nil {
		return err
	}
	if o.Help {
		fmt.Fprint(c.stdout, sendUsage)
		return &helpShown{}
	}
	cfg, err := c.submitConfigFor(o)
	if err != nil {
		return err
	}
	if o.Pretend {
		printPretend(c.stdout, cfg)
		return nil
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
	from := cfg.From
	switch {
	case o.ReadEnvelopeFrom:
		if from, err = msg.fromAddress(); err != nil {
			return err
		}
	case o.FromSet && (cfg.AllowFromOverride || cfg.From == ""):
		from = o.From
	}
	if from == "" {
		return usageError("no envelope sender: give it with -f, or with a from line in the account")
	}
	msg.completeHeader(cfg, from, o.FullName, c.now())
	data, err := signMessage(ctx, signer, msg.bytes())
	if err != nil {
		return err
	}
	env := &smtpsecure.Envelope{From: from, To: rcpts, AllOrNothing: true}
	env.SMTPUTF8 = msg.headerIs8Bit()
	env.EnvelopeID = o.EnvelopeID
	if err := applyDSN(env, cfg); err != nil {
		return err
	}
	d, tr, err := c.submitDialer(ctx, cfg, o.Verbose)
	if err != nil {
		return err
	}
	rep := &sendReport{Server: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), Account: cfg.Account, From: from, Size: int(data.Size())}
	if signer != nil {
		rep.DKIM = &dkimReport{Domain: o.DKIM.Domain, Selector: o.DKIM.Selector, Algorithm: dkimAlgorithm(signer)}
	}
	if tr != nil {
		tr.event(rep.Server, "Trying %s...", rep.Server)
	}
	sendErr := submit(ctx, d, env, data, rep)
	rep.finish(rcpts, sendErr)
	if cfg.Logfile != "" {
		if err := appendLog(cfg.Logfile, cfg.LogTimeFormat, c.now(), rep); err != nil {
			fmt.Fprintf(c.stderr, "%s: %v\n", c.name(), err)
		}
	}
	if o.JSON {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	}
	return sendErr
}

// submitConfigFor finds the account the options select and resolves it.
func (c *cli) submitConfigFor(o *sendOptions) (*submitConfig, error) {
	var settings map[string]setting
	var name, source string
	if _, ok := o.Overrides["host"]; ok {
		if o.Account != "" {
			return nil, usageError("--host and --account cannot be combined: --host uses the command line alone")
		}
		settings, source = map[string]setting{}, "command line"
	} else {
		rc, err := c.loadConfig(o.ConfigFile)
		if err != nil {
			return nil, err
		}
		if rc == nil {
			return nil, configError("no configuration file (%s): name one with -C, or give the server with --host", strings.Join(c.configCandidates(), ", "))
		}
		var acc *account
		switch {
		case o.Account != "":
			if acc = rc.account(o.Account); acc == nil {
				return nil, configError("%s: no account named %q", rc.File, o.Account)
			}
		case o.FromSet:
			acc = rc.accountForFrom(o.From)
		}
		if acc == nil {
			if acc = rc.account("default"); acc == nil {
				return nil, configError("%s: no account named default: choose one with -a, or add \"account default : NAME\"", rc.File)
			}
		}
		if p, ok := acc.Settings["password"]; ok && p.Value != "" {
			if err := checkPasswordFilePermissions(rc.File); err != nil {
				return nil, err
			}
		}
		settings, name, source = maps.Clone(acc.Settings), acc.Name, rc.File
	}
	maps.Copy(settings, o.Overrides)
	cfg, err := resolveAccount(name, source, settings, o.Insecure)
	if err != nil {
		return nil, err
	}
	switch {
	case o.PasswordFile != "" && o.PasswordEnv != "":
		return nil, usageError("--password-file and --password-env cannot be combined")
	case o.PasswordFile != "":
		cfg.Password = secret{kind: secretFile, value: o.PasswordFile}
	case o.PasswordEnv != "":
		cfg.Password = secret{kind: secretEnv, value: o.PasswordEnv}
	}
	return cfg, nil
}

// applyDSN sets the envelope's DSN options from dsn_notify and dsn_return.
func applyDSN(env *smtpsecure.Envelope, cfg *submitConfig) error {
	if cfg.DSNNotify != "" {
		for cond := range strings.SplitSeq(cfg.DSNNotify, ",") {
			switch strings.TrimSpace(cond) {
			case "never":
				env.Notify |= smtpsecure.NotifyNever
			case "success":
				env.Notify |= smtpsecure.NotifySuccess
			case "failure":
				env.Notify |= smtpsecure.NotifyFailure
			case "delay":
				env.Notify |= smtpsecure.NotifyDelay
			}
		}
		if env.Notify&smtpsecure.NotifyNever != 0 && env.Notify != smtpsecure.NotifyNever {
			return configError("dsn_notify: never cannot be combined with other conditions")
		}
	}
	switch cfg.DSNReturn {
	case "full":
		env.Return = smtpsecure.ReturnFull
	case "headers", "hdrs":
		env.Return = smtpsecure.ReturnHeaders
	}
	return nil
}

// submitDialer builds the Dialer for an account. With verbose, the SMTP
// dialogue goes to standard error.
func (c *cli) submitDialer(ctx context.Context, cfg *submitConfig, verbose bool) (*smtpsecure.Dialer, *transcript, error) {
	d := &smtpsecure.Dialer{
		Host:            cfg.Host,
		Port:            cfg.Port,
		LocalName:       cfg.LocalName,
		ConnectTimeout:  cfg.Timeout,
		GreetingTimeout: cfg.Timeout,
		CommandTimeout:  cfg.Timeout,
	}
	switch {
	case cfg.Plaintext:
		d.InsecurePlaintext = true
	case cfg.ImplicitTLS:
		d.Security = smtpsecure.SecurityImplicitTLS
	default:
		d.Security = smtpsecure.SecuritySTARTTLS
	}
	if !cfg.Plaintext {
		tc, err := clientTLSConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		d.TLSConfig = tc
		d.InsecureSkipVerify = cfg.SkipVerify
	}
	// The flag that allowed a session anyone on the path can read also
	// allows the password to cross it: the error that asked for the flag
	// said so.
	d.InsecureAuth = cfg.Plaintext || cfg.SkipVerify
	dial := c.dial
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	if cfg.ServerName != "" {
		// tls_host_override: connect to host, verify the certificate for
		// the override.
		d.Host = cfg.ServerName
		target := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		inner := dial
		dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return inner(ctx, network, target)
		}
	}
	var tr *transcript
	if verbose {
		tr = newTranscript(c.stderr, false)
		d.Logger = slog.New(tr)
		// The hook runs after the library verified the chain (or, with
		// --insecure-skip-verify, instead of nothing): it only prints.
		server := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		d.VerifyConnection = func(cs tls.ConnectionState) error {
			for i, cert := range cs.PeerCertificates {
				cr := describeCert(cert, c.now())
				tr.event(server, "TLS peer certificate %d: subject=%q issuer=%q names=%s expires=%s",
					i, cr.Subject, cr.Issuer, strings.Join(cr.Names, ","), cr.NotAfter.Format("2006-01-02"))
			}
			return nil
		}
		inner := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := inner(ctx, network, addr)
			if err == nil {
				tr.event(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), "Connected to %s", conn.RemoteAddr())
			}
			return conn, err
		}
	}
	d.DialContext = dial
	a, err := c.submitAuth(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	d.Auth = a
	return d, tr, nil
}

// clientTLSConfig returns the TLS configuration of an account: its trust
// file as the only roots, and its client certificate.
func clientTLSConfig(cfg *submitConfig) (*tls.Config, error) {
	tc := &tls.Config{}
	if cfg.TrustFile != "" {
		pemData, err := os.ReadFile(cfg.TrustFile)
		if err != nil {
			return nil, configError("reading tls_trust_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, configError("tls_trust_file %s holds no PEM certificate", cfg.TrustFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, configError("loading tls_cert_file and tls_key_file: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// submit sends the message over one session and fills in what the session
// was like.
func submit(ctx context.Context, d *smtpsecure.Dialer, env *smtpsecure.Envelope, msg *io.SectionReader, rep *sendReport) error {
	cl, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	rep.session(cl)
	res, err := cl.Send(ctx, env, msg)
	rep.Result = res
	if err != nil {
		return err
	}
	if err := cl.Quit(ctx); err != nil {
		// The message was accepted; a failed QUIT changes nothing.
		rep.QuitError = err.Error()
	}
	return nil
}
