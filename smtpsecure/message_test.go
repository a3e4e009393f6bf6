package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadMessageDots(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		ignoreDots bool
		want       string
	}{
		{"LF to CRLF", "A: b\n\nbody\n", false, "A: b\r\n\r\nbody\r\n"},
		{"dot ends", "A: b\n\nbefore\n.\nafter\n", false, "A: b\r\n\r\nbefore\r\n"},
		{"dot with CRLF ends", "A: b\r\n\r\nbefore\r\n.\r\nafter\r\n", false, "A: b\r\n\r\nbefore\r\n"},
		{"dot at EOF ends", "A: b\n\nbefore\n.", false, "A: b\r\n\r\nbefore\r\n"},
		{"dot kept with -i", "A: b\n\nbefore\n.\nafter\n", true, "A: b\r\n\r\nbefore\r\n.\r\nafter\r\n"},
		{"dotted line is not a dot", "A: b\n\n..\n.x\n", false, "A: b\r\n\r\n..\r\n.x\r\n"},
		{"no final line end", "A: b\n\nlast", false, "A: b\r\n\r\nlast"},
		{"no header", "just a body\n", false, "\r\njust a body\r\n"},
		{"folded field", "Subject: one\n two\n\nx\n", false, "Subject: one\r\n two\r\n\r\nx\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := readMessage(strings.NewReader(tc.in), tc.ignoreDots)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(m.bytes()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadMessageLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), maxMessage+10)
	_, err := readMessage(bytes.NewReader(big), true)
	if err == nil || exitCode(err) != exitDataErr {
		t.Fatalf("error %v (exit %d), want a data error", err, exitCode(err))
	}
}

func TestHeaderRecipients(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"to cc bcc", "To: a@example.net, B <b@example.net>\nCc: c@example.net\nBcc: d@example.net\nSubject: x\n\n", []string{"a@example.net", "b@example.net", "c@example.net", "d@example.net"}},
		{"folded and group", "To: friends: e@example.net,\n f@example.net;\n\n", []string{"e@example.net", "f@example.net"}},
		{"undisclosed", "To: undisclosed-recipients:;\nBcc: g@example.net\n\n", []string{"g@example.net"}},
		{"resent block wins", "Resent-To: r@example.net\nResent-Date: now\nResent-To: s@example.net\nReceived: x\nResent-To: old@example.net\nTo: orig@example.net\n\n", []string{"r@example.net", "s@example.net"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := readMessage(strings.NewReader(tc.in), true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.headerRecipients()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompleteHeader(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	base := func() *submitConfig {
		return &submitConfig{SetFromHeader: "auto", SetDateHeader: "auto", SetMsgIDHeader: "auto", RemoveBcc: true}
	}
	m, _ := readMessage(strings.NewReader("To: a@example.net\nBcc: secret@example.net\n\nbody\n"), true)
	m.completeHeader(base(), "me@example.org", "Zoë", now)
	got := string(m.bytes())
	for _, want := range []string{"From: =?utf-8?q?Zo=C3=AB?= <me@example.org>\r\n", "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n", "@example.org>\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret@") {
		t.Errorf("Bcc kept:\n%s", got)
	}

	c := base()
	c.SetFromHeader, c.SetDateHeader, c.SetMsgIDHeader, c.RemoveBcc, c.Undisclosed = "on", "off", "off", false, true
	m, _ = readMessage(strings.NewReader("From: old@example.org\nTo: a@example.net\nBcc: b@example.net\n\nbody\n"), true)
	m.completeHeader(c, "me@example.org", "", now)
	// Undisclosed removes To, Cc and Bcc; "on" replaces From; off adds
	// neither Date nor Message-ID.
	if got, want := string(m.bytes()), "To: undisclosed-recipients:;\r\nFrom: me@example.org\r\n\r\nbody\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
