package smtptest

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHookReplies(t *testing.T) {
	tests := []struct {
		name  string
		hook  func(c *Conn, cmd Command) (string, bool)
		send  string
		reads []string // replies expected, "code first-line"
	}{
		{"CONNECT replaces the greeting", func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "CONNECT" {
				return "554 5.3.2 go away", true
			}
			return "", false
		}, "", []string{"554 5.3.2 go away"}},
		{"reply with CRLF is written as is", func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "NOOP" {
				return "250-one\r\n250 two\r\n", true
			}
			return "", false
		}, "NOOP\r\n", []string{"220 mx.test.example ESMTP smtptest", "250 one"}},
		{"several replies through Write", func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "NOOP" {
				c.Write("250 first\r\n")
				c.Write("250 second\r\n")
				return "250 third", true
			}
			return "", false
		}, "NOOP\r\n", []string{"220 mx.test.example ESMTP smtptest", "250 first", "250 second", "250 third"}},
		{"not handled falls through", func(c *Conn, cmd Command) (string, bool) {
			return "550 ignored", false
		}, "NOOP\r\n", []string{"220 mx.test.example ESMTP smtptest", "250 OK"}},
		{"handled with an empty reply", func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "NOOP" {
				return "", true
			}
			return "", false
		}, "NOOP\r\nRSET\r\n", []string{"220 mx.test.example ESMTP smtptest", "250 OK"}},
		{"unknown verb handled", func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "XCLIENT" {
				return "220 " + cmd.Arg, true
			}
			return "", false
		}, "xclient ADDR=1.2.3.4\r\n", []string{"220 mx.test.example ESMTP smtptest", "220 ADDR=1.2.3.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{Hook: tt.hook})
			c := dial(t, s.Addr())
			c.write(tt.send)
			for _, want := range tt.reads {
				code, lines, err := c.readReply()
				if err != nil {
					t.Fatalf("want %q: %v", want, err)
				}
				if got := itoa3(code) + " " + lines[0]; got != want {
					t.Fatalf("reply %q, want %q", got, want)
				}
			}
		})
	}
}

func TestHookSeesCommands(t *testing.T) {
	var got []Command
	s := start(t, &Server{TLSConfig: serverTLS(t), Hook: func(c *Conn, cmd Command) (string, bool) {
		got = append(got, cmd)
		return "", false
	}})
	c := greet(t, s.Addr())
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	c.do("DATA", 354)
	c.do("x\r\n.", 250)
	c.startTLS()
	c.do("QUIT", 221)
	waitEnded(t, s, 1)
	want := []Command{
		{Verb: "CONNECT"},
		{Verb: "EHLO", Arg: "client.example", Line: "EHLO client.example"},
		{Verb: "MAIL", Arg: "FROM:<a@example.com>", Line: "MAIL FROM:<a@example.com>"},
		{Verb: "RCPT", Arg: "TO:<b@example.com>", Line: "RCPT TO:<b@example.com>"},
		{Verb: "DATA", Line: "DATA"},
		{Verb: "EOD"},
		{Verb: "STARTTLS", Line: "STARTTLS"},
		{Verb: "QUIT", Line: "QUIT", TLS: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hook saw\n%+v\nwant\n%+v", got, want)
	}
}

func TestHookDATAAndEOD(t *testing.T) {
	tests := []struct {
		name     string
		dataRply string // hook reply to DATA ("" = default)
		eodReply string // hook reply to EOD ("" = default)
		final    int
		stored   bool
	}{
		{"default", "", "", 250, true},
		{"hook 354 reads the data", "354 go ahead", "", 250, true},
		{"EOD temporary failure", "", "451 4.3.0 try again", 451, false},
		{"EOD custom success", "", "250 2.0.0 queued as X", 250, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{Hook: func(c *Conn, cmd Command) (string, bool) {
				switch {
				case cmd.Verb == "DATA" && tt.dataRply != "":
					return tt.dataRply, true
				case cmd.Verb == "EOD" && tt.eodReply != "":
					return tt.eodReply, true
				}
				return "", false
			}})
			c := greet(t, s.Addr())
			c.do("MAIL FROM:<a@example.com>", 250)
			c.do("RCPT TO:<b@example.com>", 250)
			c.do("DATA", 354)
			c.do("..body\r\n.", tt.final)
			c.do("NOOP", 250) // in sync
			msgs := s.Messages()
			if tt.stored != (len(msgs) == 1) {
				t.Fatalf("%d messages stored", len(msgs))
			}
			if tt.stored && string(msgs[0].Data) != ".body\r\n" {
				t.Errorf("Data %q", msgs[0].Data)
			}
		})
	}
	t.Run("handled DATA without MAIL", func(t *testing.T) {
		s := start(t, &Server{Hook: func(c *Conn, cmd Command) (string, bool) {
			return "354 anyway", cmd.Verb == "DATA"
		}})
		c := greet(t, s.Addr())
		c.do("DATA", 354)
		c.do("x\r\n.", 250)
		if m := s.Messages(); len(m) != 1 || m[0].From != "" || len(m[0].To) != 0 || string(m[0].Data) != "x\r\n" {
			t.Errorf("messages %+v", m)
		}
	})
	t.Run("handled DATA rejected", func(t *testing.T) {
		s := start(t, &Server{Hook: func(c *Conn, cmd Command) (string, bool) {
			return "554 5.7.1 no", cmd.Verb == "DATA"
		}})
		c := greet(t, s.Addr())
		c.do("DATA", 554)
		c.do("NOOP", 250)
	})
}

func TestHookBDAT(t *testing.T) {
	s := start(t, &Server{Extensions: []string{"CHUNKING"}, Hook: func(c *Conn, cmd Command) (string, bool) {
		return "452 4.3.1 full", cmd.Verb == "BDAT"
	}})
	c := greet(t, s.Addr())
	c.write("BDAT 5 LAST\r\nNOOP\n")
	c.expect(452)
	c.do("NOOP", 250)
}

func TestHookStartTLS(t *testing.T) {
	var tlsErr error
	s := start(t, &Server{
		TLSConfig: serverTLS(t),
		Hook: func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb != "STARTTLS" {
				return "", false
			}
			if err := c.Write("220 2.0.0 custom go ahead\r\n"); err != nil {
				tlsErr = err
				return "", true
			}
			tlsErr = c.StartTLS()
			return "", true
		},
	})
	c := greet(t, s.Addr())
	c.startTLS()
	c.do("MAIL FROM:<a@example.com>", 503) // state reset
	c.do("EHLO c", 250)
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("QUIT", 221)
	sess := onlySession(t, s)
	if tlsErr != nil || !sess.TLS() || sess.Err() != nil {
		t.Errorf("StartTLS %v, TLS %v, Err %v", tlsErr, sess.TLS(), sess.Err())
	}
}

func TestConnStartTLSErrors(t *testing.T) {
	errs := make(chan error, 2)
	hook := func(c *Conn, cmd Command) (string, bool) {
		if cmd.Verb == "XTLS" {
			errs <- c.StartTLS()
			return "250 tried", true
		}
		return "", false
	}
	s := start(t, &Server{Hook: hook})
	c := greet(t, s.Addr())
	c.do("XTLS", 250)
	if err := <-errs; err == nil {
		t.Error("StartTLS without TLSConfig: no error")
	}
	s2 := start(t, &Server{TLSConfig: serverTLS(t), ImplicitTLS: true, Hook: hook})
	c2 := dialTLS(t, s2.Addr())
	c2.expect(220)
	c2.do("XTLS", 250)
	if err := <-errs; err == nil {
		t.Error("StartTLS inside TLS: no error")
	}
}

func TestHookCloseAndReset(t *testing.T) {
	tests := []struct {
		name    string
		verb    string
		tls     bool
		act     func(c *Conn) error
		want    error
		readErr func(error) bool
	}{
		{"Close", "NOOP", false, (*Conn).Close, ErrClosed, func(err error) bool { return err == io.EOF }},
		{"Close in TLS", "NOOP", true, (*Conn).Close, ErrClosed, func(err error) bool { return err == io.EOF }},
		{"Reset", "NOOP", false, (*Conn).Reset, ErrReset, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"Close at CONNECT", "CONNECT", false, (*Conn).Close, ErrClosed, func(err error) bool { return err == io.EOF }},
		{"Reset at EOD", "EOD", false, (*Conn).Reset, ErrReset, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{TLSConfig: serverTLS(t), ImplicitTLS: tt.tls, Hook: func(c *Conn, cmd Command) (string, bool) {
				if cmd.Verb == tt.verb {
					if err := tt.act(c); err != nil {
						t.Error(err)
					}
					return "250 never written", true
				}
				return "", false
			}})
			var c *client
			if tt.tls {
				c = dialTLS(t, s.Addr())
			} else {
				c = dial(t, s.Addr())
			}
			switch tt.verb {
			case "NOOP":
				c.expect(220)
				c.write("NOOP\r\n")
			case "EOD":
				c.expect(220)
				c.do("EHLO c", 250)
				c.do("MAIL FROM:<a@example.com>", 250)
				c.do("RCPT TO:<b@example.com>", 250)
				c.do("DATA", 354)
				c.write(".\r\n")
			}
			_, err := io.ReadAll(c.r)
			if err == nil {
				err = io.EOF
			}
			if !tt.readErr(err) {
				t.Errorf("client read: %v", err)
			}
			sess := onlySession(t, s)
			if !errors.Is(sess.Err(), tt.want) {
				t.Errorf("Err %v, want %v", sess.Err(), tt.want)
			}
			if len(s.Messages()) != 0 {
				t.Error("message stored")
			}
		})
	}
}

func TestHookStall(t *testing.T) {
	t.Run("until the context is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stalled := make(chan struct{})
		s := start(t, &Server{Hook: func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "NOOP" && cmd.Arg == "stall" {
				close(stalled)
				c.Stall(ctx)
				return "250 woke up", true
			}
			return "", false
		}})
		c := dial(t, s.Addr())
		c.expect(220)
		c.write("NOOP stall\r\n")
		<-stalled
		c.write("RSET\r\n") // sent during the stall: must not be lost
		cancel()
		if got := c.expect(250); got[0] != "woke up" {
			t.Errorf("reply %q", got)
		}
		c.expect(250) // RSET
		c.do("QUIT", 221)
		if sess := onlySession(t, s); sess.Err() != nil {
			t.Errorf("Err %v", sess.Err())
		}
	})
	t.Run("until the client hangs up", func(t *testing.T) {
		s := start(t, &Server{Hook: func(c *Conn, cmd Command) (string, bool) {
			if cmd.Verb == "CONNECT" {
				c.Stall(context.Background())
				return "", true
			}
			return "", false
		}})
		c := dial(t, s.Addr())
		c.write("EHLO c\r\n")
		c.conn.Close()
		sess := onlySession(t, s)
		if !errors.Is(sess.Err(), io.EOF) {
			t.Errorf("Err %v, want EOF", sess.Err())
		}
		if got := string(sess.Plaintext()); got != "EHLO c\r\n" {
			t.Errorf("Plaintext %q", got)
		}
	})
	t.Run("until the server closes", func(t *testing.T) {
		stalled := make(chan struct{})
		s := &Server{Logf: t.Logf, ImplicitTLS: true, TLSConfig: serverTLS(t), Timeout: DefaultTimeout,
			Hook: func(c *Conn, cmd Command) (string, bool) {
				if cmd.Verb == "EHLO" {
					close(stalled)
					c.Stall(context.Background())
					return "250 after close", true
				}
				return "", false
			}}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		c := dialTLS(t, s.Addr())
		c.expect(220)
		c.write("EHLO c\r\n")
		<-stalled
		s.Close() // returns: the stall ended
		if sess := s.Sessions()[0]; !errors.Is(sess.Err(), ErrServerClosed) {
			t.Errorf("Err %v", sess.Err())
		}
	})
	for _, implicit := range []bool{false, true} {
		name := "past read deadlines"
		if implicit {
			name += " in TLS"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stalled := make(chan *Conn)
			s := start(t, &Server{TLSConfig: serverTLS(t), ImplicitTLS: implicit,
				Hook: func(c *Conn, cmd Command) (string, bool) {
					if cmd.Verb == "NOOP" {
						stalled <- c
						c.Stall(ctx)
						return "250 " + strings.ToLower(cmd.Verb), true
					}
					return "", false
				}})
			var c *client
			if implicit {
				c = dialTLS(t, s.Addr())
			} else {
				c = dial(t, s.Addr())
			}
			c.expect(220)
			c.write("NOOP\r\n")
			conn := <-stalled
			// Expire the read deadline under the stall several times, as
			// a long stall with the per-read Timeout would: the stall must
			// outlive it and the connection must still work.
			for range 5 {
				conn.raw.SetReadDeadline(time.Now())
				time.Sleep(5 * time.Millisecond)
			}
			c.write("RSET\r\n")
			cancel()
			if got := c.expect(250); got[0] != "noop" {
				t.Errorf("reply %q", got)
			}
			c.expect(250)
		})
	}
}
