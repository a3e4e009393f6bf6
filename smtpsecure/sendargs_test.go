package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSendArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want sendOptions
	}{
		{[]string{"-t", "-i", "a@example.net"}, sendOptions{ReadRecipients: true, IgnoreDots: true, Recipients: []string{"a@example.net"}}},
		{[]string{"-ti", "-fme@example.org"}, sendOptions{ReadRecipients: true, IgnoreDots: true, From: "me@example.org", FromSet: true}},
		{[]string{"a@example.net", "-f", "me@example.org", "b@example.net"}, sendOptions{From: "me@example.org", FromSet: true, Recipients: []string{"a@example.net", "b@example.net"}}},
		{[]string{"-oi", "-oem", "-odb", "-F", "Me Myself", "x@example.net"}, sendOptions{IgnoreDots: true, FullName: "Me Myself", Recipients: []string{"x@example.net"}}},
		{[]string{"-C", "rc", "-a", "work", "--", "-x@example.net"}, sendOptions{ConfigFile: "rc", Account: "work", Recipients: []string{"-x@example.net"}}},
		{[]string{"--file=rc", "--account", "work", "--read-envelope-from", "--json", "-v"}, sendOptions{ConfigFile: "rc", Account: "work", ReadEnvelopeFrom: true, JSON: true, Verbose: true}},
		{[]string{"-B", "8BITMIME", "-h", "3", "-Ldaemon", "-bm", "-G", "-U", "y@example.net"}, sendOptions{Recipients: []string{"y@example.net"}}},
		{[]string{"-V", "id-1", "-X", "log"}, sendOptions{EnvelopeID: "id-1", Overrides: map[string]setting{"logfile": {Value: "log"}}}},
		{[]string{"--tls", "--tls-starttls=off", "--port", "465", "--host=h"}, sendOptions{Overrides: map[string]setting{
			"tls": {Value: ""}, "tls_starttls": {Value: "off"}, "port": {Value: "465"}, "host": {Value: "h"}}}},
		{[]string{"--password-file", "pw", "--insecure-plaintext", "--insecure-skip-verify"}, sendOptions{PasswordFile: "pw", Insecure: insecureFlags{Plaintext: true, SkipVerify: true}}},
		{[]string{"--dkim-domain=d", "--dkim-selector", "s", "--dkim-key=k"}, sendOptions{DKIM: dkimOptions{Domain: "d", Selector: "s", KeyFile: "k"}}},
		{[]string{"-N", "never", "-Rfull"}, sendOptions{Overrides: map[string]setting{"dsn_notify": {Value: "never"}, "dsn_return": {Value: "full"}}}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parseSendArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Overrides == nil {
				tc.want.Overrides = map[string]setting{}
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseSendArgsErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-f":                  "option -f needs a value",
		"--file":              "option --file needs a value",
		"--json=yes":          "option --json takes no value",
		"--password=x":        "never taken from the command line",
		"-bs":                 "mode -bs is not supported",
		"-bp":                 "mode -bp is not supported",
		"-q30m":               "no queue",
		"-Z":                  "unknown option -Z",
		"--nope":              "unknown option --nope",
		"--serverinfo":        "--serverinfo is not supported",
		"-S":                  "-S (--serverinfo) is not supported",
		"-t -O":               "option -O needs a value",
		"--port":              "option --port needs a value",
		"--read-recipients=x": "takes no value",
	} {
		_, err := parseSendArgs(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", args, err, want)
			continue
		}
		if exitCode(err) != exitUsage {
			t.Errorf("%s: exit %d, want %d", args, exitCode(err), exitUsage)
		}
	}
}
