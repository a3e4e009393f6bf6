package main

import (
	"flag"
	"slices"
	"strings"
)

// sendOptions are the command-line options of send, in the forms sendmail
// and msmtp accept, plus the command's own.
type sendOptions struct {
	Recipients       []string
	ReadRecipients   bool // -t
	From             string
	FromSet          bool   // -f, -r, --from
	FullName         string // -F: the name in a From: field the command adds
	IgnoreDots       bool   // -i, -oi: a line with a single dot does not end the message
	Verbose          bool   // -v, -d, --debug: the SMTP transcript on standard error
	ConfigFile       string // -C, --file
	Account          string // -a, --account
	ReadEnvelopeFrom bool   // --read-envelope-from
	Pretend          bool   // -P, --pretend
	JSON             bool   // --json
	EnvelopeID       string // -V: the DSN envelope ID

	// Overrides are msmtp settings given on the command line (--host,
	// --port, --tls…), keyed like configuration commands; Line is 0.
	Overrides map[string]setting
	Insecure  insecureFlags

	PasswordFile string // --password-file
	PasswordEnv  string // --password-env

	DKIM dkimOptions
	Help bool

	// extra holds further long options (deliver's network flags), set
	// with --name=value, --name value, or -name for its names alone.
	extra *flag.FlagSet
}

// sendLongOptions maps msmtp's long options that set an account setting to
// the configuration command they set. hasArg says whether the value is
// required (given as --opt=value or --opt value) or optional (--opt=value
// only; --opt alone means on, as in msmtp).
var sendLongOptions = map[string]struct {
	key    string
	hasArg bool
}{
	"host": {"host", true}, "port": {"port", true}, "timeout": {"timeout", true},
	"connect-timeout": {"connect_timeout", true}, "protocol": {"protocol", true},
	"domain": {"domain", true}, "auth": {"auth", false}, "user": {"user", true},
	"passwordeval": {"passwordeval", true}, "tls": {"tls", false},
	"tls-starttls": {"tls_starttls", false}, "tls-trust-file": {"tls_trust_file", true},
	"tls-certcheck": {"tls_certcheck", false}, "tls-cert-file": {"tls_cert_file", true},
	"tls-key-file": {"tls_key_file", true}, "tls-host-override": {"tls_host_override", true},
	"tls-fingerprint": {"tls_fingerprint", true}, "tls-crl-file": {"tls_crl_file", true},
	"tls-priorities": {"tls_priorities", true}, "proxy-host": {"proxy_host", true},
	"proxy-port": {"proxy_port", true}, "socket": {"socket", true},
	"source-ip": {"source_ip", true}, "aliases": {"aliases", true},
	"dsn-notify": {"dsn_notify", true}, "dsn-return": {"dsn_return", true},
	"set-from-header": {"set_from_header", false}, "set-date-header": {"set_date_header", false},
	"set-msgid-header": {"set_msgid_header", false}, "remove-bcc-headers": {"remove_bcc_headers", false},
	"keepbcc": {"keepbcc", false}, "undisclosed-recipients": {"undisclosed_recipients", false},
	"allow-from-override": {"allow_from_override", false}, "logfile": {"logfile", true},
	"logfile-time-format": {"logfile_time_format", true}, "syslog": {"syslog", false},
}

// sendmailIgnored are sendmail options that change nothing here (queueing,
// delivery mode, hop counts, the mode -bm, which is the only one): accepted
// so that programs calling sendmail keep working. The value says whether
// the option takes an argument.
var sendmailIgnored = map[byte]bool{
	'B': true, 'h': true, 'L': true, 'O': true,
	'G': false, 'm': false, 'n': false, 'U': false,
}

// parseSendArgs reads the arguments of send (after the subcommand, or
// after the program name when the command is called as sendmail or msmtp),
// as sendmail and msmtp do: options and recipients in any order, short
// options combined (-ti), option values attached (-fme@example.org) or
// separate (-f me@example.org), "--" before recipients that start with a
// dash.
func parseSendArgs(args []string) (*sendOptions, error) {
	return parseMailArgs(args, nil)
}

// parseMailArgs is parseSendArgs with the long options of extra as well
// (deliver's). Those also work with one dash (-resolver), as the flag
// package allows, and are never read as a group of short options
// (-requiretls is not -r equiretls).
func parseMailArgs(args []string, extra *flag.FlagSet) (*sendOptions, error) {
	o := &sendOptions{Overrides: map[string]setting{}, extra: extra}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func(name string) (string, error) {
			if i+1 >= len(args) {
				return "", usageError("option %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "--":
			o.Recipients = append(o.Recipients, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--"):
			if err := o.long(a[2:], next); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-' && o.isExtra(a[1:]):
			if err := o.long(a[1:], next); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			if err := o.short(a[1:], next); err != nil {
				return nil, err
			}
		default:
			o.Recipients = append(o.Recipients, a)
		}
	}
	return o, nil
}

// long handles one long option (without its dashes).
func (o *sendOptions) long(opt string, next func(string) (string, error)) error {
	name, val, hasVal := strings.Cut(opt, "=")
	value := func() (string, error) {
		if hasVal {
			return val, nil
		}
		return next("--" + name)
	}
	noValue := func() error {
		if hasVal {
			return usageError("option --%s takes no value", name)
		}
		return nil
	}
	if lo, ok := sendLongOptions[name]; ok {
		v := val
		if lo.hasArg {
			var err error
			if v, err = value(); err != nil {
				return err
			}
		}
		o.Overrides[lo.key] = setting{Value: v}
		return nil
	}
	if o.isExtra(name) {
		return o.setExtra(name, val, hasVal, next)
	}
	var err error
	switch name {
	case "password":
		return usageError("passwords are never taken from the command line, where other users can read them: use --password-file, --password-env, or passwordeval in the configuration")
	case "from":
		o.From, err = value()
		o.FromSet = true
	case "file":
		o.ConfigFile, err = value()
	case "account":
		o.Account, err = value()
	case "read-recipients":
		o.ReadRecipients, err = true, noValue()
	case "read-envelope-from":
		o.ReadEnvelopeFrom, err = true, noValue()
	case "pretend":
		o.Pretend, err = true, noValue()
	case "debug":
		o.Verbose, err = true, noValue()
	case "json":
		o.JSON, err = true, noValue()
	case "help":
		o.Help, err = true, noValue()
	case "password-file":
		o.PasswordFile, err = value()
	case "password-env":
		o.PasswordEnv, err = value()
	case "insecure-plaintext":
		o.Insecure.Plaintext, err = true, noValue()
	case "insecure-skip-verify":
		o.Insecure.SkipVerify, err = true, noValue()
	case "dkim-domain":
		o.DKIM.Domain, err = value()
	case "dkim-selector":
		o.DKIM.Selector, err = value()
	case "dkim-key":
		o.DKIM.KeyFile, err = value()
	case "serverinfo", "rmqs", "configure", "version":
		return usageError("msmtp's --%s is not supported by smtpsecure send", name)
	default:
		return usageError("unknown option --%s", name)
	}
	return err
}

// isExtra reports whether opt ("name" or "name=value") is an option of
// the extra flag set.
func (o *sendOptions) isExtra(opt string) bool {
	name, _, _ := strings.Cut(opt, "=")
	return o.extra != nil && len(name) > 1 && o.extra.Lookup(name) != nil
}

// setExtra sets an option of the extra flag set: a boolean takes no value
// unless given with "=", any other takes the next argument.
func (o *sendOptions) setExtra(name, val string, hasVal bool, next func(string) (string, error)) error {
	f := o.extra.Lookup(name)
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() && !hasVal {
		val = "true"
	} else if !hasVal {
		var err error
		if val, err = next("--" + name); err != nil {
			return err
		}
	}
	if err := o.extra.Set(name, val); err != nil {
		return usageError("invalid value %q for --%s: %v", val, name, err)
	}
	return nil
}

// short handles a group of short options (without the dash), such as "ti"
// or "fme@example.org".
func (o *sendOptions) short(group string, next func(string) (string, error)) error {
	for j := 0; j < len(group); j++ {
		c := group[j]
		rest := group[j+1:]
		// value returns the rest of the group, or the next argument.
		value := func() (string, error) {
			if rest != "" {
				return rest, nil
			}
			return next("-" + string(c))
		}
		var err error
		switch c {
		case 't':
			o.ReadRecipients = true
		case 'i':
			o.IgnoreDots = true
		case 'v', 'd':
			o.Verbose = true
		case 'P':
			o.Pretend = true
		case 'f', 'r':
			o.From, err = value()
			o.FromSet = true
			return err
		case 'F':
			o.FullName, err = value()
			return err
		case 'C':
			o.ConfigFile, err = value()
			return err
		case 'a':
			o.Account, err = value()
			return err
		case 'N':
			v, err := value()
			o.Overrides["dsn_notify"] = setting{Value: v}
			return err
		case 'R':
			v, err := value()
			o.Overrides["dsn_return"] = setting{Value: v}
			return err
		case 'V':
			o.EnvelopeID, err = value()
			return err
		case 'X':
			v, err := value()
			o.Overrides["logfile"] = setting{Value: v}
			return err
		case 'o':
			// Sendmail's -oX options carry their value in the same
			// argument (-oi, -oem, -odb); only -oi changes anything.
			if rest == "i" {
				o.IgnoreDots = true
			}
			return nil
		case 'b':
			// -bm, the default mode, is accepted; the other modes
			// (-bs SMTP on standard input, -bp the queue, -bd a daemon…)
			// are not what this command does.
			if rest == "m" {
				return nil
			}
			return usageError("sendmail mode -b%s is not supported: smtpsecure send only sends a message from standard input", rest)
		case 'q':
			return usageError("-q%s: smtpsecure send has no queue to run; it sends at once or fails", rest)
		case 'S':
			return usageError("msmtp's -S (--serverinfo) is not supported; smtpsecure check shows a domain's servers")
		default:
			takesArg, ok := sendmailIgnored[c]
			if !ok {
				return usageError("unknown option -%c", c)
			}
			if takesArg {
				_, err := value()
				return err
			}
		}
	}
	return nil
}

// recipients returns the recipients given as arguments and, with -t, those
// of the message's header; there must be at least one.
func (o *sendOptions) recipients(msg *message) ([]string, error) {
	rcpts := slices.Clone(o.Recipients)
	if o.ReadRecipients {
		hr, err := msg.headerRecipients()
		if err != nil {
			return nil, err
		}
		rcpts = append(rcpts, hr...)
	}
	if len(rcpts) == 0 {
		return nil, usageError("no recipients: give them as arguments, or use -t to take them from the message")
	}
	return rcpts, nil
}
