package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// submitConfig is everything send needs to know about the server and the
// message, resolved from an msmtp account and the command line.
type submitConfig struct {
	Account string // the account's name, "" with --host
	Source  string // where the settings came from: a file, or "command line"

	Host        string
	Port        int
	ImplicitTLS bool   // tls_starttls off: TLS from the first byte
	Plaintext   bool   // tls off, allowed by --insecure-plaintext
	SkipVerify  bool   // tls_certcheck off, allowed by --insecure-skip-verify
	TrustFile   string // PEM roots; "" means the system's
	CertFile    string // client certificate (tls_cert_file)
	KeyFile     string // its key (tls_key_file)
	ServerName  string // tls_host_override: the name the certificate must have
	LocalName   string // domain: the EHLO name
	Timeout     time.Duration

	Auth     string // "" (no AUTH), "on" (the best the server offers) or a mechanism
	User     string
	Password secret

	From              string // the envelope sender of the account
	AllowFromOverride bool   // -f may replace From
	DSNNotify         string // dsn_notify: "", "never" or a list of success, failure, delay
	DSNReturn         string // dsn_return: "", "full" or "headers"

	SetFromHeader  string // auto, on or off
	SetDateHeader  string // auto or off
	SetMsgIDHeader string // auto or off
	RemoveBcc      bool
	Undisclosed    bool // add "To: undisclosed-recipients:;" when there is no To
	Logfile        string
	LogTimeFormat  string
}

// insecureFlags are the command-line flags that allow what a configuration
// asks for and the command otherwise refuses.
type insecureFlags struct {
	Plaintext  bool // --insecure-plaintext allows "tls off"
	SkipVerify bool // --insecure-skip-verify allows "tls_certcheck off"
}

// unsupportedKeys are msmtp commands the command does not implement, with
// what to do instead. An account that uses one is refused rather than sent
// in a way its author did not intend.
var unsupportedKeys = map[string]string{
	"source_ip":       "remove it; the system chooses the source address",
	"proxy_host":      "SOCKS proxies are not supported; remove proxy_host and proxy_port",
	"proxy_port":      "SOCKS proxies are not supported; remove proxy_host and proxy_port",
	"socket":          "local sockets are not supported; use host and port",
	"ntlmdomain":      "NTLM is not supported; use another auth method",
	"tls_crl_file":    "certificate revocation lists are not supported; remove tls_crl_file",
	"tls_fingerprint": "certificate pinning is not supported; put the server's certificate or its CA in a file and name it with tls_trust_file",
	"tls_force_sslv3": "SSLv3 is broken and never used; remove tls_force_sslv3",
	"auto_from":       "set the envelope sender with from, or -f",
	"maildomain":      "set the envelope sender with from, or -f",
	"aliases":         "aliases files are not supported; give the addresses themselves",
}

// resolveAccount turns the settings of an account (or of the command line
// alone, with --host) into a submitConfig. Settings that would weaken
// security are refused unless the matching --insecure-… flag allows them;
// settings the command does not implement are refused with advice.
func resolveAccount(name, source string, s map[string]setting, insecure insecureFlags) (*submitConfig, error) {
	c := withMessageDefaults(&submitConfig{Account: name, Source: source, AllowFromOverride: true})
	at := func(key string) string {
		if v, ok := s[key]; ok && v.Line > 0 {
			return fmt.Sprintf("%s:%d: ", source, v.Line)
		}
		return ""
	}
	bad := func(key, format string, args ...any) error {
		return configError("%s%s", at(key), fmt.Sprintf(format, args...))
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if advice, ok := unsupportedKeys[k]; ok && s[k].Value != "" && !isOff(s[k].Value) {
			return nil, bad(k, "%s is not supported: %s", k, advice)
		}
	}

	v := func(key string) string { return s[key].Value }
	has := func(key string) bool { _, ok := s[key]; return ok }

	c.Host = v("host")
	if c.Host == "" {
		return nil, bad("host", "account %q has no host: add a host line", name)
	}
	if p := v("protocol"); p != "" && p != "smtp" {
		return nil, bad("protocol", "protocol %s is not supported; only smtp is", p)
	}

	// TLS: on unless "tls off" says otherwise, and then only when allowed.
	tlsOn, err := onOff(s, "tls", true)
	if err != nil {
		return nil, bad("tls", "%v", err)
	}
	if !tlsOn {
		if !insecure.Plaintext {
			return nil, bad("tls", "tls off would send the message, and any password, in plaintext; refused. Turn TLS on, or pass --insecure-plaintext to allow it (for a relay on this machine)")
		}
		c.Plaintext = true
	}
	starttls, err := onOff(s, "tls_starttls", true)
	if err != nil {
		return nil, bad("tls_starttls", "%v", err)
	}
	if has("tls_nostarttls") {
		starttls = false
	}
	c.ImplicitTLS = !starttls && !c.Plaintext
	certcheck, err := onOff(s, "tls_certcheck", true)
	if err != nil {
		return nil, bad("tls_certcheck", "%v", err)
	}
	key := "tls_certcheck"
	if has("tls_nocertcheck") {
		certcheck, key = false, "tls_nocertcheck"
	}
	if !certcheck && !c.Plaintext {
		if !insecure.SkipVerify {
			return nil, bad(key, "%s off would accept any certificate, so anyone on the path could read the message and the password; refused. Name the server's CA with tls_trust_file, or pass --insecure-skip-verify to allow it", key)
		}
		c.SkipVerify = true
	}
	if t := v("tls_trust_file"); t != "" && t != "system" {
		c.TrustFile = expandTilde(t)
	}
	c.CertFile = expandTilde(v("tls_cert_file"))
	c.KeyFile = expandTilde(v("tls_key_file"))
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, bad("tls_cert_file", "tls_cert_file and tls_key_file go together: set both or neither")
	}
	c.ServerName = v("tls_host_override")

	c.Port = 25
	if c.ImplicitTLS {
		c.Port = 465
	}
	if has("port") {
		p, err := strconv.Atoi(v("port"))
		if err != nil || p < 1 || p > 65535 {
			return nil, bad("port", "invalid port %q", v("port"))
		}
		c.Port = p
	}
	for _, k := range []string{"timeout", "connect_timeout"} {
		if !has(k) || isOff(v(k)) {
			continue
		}
		n, err := strconv.Atoi(v(k))
		if err != nil || n < 1 {
			return nil, bad(k, "invalid %s %q: give seconds, or off", k, v(k))
		}
		c.Timeout = time.Duration(n) * time.Second
	}
	c.LocalName = v("domain")

	switch a := strings.ToLower(v("auth")); {
	case !has("auth") || isOff(a):
	case a == "" || a == "on":
		c.Auth = "on"
	case slices.Contains([]string{"plain", "login", "scram-sha-256", "cram-md5", "xoauth2", "oauthbearer"}, a):
		c.Auth = a
	default:
		return nil, bad("auth", "auth method %s is not supported: use on (the strongest the server offers), plain, login, scram-sha-256, cram-md5, xoauth2 or oauthbearer", a)
	}
	c.User = v("user")
	if has("password") && v("password") != "" {
		c.Password = secret{kind: secretConfig, value: v("password"), where: source}
	}
	if has("passwordeval") && v("passwordeval") != "" {
		c.Password = secret{kind: secretEval, value: v("passwordeval"), where: source}
	}
	if c.Auth != "" && c.User == "" && c.Auth != "xoauth2" && c.Auth != "oauthbearer" {
		return nil, bad("auth", "auth is on but there is no user: add a user line")
	}

	c.From = v("from")
	if c.AllowFromOverride, err = onOff(s, "allow_from_override", true); err != nil {
		return nil, bad("allow_from_override", "%v", err)
	}
	if err := resolveMessageSettings(c, s, bad); err != nil {
		return nil, err
	}
	if l := v("logfile"); l != "" {
		c.Logfile = expandTilde(l)
	}
	c.LogTimeFormat = v("logfile_time_format")
	return c, nil
}

// withMessageDefaults sets msmtp's defaults for the header fields send and
// deliver complete: From, Date and Message-ID added when missing, Bcc
// removed.
func withMessageDefaults(c *submitConfig) *submitConfig {
	c.SetFromHeader, c.SetDateHeader, c.SetMsgIDHeader = "auto", "auto", "auto"
	c.RemoveBcc = true
	return c
}

// resolveMessageSettings reads the settings about the message rather than
// the server, which send takes from an account and deliver from the
// command line: the DSN options and how the header is completed.
func resolveMessageSettings(c *submitConfig, s map[string]setting, bad func(key, format string, args ...any) error) error {
	v := func(key string) string { return s[key].Value }
	has := func(key string) bool { _, ok := s[key]; return ok }
	var err error
	if n := v("dsn_notify"); n != "" && !isOff(n) {
		for cond := range strings.SplitSeq(n, ",") {
			if !slices.Contains([]string{"never", "success", "failure", "delay"}, strings.TrimSpace(cond)) {
				return bad("dsn_notify", "invalid dsn_notify %q: off, never, or a list of success, failure and delay", n)
			}
		}
		c.DSNNotify = n
	}
	switch r := v("dsn_return"); {
	case r == "" || isOff(r):
	case r == "full" || r == "headers" || r == "hdrs":
		c.DSNReturn = r
	default:
		return bad("dsn_return", "invalid dsn_return %q: off, full or headers", r)
	}

	for _, h := range []struct {
		key  string
		dst  *string
		opts []string
	}{
		{"set_from_header", &c.SetFromHeader, []string{"auto", "on", "off"}},
		{"set_date_header", &c.SetDateHeader, []string{"auto", "off"}},
		{"set_msgid_header", &c.SetMsgIDHeader, []string{"auto", "off"}},
	} {
		if !has(h.key) {
			continue
		}
		val := v(h.key)
		if val == "" {
			val = "on"
		}
		if !slices.Contains(h.opts, val) {
			return bad(h.key, "invalid %s %q: one of %s", h.key, val, strings.Join(h.opts, ", "))
		}
		*h.dst = val
	}
	if has("keepbcc") {
		keep, err := onOff(s, "keepbcc", false)
		if err != nil {
			return bad("keepbcc", "%v", err)
		}
		c.RemoveBcc = !keep
	}
	if c.RemoveBcc, err = onOff(s, "remove_bcc_headers", c.RemoveBcc); err != nil {
		return bad("remove_bcc_headers", "%v", err)
	}
	if c.Undisclosed, err = onOff(s, "undisclosed_recipients", false); err != nil {
		return bad("undisclosed_recipients", "%v", err)
	}
	return nil
}

// onOff reads an on/off setting: an empty argument means on, as in msmtp;
// def applies when the setting is absent.
func onOff(s map[string]setting, key string, def bool) (bool, error) {
	v, ok := s[key]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v.Value) {
	case "", "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid %s %q: on or off", key, v.Value)
}

func isOff(s string) bool { return strings.EqualFold(s, "off") }

// expandTilde replaces a leading "~" with the home directory, as msmtp
// does for file names.
func expandTilde(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
