package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// appendLog appends one line about a message to an msmtp logfile, in
// msmtp's style: the time, then key=value pairs. format is
// logfile_time_format (strftime-style, of which the common %Y %m %d %H %M
// %S %b %e %Z %z are understood); empty means msmtp's default "%b %d
// %H:%M:%S". The file is created with mode 0600.
func appendLog(name, format string, now time.Time, r *sendReport) error {
	if format == "" {
		format = "%b %d %H:%M:%S"
	}
	var b strings.Builder
	b.WriteString(strftime(format, now))
	fmt.Fprintf(&b, " host=%s", r.Server)
	if r.TLS != nil {
		fmt.Fprintf(&b, " tls=on tls_version=%s verified=%v", strings.ReplaceAll(r.TLS.Version, " ", ""), r.TLS.Verified)
	} else {
		b.WriteString(" tls=off")
	}
	if r.AuthMechanism != "" {
		fmt.Fprintf(&b, " auth=on auth_mechanism=%s", r.AuthMechanism)
	} else {
		b.WriteString(" auth=off")
	}
	var rcpts []string
	for _, rr := range r.Recipients {
		rcpts = append(rcpts, rr.Address)
	}
	fmt.Fprintf(&b, " from=%s recipients=%s mailsize=%d", r.From, quoteList(rcpts), r.Size)
	if r.Reply != "" {
		fmt.Fprintf(&b, " smtpstatus=250 smtpmsg=%q", r.Reply)
	}
	fmt.Fprintf(&b, " exitcode=%s\n", exitName(r.ExitCode))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("logfile: %w", err)
	}
	return f.Close()
}

// exitName returns the sysexits name of an exit code, as msmtp logs it.
func exitName(code int) string {
	names := map[int]string{
		exitOK: "EX_OK", exitUsage: "EX_USAGE", exitDataErr: "EX_DATAERR", exitNoInput: "EX_NOINPUT",
		exitNoUser: "EX_NOUSER", exitNoHost: "EX_NOHOST", exitUnavailable: "EX_UNAVAILABLE",
		exitSoftware: "EX_SOFTWARE", exitIOErr: "EX_IOERR", exitTempFail: "EX_TEMPFAIL",
		exitProtocol: "EX_PROTOCOL", exitNoPerm: "EX_NOPERM", exitConfig: "EX_CONFIG",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprint(code)
}

// strftime formats t with the strftime conversions msmtp users put in
// logfile_time_format; others are copied as written.
func strftime(format string, t time.Time) string {
	repl := map[byte]string{
		'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05",
		'b': "Jan", 'e': "_2", 'Z': "MST", 'z': "-0700", 'y': "06", 'a': "Mon",
		'B': "January", 'A': "Monday",
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch layout, ok := repl[format[i]]; {
		case ok:
			b.WriteString(t.Format(layout))
		case format[i] == '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
