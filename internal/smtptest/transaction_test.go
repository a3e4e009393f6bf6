package smtptest

import (
	"reflect"
	"strings"
	"testing"
)

var allExtensions = []string{"ENHANCEDSTATUSCODES", "SIZE 1000", "8BITMIME", "BINARYMIME", "CHUNKING",
	"SMTPUTF8", "REQUIRETLS", "DSN", "AUTH PLAIN"}

// STD-22, STD-31, STD-32, STD-91 (server side): MAIL parameters are
// accepted only when their extension was advertised, and checked.
func TestMAIL(t *testing.T) {
	tests := []struct {
		line   string
		ext    []string // nil: allExtensions
		want   string   // "code enhanced-code"
		from   string
		params map[string]string
	}{
		{line: "MAIL FROM:<a@example.com>", want: "250 2.1.0", from: "a@example.com", params: map[string]string{}},
		{line: "mail from:<a@example.com>", want: "250 2.1.0", from: "a@example.com", params: map[string]string{}},
		{line: "MAIL FROM:<>", want: "250 2.1.0", from: "", params: map[string]string{}},
		{line: `MAIL FROM:<"a b>c"@example.com>`, want: "250 2.1.0", from: `"a b>c"@example.com`, params: map[string]string{}},
		{line: "MAIL FROM:<@relay.example:a@example.com>", want: "250 2.1.0", from: "@relay.example:a@example.com", params: map[string]string{}},
		{line: "MAIL FROM: <a@example.com>", want: "501 5.5.4"},
		{line: "MAIL FROM:a@example.com", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> ", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com>  SIZE=1", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com>SIZE=1", want: "501 5.5.4"},
		{line: "MAIL FROM:<a b@example.com>", want: "501 5.5.4"},
		{line: "MAIL FROM:<a<b@example.com>", want: "501 5.5.4"},
		{line: "MAIL FROM:<a\x01@example.com>", want: "501 5.5.4"},
		{line: "MAIL TO:<a@example.com>", want: "501 5.5.4"},
		{line: "MAIL", want: "501 5.5.4"},
		{line: "MAIL FROM:<nodomain>", want: "553 5.1.7"},
		{line: "MAIL FROM:<a@example.com> SIZE=999 BODY=8BITMIME", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"SIZE": "999", "BODY": "8BITMIME"}},
		{line: "MAIL FROM:<a@example.com> size=1000 body=7bit", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"SIZE": "1000", "BODY": "7bit"}},
		{line: "MAIL FROM:<a@example.com> SIZE=1001", want: "552 5.3.4"},
		{line: "MAIL FROM:<a@example.com> SIZE=ten", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> SIZE", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> SIZE=1 SIZE=2", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> BODY=BINARYMIME", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"BODY": "BINARYMIME"}},
		{line: "MAIL FROM:<a@example.com> BODY=QUOTED", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> SMTPUTF8", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"SMTPUTF8": ""}},
		{line: "MAIL FROM:<a@example.com> SMTPUTF8=yes", want: "501 5.5.4"},
		{line: "MAIL FROM:<pelé@example.com>", want: "553 5.6.7"},
		{line: "MAIL FROM:<pelé@example.com> SMTPUTF8", want: "250 2.1.0", from: "pelé@example.com",
			params: map[string]string{"SMTPUTF8": ""}},
		{line: "MAIL FROM:<a@example.com> REQUIRETLS", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"REQUIRETLS": ""}},
		{line: "MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ+2Bx", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"RET": "HDRS", "ENVID": "QQ+2Bx"}},
		{line: "MAIL FROM:<a@example.com> RET=ALL", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> ENVID=a+2b", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> AUTH=<>", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"AUTH": "<>"}},
		{line: "MAIL FROM:<a@example.com> AUTH=a+2Bb@example.com", want: "250 2.1.0", from: "a@example.com",
			params: map[string]string{"AUTH": "a+2Bb@example.com"}},
		{line: "MAIL FROM:<a@example.com> AUTH=a=b", want: "501 5.5.4"},
		{line: "MAIL FROM:<a@example.com> XFOO=1", want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> -X=1", want: "501 5.5.4"},
		// Nothing advertised: every parameter is refused.
		{line: "MAIL FROM:<a@example.com> SIZE=1", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> BODY=8BITMIME", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> BODY=7BIT", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> BODY=BINARYMIME", ext: []string{"ENHANCEDSTATUSCODES", "8BITMIME"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> SMTPUTF8", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> REQUIRETLS", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> RET=FULL", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> ENVID=x", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "MAIL FROM:<a@example.com> AUTH=<>", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			ext := tt.ext
			if ext == nil {
				ext = allExtensions
			}
			s := start(t, &Server{Extensions: ext, MaxMessageSize: 1000})
			c := greet(t, s.Addr())
			got := c.doText(tt.line)
			if !strings.HasPrefix(got, tt.want+" ") {
				t.Fatalf("%q, want %s", got, tt.want)
			}
			if !strings.HasPrefix(tt.want, "250") {
				return
			}
			c.do("RCPT TO:<r@example.net>", 250)
			c.do("BDAT 0 LAST", 250)
			m := s.Messages()[0]
			if m.From != tt.from || !reflect.DeepEqual(m.MailParams, tt.params) {
				t.Errorf("From %q params %v, want %q %v", m.From, m.MailParams, tt.from, tt.params)
			}
		})
	}
}

func TestRCPT(t *testing.T) {
	tests := []struct {
		line   string
		ext    []string
		mail   string // "" means "MAIL FROM:<a@example.com>"
		want   string
		to     string
		params map[string]string
	}{
		{line: "RCPT TO:<b@example.net>", want: "250 2.1.5", to: "b@example.net", params: map[string]string{}},
		{line: "rcpt to:<Postmaster>", want: "250 2.1.5", to: "Postmaster", params: map[string]string{}},
		{line: "RCPT TO:<>", want: "553 5.1.3"},
		{line: "RCPT TO:<b>", want: "553 5.1.3"},
		{line: "RCPT TO:b@example.net", want: "501 5.5.4"},
		{line: "RCPT FROM:<b@example.net>", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.net", want: "250 2.1.5",
			to: "b@example.net", params: map[string]string{"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b+40example.net"}},
		{line: "RCPT TO:<b@example.net> NOTIFY=NEVER", want: "250 2.1.5", to: "b@example.net",
			params: map[string]string{"NOTIFY": "NEVER"}},
		{line: "RCPT TO:<b@example.net> NOTIFY=NEVER,DELAY", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> NOTIFY=SOMETIMES", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> NOTIFY=DELAY,DELAY", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> ORCPT=b@example.net", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> ORCPT=rfc822;a=b", want: "501 5.5.4"},
		{line: "RCPT TO:<b@example.net> SIZE=1", want: "555 5.5.4"},
		{line: "RCPT TO:<b@example.net> NOTIFY=NEVER", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net", ext: []string{"ENHANCEDSTATUSCODES"}, want: "555 5.5.4"},
		{line: "RCPT TO:<pelé@example.net>", want: "553 5.6.7"},
		{line: "RCPT TO:<pelé@example.net>", mail: "MAIL FROM:<a@example.com> SMTPUTF8", want: "250 2.1.5",
			to: "pelé@example.net", params: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			ext := tt.ext
			if ext == nil {
				ext = allExtensions
			}
			s := start(t, &Server{Extensions: ext})
			c := greet(t, s.Addr())
			mail := tt.mail
			if mail == "" {
				mail = "MAIL FROM:<a@example.com>"
			}
			c.do(mail, 250)
			got := c.doText(tt.line)
			if !strings.HasPrefix(got, tt.want+" ") {
				t.Fatalf("%q, want %s", got, tt.want)
			}
			if !strings.HasPrefix(tt.want, "250") {
				return
			}
			c.do("DATA", 354)
			c.do(".", 250)
			m := s.Messages()[0]
			if !reflect.DeepEqual(m.To, []string{tt.to}) || !reflect.DeepEqual(m.RcptParams, []map[string]string{tt.params}) {
				t.Errorf("To %q params %v, want %q %v", m.To, m.RcptParams, tt.to, tt.params)
			}
		})
	}
}

// STD-27 (server side): the order of a transaction is enforced.
func TestTransactionOrder(t *testing.T) {
	tests := []struct {
		name  string
		srv   *Server
		steps []string // "command => expected reply prefix"
	}{
		{"MAIL before EHLO", &Server{}, []string{"MAIL FROM:<a@example.com> => 503 5.5.1"}},
		{"RCPT before MAIL", &Server{}, []string{"EHLO c => 250", "RCPT TO:<b@example.com> => 503 5.5.1"}},
		{"DATA before MAIL", &Server{}, []string{"EHLO c => 250", "DATA => 503 5.5.1"}},
		{"DATA without recipients", &Server{}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 250",
			"RCPT TO:<bad> => 553", "DATA => 554 5.5.1"}},
		{"DATA with argument", &Server{}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 250",
			"RCPT TO:<b@example.com> => 250", "DATA now => 501", "DATA  => 501"}},
		{"nested MAIL", &Server{}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 250", "MAIL FROM:<a@example.com> => 503 5.5.1"}},
		{"RSET ends the transaction", &Server{}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 250",
			"RSET => 250", "RCPT TO:<b@example.com> => 503", "MAIL FROM:<a@example.com> => 250"}},
		{"EHLO ends the transaction", &Server{}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 250",
			"EHLO c => 250", "RCPT TO:<b@example.com> => 503"}},
		{"HELO is enough", &Server{}, []string{"HELO c => 250", "MAIL FROM:<a@example.com> => 250"}},
		{"RequireTLS", &Server{RequireTLS: true}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 530 5.7.0"}},
		{"RequireAuth", &Server{RequireAuth: true}, []string{"EHLO c => 250", "MAIL FROM:<a@example.com> => 530 5.7.0"}},
		{"BINARYMIME needs BDAT", &Server{Extensions: []string{"ENHANCEDSTATUSCODES", "BINARYMIME", "CHUNKING"}}, []string{
			"EHLO c => 250", "MAIL FROM:<a@example.com> BODY=BINARYMIME => 250", "RCPT TO:<b@example.com> => 250", "DATA => 503 5.5.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.srv.Extensions == nil {
				tt.srv.Extensions = []string{"ENHANCEDSTATUSCODES"}
			}
			s := start(t, tt.srv)
			c := dial(t, s.Addr())
			c.expect(220)
			for _, step := range tt.steps {
				line, want, _ := strings.Cut(step, " => ")
				if got := c.doText(line); !strings.HasPrefix(got, want) {
					t.Fatalf("%q: %q, want %q", line, got, want)
				}
			}
		})
	}
}

func TestTooManyRecipients(t *testing.T) {
	s := start(t, &Server{Extensions: []string{"ENHANCEDSTATUSCODES"}})
	c := greet(t, s.Addr())
	c.do("MAIL FROM:<a@example.com>", 250)
	var b strings.Builder
	for range MaxRecipients {
		b.WriteString("RCPT TO:<b@example.com>\r\n")
	}
	c.write(b.String())
	for range MaxRecipients {
		c.expect(250)
	}
	if got := c.doText("RCPT TO:<b@example.com>"); got != "452 4.5.3 Too many recipients" {
		t.Errorf("recipient %d: %q", MaxRecipients+1, got)
	}
}

func TestDATA(t *testing.T) {
	tests := []struct {
		name string
		sent string // after 354, including the terminator
		want string
	}{
		{"simple", "Subject: hi\r\n\r\nbody\r\n.\r\n", "Subject: hi\r\n\r\nbody\r\n"},
		{"empty", ".\r\n", ""},
		{"dot-stuffed", "..hidden\r\n...\r\nx.\r\n.\r\n", ".hidden\r\n..\r\nx.\r\n"},
		{"lenient terminators are content", "a\n.\nb\r\n.\nc\n.\r\nd\r.\re\r\n.\r\n", "a\n.\nb\r\n\nc\n.\r\nd\r.\re\r\n"},
		{"8-bit", "Subject: caf\xc3\xa9\r\n.\r\n", "Subject: caf\xc3\xa9\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{})
			c := greet(t, s.Addr())
			c.do("MAIL FROM:<a@example.com>", 250)
			c.do("RCPT TO:<b@example.com>", 250)
			c.do("RCPT TO:<c@example.com>", 250)
			c.do("DATA", 354)
			c.write(tt.sent)
			c.expect(250)
			c.do("QUIT", 221)
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if string(m.Data) != tt.want {
				t.Errorf("Data %q, want %q", m.Data, tt.want)
			}
			if m.From != "a@example.com" || !reflect.DeepEqual(m.To, []string{"b@example.com", "c@example.com"}) ||
				m.Chunks != 0 || m.TLS || m.AuthUser != "" || len(m.RcptParams) != 2 {
				t.Errorf("message %+v", m)
			}
			if got := onlySession(t, s).Verbs(); !reflect.DeepEqual(got, []string{"EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"}) {
				t.Errorf("verbs %q (message lines must not be commands)", got)
			}
		})
	}
}

func TestDATATooLarge(t *testing.T) {
	s := start(t, &Server{Extensions: []string{"ENHANCEDSTATUSCODES"}, MaxMessageSize: 10})
	c := greet(t, s.Addr())
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	c.do("DATA", 354)
	c.write(strings.Repeat("0123456789\r\n", 1000))
	if got := c.doText("."); got != "552 5.3.4 Message size exceeds fixed limit" {
		t.Errorf("end of data: %q", got)
	}
	c.do("RCPT TO:<b@example.com>", 503) // the transaction is over
	c.do("MAIL FROM:<a@example.com>", 250)
	c.do("RCPT TO:<b@example.com>", 250)
	c.do("DATA", 354)
	c.do("0123456\r\n.", 250) // exactly 10 octets
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// STD-28, STD-29, STD-30 (server side): BDAT reads exactly the announced
// octets, is not mixed with DATA and is refused after a failed chunk.
func TestBDAT(t *testing.T) {
	ext := []string{"ENHANCEDSTATUSCODES", "CHUNKING", "BINARYMIME"}
	t.Run("chunks", func(t *testing.T) {
		s := start(t, &Server{Extensions: ext})
		c := greet(t, s.Addr())
		c.do("MAIL FROM:<a@example.com> BODY=BINARYMIME", 250)
		c.do("RCPT TO:<b@example.com>", 250)
		c.write("BDAT 9\r\n.\r\nhi\r\n\r\n")
		if got := c.expect(250); got[0] != "2.0.0 9 octets received" {
			t.Errorf("chunk reply %q", got)
		}
		c.write("bdat 7 last\r\n\x00\xff.\r\n.\r")
		c.expect(250)
		c.do("QUIT", 221)
		m := s.Messages()[0]
		if want := ".\r\nhi\r\n\r\n\x00\xff.\r\n.\r"; string(m.Data) != want || m.Chunks != 2 {
			t.Errorf("Data %q Chunks %d, want %q 2", m.Data, m.Chunks, want)
		}
		if got := onlySession(t, s).Verbs(); !reflect.DeepEqual(got, []string{"EHLO", "MAIL", "RCPT", "BDAT", "BDAT", "QUIT"}) {
			t.Errorf("verbs %q", got)
		}
	})
	t.Run("BDAT 0 LAST", func(t *testing.T) {
		s := start(t, &Server{Extensions: ext})
		c := greet(t, s.Addr())
		c.do("MAIL FROM:<a@example.com>", 250)
		c.do("RCPT TO:<b@example.com>", 250)
		c.write("BDAT 3\r\nabc")
		c.expect(250)
		c.do("BDAT 0 LAST", 250)
		if m := s.Messages()[0]; string(m.Data) != "abc" || m.Chunks != 2 {
			t.Errorf("Data %q Chunks %d", m.Data, m.Chunks)
		}
	})
	steps := []struct {
		name  string
		ext   []string
		max   int64
		steps []string // raw bytes to send => expected reply prefix
	}{
		{"not offered", []string{"ENHANCEDSTATUSCODES"}, 0, []string{"MAIL FROM:<a@example.com>\r\n => 250",
			"RCPT TO:<b@example.com>\r\n => 250", "BDAT 4 LAST\r\nRSET => 502 5.5.1", "NOOP\r\n => 250"}},
		{"before MAIL", ext, 0, []string{"BDAT 4\r\nRSET => 503 5.5.1", "NOOP\r\n => 250"}},
		{"without recipients", ext, 0, []string{"MAIL FROM:<a@example.com>\r\n => 250", "BDAT 4\r\nRSET => 554 5.5.1",
			"BDAT 4 LAST\r\nRSET => 503 5.5.1", "RSET\r\n => 250"}},
		{"after a failed chunk", ext, 5, []string{"MAIL FROM:<a@example.com>\r\n => 250", "RCPT TO:<b@example.com>\r\n => 250",
			"BDAT 4\r\nabcd => 250", "BDAT 4\r\nefgh => 552 5.3.4", "BDAT 1 LAST\r\ni => 503 5.5.1",
			"DATA\r\n => 503 5.5.1", "RSET\r\n => 250", "MAIL FROM:<a@example.com>\r\n => 250"}},
		{"DATA after BDAT", ext, 0, []string{"MAIL FROM:<a@example.com>\r\n => 250", "RCPT TO:<b@example.com>\r\n => 250",
			"BDAT 2\r\nab => 250", "DATA\r\n => 503 5.5.1", "RCPT TO:<c@example.com>\r\n => 503 5.5.1"}},
		{"bad size", ext, 0, []string{"MAIL FROM:<a@example.com>\r\n => 250", "RCPT TO:<b@example.com>\r\n => 250",
			"BDAT x\r\n => 501 5.5.4", "BDAT\r\n => 501 5.5.4", "BDAT 1 FIRST\r\n => 501 5.5.4", "BDAT 1 LAST\r\nx => 503 5.5.1"}},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{Extensions: tt.ext, MaxMessageSize: tt.max})
			c := greet(t, s.Addr())
			for _, step := range tt.steps {
				raw, want, _ := strings.Cut(step, " => ")
				c.write(raw)
				code, lines, err := c.readReply()
				if err != nil {
					t.Fatalf("%q: %v", raw, err)
				}
				if got := strings.TrimSpace(itoa3(code) + " " + lines[0]); !strings.HasPrefix(got, want) {
					t.Fatalf("%q: %q, want %q", raw, got, want)
				}
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

func itoa3(code int) string {
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}
