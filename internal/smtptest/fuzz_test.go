package smtptest

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var commandSeeds = []string{
	"EHLO client.example",
	"ehlo",
	"HELO x",
	"MAIL FROM:<a@example.com>",
	"MAIL FROM:<> SIZE=10 BODY=8BITMIME",
	"MAIL FROM:<\"a >b\"@example.com> SMTPUTF8 AUTH=a+2Bb",
	"mail from:<pelé@example.com> SMTPUTF8 REQUIRETLS RET=HDRS ENVID=x+2By",
	"MAIL FROM: <a@example.com>",
	"MAIL FROM:<a@example.com>  SIZE=1",
	"MAIL FROM:<a@example.com> SIZE=1 SIZE=2",
	"MAIL FROM:<@a,@b:c@d>",
	"MAIL FROM:<\"unterminated@x>",
	"RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.net",
	"RCPT TO:<Postmaster>",
	"RCPT TO:<>",
	"BDAT 0 LAST",
	"BDAT 1000",
	"BDAT 99999999999999999999 LAST",
	"BDAT -1",
	"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
	"AUTH LOGIN",
	"AUTH=PLAIN LOGIN",
	"STARTTLS",
	"DATA",
	"QUIT",
	"",
	" ",
	"\x00\xff",
}

// FuzzCommandLine checks the parsers of command lines: the verb and
// argument split, MAIL and RCPT paths and parameters, BDAT sizes and AUTH
// lines. None may panic, and what they accept must rebuild the input.
func FuzzCommandLine(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd := parseCommandLine(line)
		if cmd.Line != line {
			t.Fatalf("Line %q != %q", cmd.Line, line)
		}
		if strings.Contains(cmd.Verb, " ") || cmd.Verb != asciiUpper(cmd.Verb) {
			t.Fatalf("verb %q", cmd.Verb)
		}
		rebuilt := cmd.Verb
		if strings.Contains(line, " ") {
			rebuilt += " " + cmd.Arg
		} else if cmd.Arg != "" {
			t.Fatalf("Arg %q without a space", cmd.Arg)
		}
		if asciiUpper(rebuilt) != asciiUpper(line) {
			t.Fatalf("verb %q + arg %q does not rebuild %q", cmd.Verb, cmd.Arg, line)
		}
		for _, prefix := range []string{"FROM:", "TO:"} {
			path, params, err := parsePathArg(cmd.Arg, prefix)
			if err != nil {
				continue
			}
			if checkPath(path) != nil || strings.ContainsAny(path, "\r\n\x00") {
				t.Fatalf("accepted bad path %q", path)
			}
			r := cmd.Arg[:len(prefix)] + "<" + path + ">"
			seen := map[string]bool{}
			for _, p := range params {
				if !validKeyword(p.Key) || p.Key != asciiUpper(p.Key) || seen[p.Key] {
					t.Fatalf("bad or repeated keyword %q", p.Key)
				}
				seen[p.Key] = true
				if p.HasValue && !validParamValue(p.Value) || !p.HasValue && p.Value != "" {
					t.Fatalf("bad value %q of %s", p.Value, p.Key)
				}
				r += " " + p.Key
				if p.HasValue {
					r += "=" + p.Value
				}
			}
			if asciiUpper(r) != asciiUpper(cmd.Arg) {
				t.Fatalf("path %q params %+v rebuild %q, not %q", path, params, r, cmd.Arg)
			}
			validMailbox(path)
		}
		if size, last, err := parseBDAT(cmd.Arg); err == nil {
			digits, rest, _ := strings.Cut(cmd.Arg, " ")
			n, perr := strconv.ParseInt(digits, 10, 64)
			if perr != nil || n != size || digits[0] == '+' || digits[0] == '-' {
				t.Fatalf("BDAT %q gave size %d", cmd.Arg, size)
			}
			if last != (asciiUpper(rest) == "LAST") || !last && rest != "" {
				t.Fatalf("BDAT %q gave last=%v", cmd.Arg, last)
			}
		}
		for _, m := range authMechanisms([]string{line}) {
			if m == "" || strings.ContainsAny(m, " \t") || m != asciiUpper(m) {
				t.Fatalf("mechanism %q from %q", m, line)
			}
		}
		if k := extKeyword(line); strings.ContainsAny(k, " =") {
			t.Fatalf("keyword %q from %q", k, line)
		}
	})
}

// serveOne runs one session of s over nc without a listener.
func serveOne(s *Server, nc net.Conn) (*Session, error) {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	sess := newSession(s.ImplicitTLS)
	err := newConn(s, nc, sess).serve()
	sess.finish(err)
	return sess, err
}

// FuzzSession feeds arbitrary client bytes to a whole server session over
// an in-memory connection: the line reader, every command, AUTH, DATA with
// the strict dot reader and BDAT. It must not panic or hang, must record as
// plaintext exactly a prefix of what was sent, and must record only clean
// command lines.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO c\r\nMAIL FROM:<a@example.com> SIZE=10\r\nRCPT TO:<b@example.com>\r\nDATA\r\nhello\r\n..x\r\n.\r\nQUIT\r\n",
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n",
		"EHLO c\r\nAUTH PLAIN\r\nAHUAcA==\r\nAUTH LOGIN dQ==\r\ncA==\r\n",
		"EHLO c\r\nAUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHABAQ==\r\n\r\nAUTH OAUTHBEARER bixhPXUsAWF1dGg9QmVhcmVyIHgBAQ==\r\n\r\n",
		"EHLO c\r\nAUTH CRAM-MD5\r\ndSAwMDAw\r\nAUTH PLAIN *\r\n",
		"EHLO c\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"EHLO c\r\nBDAT 100000000000 LAST\r\n",
		"NOOP\nNOOP\rx\r\n\x00\r\n",
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nunterminated",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	_, leaf := pki(f)
	tlsConf := leaf.ServerConfig()
	f.Fuzz(func(t *testing.T, input []byte) {
		s := &Server{
			TLSConfig:      tlsConf,
			Extensions:     append([]string{"AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"}, allExtensions...),
			Users:          map[string]string{"u": "p"},
			MaxMessageSize: 1 << 16,
		}
		cs, ss := net.Pipe()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, cs)
		}()
		go func() {
			defer wg.Done()
			cs.Write(input)
			cs.Close()
		}()
		sess, _ := serveOne(s, ss)
		ss.Close()
		cs.Close()
		wg.Wait()
		s.cancel()
		if p := sess.Plaintext(); !bytes.HasPrefix(input, p) {
			t.Fatalf("plaintext %q is not a prefix of the input", p)
		}
		for _, c := range sess.Commands() {
			if strings.ContainsAny(c.Line, "\r\n\x00") {
				t.Fatalf("command line %q", c.Line)
			}
		}
	})
}
