package smtptest

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Hangup after a reply: the client reads the reply, then the end of the
// stream (not a reset), even with unread pipelined input on the server.
func TestHangupAfterReply(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := map[bool]string{false: "plaintext", true: "TLS"}[tlsOn]
		t.Run(name, func(t *testing.T) {
			s := start(t, &Server{
				TLSConfig:  serverTLS(t),
				Extensions: []string{"PIPELINING"},
				Hook: func(c *Conn, cmd Command) (string, bool) {
					if cmd.Verb == "MAIL" {
						c.Write("421 4.3.2 going away\r\n")
						c.Hangup()
						return "", true
					}
					return "", false
				},
			})
			c := greet(t, s.Addr())
			if tlsOn {
				c.startTLS()
				c.do("EHLO client.example", 250)
			}
			// MAIL, RCPT and a large pipelined remainder the server never
			// reads as commands.
			c.write("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n" + strings.Repeat("x", 200<<10))
			c.expect(421)
			if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the 421: %v, want io.EOF", err)
			}
			c.conn.Close() // the server drains until the client closes too
			sess := onlySession(t, s)
			if !errors.Is(sess.Err(), ErrClosed) {
				t.Errorf("session Err = %v, want ErrClosed", sess.Err())
			}
			if got := sess.Verbs(); !reflect.DeepEqual(got[len(got)-1:], []string{"MAIL"}) {
				t.Errorf("verbs %v: RCPT must not be handled after the hang-up", got)
			}
		})
	}
}

// PendingMessage is the message during EOD only; a refused message is not
// recorded, an accepted one is the same record.
func TestPendingMessage(t *testing.T) {
	var seen []*Message
	var outside *Message
	s := start(t, &Server{
		Hook: func(c *Conn, cmd Command) (string, bool) {
			switch cmd.Verb {
			case "EOD":
				m := c.PendingMessage()
				seen = append(seen, m)
				if strings.Contains(string(m.Data), "refuse") {
					return "554 5.7.1 refused", true
				}
			case "RCPT":
				outside = c.PendingMessage()
			}
			return "", false
		},
	})
	c := greet(t, s.Addr())
	for _, body := range []string{"refuse me", "take me"} {
		c.do("MAIL FROM:<a@example.com>", 250)
		c.do("RCPT TO:<b@example.com>", 250)
		c.do("DATA", 354)
		c.write(body + "\r\n.\r\n")
		code, _, err := c.readReply()
		if err != nil || (body == "take me") != (code == 250) {
			t.Fatalf("%q: code %d, err %v", body, code, err)
		}
	}
	c.do("QUIT", 221)
	waitEnded(t, s, 1)
	if outside != nil {
		t.Errorf("PendingMessage during RCPT = %+v, want nil", outside)
	}
	msgs := s.Messages()
	if len(seen) != 2 || len(msgs) != 1 || msgs[0] != seen[1] {
		t.Fatalf("seen %d, recorded %v: want the second seen message recorded", len(seen), msgs)
	}
	if string(seen[0].Data) != "refuse me\r\n" || seen[0].From != "a@example.com" {
		t.Errorf("pending message %q from %q", seen[0].Data, seen[0].From)
	}
}

// CloseConnections hangs up on open sessions and keeps serving.
func TestCloseConnections(t *testing.T) {
	s := start(t, &Server{})
	c := greet(t, s.Addr())
	s.CloseConnections()
	if _, _, err := c.readReply(); err == nil {
		t.Fatal("the connection is still open after CloseConnections")
	}
	sess := onlySession(t, s)
	if !errors.Is(sess.Err(), ErrClosed) {
		t.Errorf("session Err = %v, want ErrClosed", sess.Err())
	}
	c2 := greet(t, s.Addr())
	c2.do("QUIT", 221)
}

func TestParsePathArg(t *testing.T) {
	cases := []struct {
		arg, prefix, path string
		params            map[string]string
		bad               bool
	}{
		{"FROM:<a@example.com>", "FROM:", "a@example.com", map[string]string{}, false},
		{"FROM:<> BODY=8BITMIME SMTPUTF8", "FROM:", "", map[string]string{"BODY": "8BITMIME", "SMTPUTF8": ""}, false},
		{"to:<\"x y\"@example.com> notify=NEVER", "TO:", "\"x y\"@example.com", map[string]string{"NOTIFY": "NEVER"}, false},
		{"TO: <a@example.com>", "TO:", "", nil, true},
		{"TO:<a@example.com> X=1 X=2", "TO:", "", nil, true},
	}
	for _, tc := range cases {
		path, params, err := ParsePathArg(tc.arg, tc.prefix)
		if (err != nil) != tc.bad || path != tc.path || (!tc.bad && !reflect.DeepEqual(params, tc.params)) {
			t.Errorf("ParsePathArg(%q) = %q, %v, %v", tc.arg, path, params, err)
		}
	}
}
