package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// transcript is a slog.Handler that prints the records of the library's
// Dialer.Logger as swaks shows an SMTP dialogue:
//
//	=== Connected to smtp.example.com:587
//	<-  220 smtp.example.com ESMTP
//	 -> EHLO localhost
//	<-  250-smtp.example.com
//	<-  250 STARTTLS
//	 -> STARTTLS
//	<-  220 2.0.0 Ready to start TLS
//	=== TLS started: version=TLS 1.3 cipher=TLS_AES_128_GCM_SHA256 server_auth=webpki
//	 ~> EHLO localhost
//	<~  250-smtp.example.com
//	 ~> AUTH PLAIN [redacted]
//
// "->" and "<-" are plaintext, "~>" and "<~" inside TLS. The library redacts
// AUTH before it logs, so no credential reaches the transcript. Records
// carry the server's address; with several servers at once (check) each
// line is prefixed with it.
type transcript struct {
	w      io.Writer
	prefix bool // prefix lines with the server's address
	mu     *sync.Mutex
	tls    map[string]bool // servers whose session is inside TLS
	attrs  []slog.Attr
}

func newTranscript(w io.Writer, prefix bool) *transcript {
	return &transcript{w: w, prefix: prefix, mu: &sync.Mutex{}, tls: map[string]bool{}}
}

// Enabled takes every record: the library logs its dialogue at Debug.
func (t *transcript) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns a handler that adds attrs to every record.
func (t *transcript) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *t
	c.attrs = append(append([]slog.Attr(nil), t.attrs...), attrs...)
	return &c
}

// WithGroup returns the handler itself: the transcript has no groups.
func (t *transcript) WithGroup(string) slog.Handler { return t }

// Handle prints one record.
func (t *transcript) Handle(_ context.Context, r slog.Record) error {
	fields := map[string]string{}
	var order []string
	add := func(a slog.Attr) bool {
		if _, seen := fields[a.Key]; !seen {
			order = append(order, a.Key)
		}
		fields[a.Key] = a.Value.String()
		return true
	}
	for _, a := range t.attrs {
		add(a)
	}
	r.Attrs(add)
	host := fields["host"]
	if p := fields["probe"]; p != "" {
		host = p // check's probes: one address each
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	inTLS := t.tls[host]
	out, in := " ->", "<- "
	if inTLS {
		out, in = " ~>", "<~ "
	}
	switch r.Message {
	case "smtp command":
		cmd := fields["command"]
		if cmd == "<end of data>" {
			cmd = "<end of message data>"
		}
		t.line(host, out+" "+cmd)
	case "smtp reply":
		lines := strings.Split(fields["text"], "\n")
		for i, l := range lines {
			sep := " "
			if i < len(lines)-1 {
				sep = "-"
			}
			t.line(host, in+" "+fields["code"]+sep+l)
		}
	case "smtp delivery plan":
		// deliver -v: the plan Deliver follows, one line of it per line.
		for l := range strings.SplitSeq(strings.TrimRight(fields["plan"], "\n"), "\n") {
			t.line(host, "=== "+l)
		}
	case "smtp TLS established":
		t.tls[host] = true
		var b strings.Builder
		for _, k := range order {
			if k == "host" || k == "probe" {
				continue
			}
			fmt.Fprintf(&b, " %s=%s", k, quoteIfSpace(fields[k]))
		}
		t.line(host, "=== TLS started:"+b.String())
	default:
		var b strings.Builder
		b.WriteString("=== " + r.Message)
		for _, k := range order {
			if k != "host" && k != "probe" {
				fmt.Fprintf(&b, " %s=%s", k, quoteIfSpace(fields[k]))
			}
		}
		t.line(host, b.String())
	}
	return nil
}

// newSession forgets which servers' sessions are inside TLS: a new
// connection starts in plaintext. deliver calls it at each connection,
// which it makes one at a time with -v, since the records of one MX host's
// successive sessions carry the same host.
func (t *transcript) newSession() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.tls)
}

// event prints a line of the command's own ("=== Connected to …").
func (t *transcript) event(host, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.line(host, "=== "+fmt.Sprintf(format, args...))
}

func (t *transcript) line(host, s string) {
	if t.prefix && host != "" {
		fmt.Fprintf(t.w, "[%s] %s\n", host, s)
		return
	}
	fmt.Fprintln(t.w, s)
}

func quoteIfSpace(s string) string {
	if strings.ContainsAny(s, " \t") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
