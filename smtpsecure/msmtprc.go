package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Limits of the msmtprc reader: a configuration file is a few kilobytes,
// and a hostile or corrupt one must not make the command allocate without
// bound.
const (
	maxConfigLine     = 4096
	maxConfigAccounts = 1000
	maxConfigLines    = 100000
)

// errConfigSyntax is matched by every error about the text of a
// configuration file.
var errConfigSyntax = errors.New("invalid configuration file")

// configSyntaxError names the file and line of a configuration file that
// cannot be read.
type configSyntaxError struct {
	File string
	Line int
	Msg  string
}

// Error names the file and line and what is wrong there.
func (e *configSyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns errConfigSyntax.
func (e *configSyntaxError) Unwrap() error { return errConfigSyntax }

// setting is one command of a configuration file with its argument, as
// written, and where it was written.
type setting struct {
	Value string
	Line  int
}

// account is one account of an msmtp configuration file: every setting
// that applies to it, from the defaults in force when it was defined, from
// the accounts it inherits from, and its own.
type account struct {
	Name     string
	File     string
	Line     int
	Settings map[string]setting
}

// get returns the argument of key and whether the account has it.
func (a *account) get(key string) (string, bool) {
	s, ok := a.Settings[key]
	return s.Value, ok
}

// where names the line that set key, for messages.
func (a *account) where(key string) string {
	if s, ok := a.Settings[key]; ok {
		return fmt.Sprintf("%s:%d", a.File, s.Line)
	}
	return a.File
}

// msmtprc is a parsed msmtp configuration file.
type msmtprc struct {
	File     string
	Accounts []*account // in the order they were defined
}

// account returns the account named name, or nil.
func (c *msmtprc) account(name string) *account {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// accountForFrom returns the first account whose from setting matches
// addr, as msmtp picks an account for -f when none is named: equal
// ignoring case, or matching a pattern with * and ? (msmtp 1.8's from
// patterns such as *@example.com).
func (c *msmtprc) accountForFrom(addr string) *account {
	addr = strings.ToLower(addr)
	for _, a := range c.Accounts {
		from, ok := a.get("from")
		if !ok || from == "" {
			continue
		}
		pat := strings.ToLower(from)
		if pat == addr {
			return a
		}
		if strings.ContainsAny(pat, "*?") {
			if ok, err := path.Match(pat, addr); err == nil && ok {
				return a
			}
		}
	}
	return nil
}

// knownKeys are the commands msmtp 1.8 accepts in an account or defaults
// section. Which of them the command honours, ignores or refuses is
// decided when an account is used (see accountSettings); a command that is
// not in this list is a syntax error, as it is for msmtp, so that a typo
// never goes unnoticed.
var knownKeys = []string{
	"host", "port", "source_ip", "proxy_host", "proxy_port", "socket",
	"timeout", "connect_timeout", "protocol", "domain",
	"auth", "user", "password", "passwordeval", "ntlmdomain",
	"tls", "tls_starttls", "tls_nostarttls", "tls_trust_file", "tls_crl_file",
	"tls_fingerprint", "tls_key_file", "tls_cert_file", "tls_certcheck",
	"tls_nocertcheck", "tls_priorities", "tls_host_override",
	"tls_min_dh_prime_bits", "tls_force_sslv3",
	"from", "allow_from_override", "auto_from", "maildomain",
	"dsn_notify", "dsn_return",
	"set_from_header", "set_date_header", "set_msgid_header",
	"remove_bcc_headers", "keepbcc", "undisclosed_recipients",
	"logfile", "logfile_time_format", "syslog", "aliases",
}

// parseMsmtprc reads an msmtp configuration file as msmtp does:
//
//   - one command per line, a keyword and an optional argument separated
//     by blanks (spaces or tabs); CRLF line ends are accepted;
//   - blank lines and lines whose first non-blank character is "#" are
//     comments; a "#" after an argument is part of the argument (passwords
//     may contain it);
//   - an argument enclosed in double quotes loses the quotes, so that it
//     can begin or end with blanks; nothing inside is unescaped;
//   - "defaults" starts settings that apply to every account defined after
//     it; "account NAME" starts an account with the defaults in force;
//     "account NAME : A, B" also takes every setting of the earlier accounts
//     A then B; "account default : NAME" is how the default account is
//     usually chosen;
//   - settings before any "account" line belong to an account named
//     "default" (msmtp 1.2 files).
//
// name is the file name used in messages.
func parseMsmtprc(r io.Reader, name string) (*msmtprc, error) {
	c := &msmtprc{File: name}
	defaults := map[string]setting{}
	var cur map[string]setting // the section settings go to
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxConfigLine+2)
	lineNo := 0
	syntax := func(format string, args ...any) error {
		return &configSyntaxError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		lineNo++
		if lineNo > maxConfigLines {
			return nil, syntax("more than %d lines", maxConfigLines)
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if len(line) > maxConfigLine {
			return nil, syntax("line longer than %d characters", maxConfigLine)
		}
		cmd, arg := splitCommand(line)
		if cmd == "" {
			continue
		}
		if strings.ContainsAny(arg, "\x00") || strings.ContainsAny(cmd, "\x00") {
			return nil, syntax("NUL character")
		}
		switch cmd {
		case "defaults":
			if arg != "" {
				return nil, syntax("defaults takes no argument")
			}
			cur = defaults
			continue
		case "account":
			a, err := c.newAccount(arg, defaults, name, lineNo)
			if err != nil {
				return nil, syntax("%v", err)
			}
			c.Accounts = append(c.Accounts, a)
			cur = a.Settings
			continue
		}
		if !slices.Contains(knownKeys, cmd) {
			return nil, syntax("unknown command %q", cmd)
		}
		if cur == nil {
			a := &account{Name: "default", File: name, Line: lineNo, Settings: clone(defaults)}
			c.Accounts = append(c.Accounts, a)
			cur = a.Settings
		}
		cur[cmd] = setting{Value: arg, Line: lineNo}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			lineNo++
			return nil, syntax("line longer than %d characters", maxConfigLine)
		}
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return c, nil
}

// newAccount starts the account of an "account NAME [: A, B…]" line.
func (c *msmtprc) newAccount(arg string, defaults map[string]setting, file string, line int) (*account, error) {
	name, parents, inherits := strings.Cut(arg, ":")
	name = strings.TrimSpace(unquote(strings.TrimSpace(name)))
	if name == "" {
		return nil, errors.New("account needs a name")
	}
	if strings.ContainsAny(name, ":, \t") {
		return nil, fmt.Errorf("account name %q must not contain colons, commas or blanks", name)
	}
	if c.account(name) != nil {
		return nil, fmt.Errorf("account %q is already defined", name)
	}
	if len(c.Accounts) >= maxConfigAccounts {
		return nil, fmt.Errorf("more than %d accounts", maxConfigAccounts)
	}
	a := &account{Name: name, File: file, Line: line, Settings: clone(defaults)}
	if inherits {
		for p := range strings.SplitSeq(parents, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				return nil, fmt.Errorf("account %q: empty name in the list of accounts to inherit from", name)
			}
			from := c.account(p)
			if from == nil {
				return nil, fmt.Errorf("account %q inherits from %q, which is not defined above it", name, p)
			}
			for k, v := range from.Settings {
				a.Settings[k] = v
			}
		}
	}
	return a, nil
}

// splitCommand splits a configuration line into its command and argument;
// both are empty for blank and comment lines.
func splitCommand(line string) (cmd, arg string) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return "", ""
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, ""
	}
	return line[:i], unquote(strings.Trim(line[i:], " \t"))
}

// unquote removes the double quotes around an argument, if it has both.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func clone(m map[string]setting) map[string]setting {
	out := make(map[string]setting, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
