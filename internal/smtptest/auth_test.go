package smtptest

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

var authUsers = map[string]string{"alice": "wonderland", "bob": "token-123"}

func oauthBearerIR(user, token string) string {
	_, ir, _ := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: user, Token: token, Host: "mx.test.example", Port: 587}).Start()
	return b64(string(ir))
}

// STD-15, STD-17, STD-18, STD-19, STD-21 (server side): the AUTH exchange
// of RFC 4954 with each built-in mechanism, "=" and "*", and the reply
// codes.
func TestAUTH(t *testing.T) {
	type step struct {
		send string // a command or a SASL response line
		want string // reply prefix: "235 2.7.0", or "334 " + the decoded challenge
	}
	tests := []struct {
		name  string
		ext   []string // nil: AUTH with every built-in
		steps []step
		user  string // AuthUser after the exchange ("" if it fails)
	}{
		{"PLAIN initial response", nil, []step{{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "235 2.7.0"}}, "alice"},
		{"PLAIN lower-case name", nil, []step{{"AUTH plain " + b64("\x00alice\x00wonderland"), "235 2.7.0"}}, "alice"},
		{"PLAIN authzid same as user", nil, []step{{"AUTH PLAIN " + b64("alice\x00alice\x00wonderland"), "235 2.7.0"}}, "alice"},
		{"PLAIN authzid of another user", nil, []step{{"AUTH PLAIN " + b64("bob\x00alice\x00wonderland"), "535 5.7.8"}}, ""},
		{"PLAIN challenge", nil, []step{{"AUTH PLAIN", "334 "}, {b64("\x00alice\x00wonderland"), "235 2.7.0"}}, "alice"},
		{"PLAIN wrong password", nil, []step{{"AUTH PLAIN " + b64("\x00alice\x00rabbit"), "535 5.7.8"}}, ""},
		{"PLAIN unknown user", nil, []step{{"AUTH PLAIN " + b64("\x00carol\x00wonderland"), "535 5.7.8"}}, ""},
		{"PLAIN empty initial response", nil, []step{{"AUTH PLAIN =", "535 5.7.8"}}, ""},
		{"PLAIN empty response", nil, []step{{"AUTH PLAIN", "334 "}, {"", "535 5.7.8"}}, ""},
		{"cancel as initial response", nil, []step{{"AUTH PLAIN *", "501 5.7.0"}}, ""},
		{"cancel after challenge", nil, []step{{"AUTH PLAIN", "334 "}, {"*", "501 5.7.0"}}, ""},
		{"bad base64 initial response", nil, []step{{"AUTH PLAIN AGFsaWNl!", "501 5.5.2"}}, ""},
		{"bad base64 response", nil, []step{{"AUTH PLAIN", "334 "}, {"%%%", "501 5.5.2"}}, ""},
		{"no mechanism", nil, []step{{"AUTH", "501 5.5.4"}}, ""},
		{"unknown mechanism", nil, []step{{"AUTH KERBEROS_V4", "504 5.5.4"}}, ""},
		{"mechanism not advertised", []string{"ENHANCEDSTATUSCODES", "AUTH LOGIN"},
			[]step{{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "504 5.5.4"}}, ""},
		{"old AUTH= form", []string{"ENHANCEDSTATUSCODES", "AUTH=PLAIN"},
			[]step{{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "235 2.7.0"}}, "alice"},
		{"AUTH not offered", []string{"ENHANCEDSTATUSCODES"}, []step{{"AUTH PLAIN =", "502 5.5.1"}}, ""},
		{"twice", nil, []step{{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "235"},
			{"AUTH PLAIN " + b64("\x00bob\x00token-123"), "503 5.5.1"}}, "alice"},
		{"during a transaction", nil, []step{{"MAIL FROM:<a@example.com>", "250"},
			{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "503 5.5.1"}}, ""},
		{"after a failure", nil, []step{{"AUTH PLAIN " + b64("\x00alice\x00x"), "535"},
			{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "235"}}, "alice"},
		{"LOGIN", nil, []step{{"AUTH LOGIN", "334 Username:"}, {b64("alice"), "334 Password:"}, {b64("wonderland"), "235 2.7.0"}}, "alice"},
		{"LOGIN initial response", nil, []step{{"AUTH LOGIN " + b64("alice"), "334 Password:"}, {b64("wonderland"), "235 2.7.0"}}, "alice"},
		{"LOGIN wrong password", nil, []step{{"AUTH LOGIN " + b64("alice"), "334 Password:"}, {b64("x"), "535 5.7.8"}}, ""},
		{"LOGIN cancel", nil, []step{{"AUTH LOGIN", "334 Username:"}, {"*", "501 5.7.0"}}, ""},
		{"XOAUTH2", nil, []step{{"AUTH XOAUTH2 " + b64("user=bob\x01auth=Bearer token-123\x01\x01"), "235 2.7.0"}}, "bob"},
		{"XOAUTH2 challenge", nil, []step{{"AUTH XOAUTH2", "334 "},
			{b64("user=bob\x01auth=Bearer token-123\x01\x01"), "235 2.7.0"}}, "bob"},
		{"XOAUTH2 wrong token", nil, []step{{"AUTH XOAUTH2 " + b64("user=bob\x01auth=Bearer nope\x01\x01"), "334 " + xoauth2Failure},
			{"", "535 5.7.8"}}, ""},
		{"XOAUTH2 malformed", nil, []step{{"AUTH XOAUTH2 " + b64("user=bob auth=Bearer token-123"), "334 {"},
			{"", "535 5.7.8"}}, ""},
		{"OAUTHBEARER", nil, []step{{"AUTH OAUTHBEARER " + oauthBearerIR("bob", "token-123"), "235 2.7.0"}}, "bob"},
		{"OAUTHBEARER wrong token", nil, []step{{"AUTH OAUTHBEARER " + oauthBearerIR("bob", "nope"), "334 {"},
			{b64("\x01"), "535 5.7.8"}}, ""},
		{"OAUTHBEARER wrong token, empty answer", nil, []step{{"AUTH OAUTHBEARER " + oauthBearerIR("bob", "nope"), "334 {"},
			{"", "535 5.7.8"}}, ""},
		{"OAUTHBEARER without user", nil, []step{{"AUTH OAUTHBEARER " + oauthBearerIR("", "token-123"), "334 {"},
			{b64("\x01"), "535 5.7.8"}}, ""},
		{"CRAM-MD5 initial response refused", nil, []step{{"AUTH CRAM-MD5 " + b64("alice x"), "535 5.7.8"}}, ""},
		{"response line too long", nil, []step{{"AUTH PLAIN", "334 "}, {strings.Repeat("A", MaxLineLength), "500 5.5.6"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := tt.ext
			if ext == nil {
				ext = []string{"ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"}
			}
			s := start(t, &Server{Extensions: ext, Users: authUsers})
			c := greet(t, s.Addr())
			for _, st := range tt.steps {
				c.write(st.send + "\r\n")
				code, lines, err := c.readReply()
				if err != nil {
					t.Fatalf("%q: %v", st.send, err)
				}
				got := itoa3(code) + " " + lines[0]
				if code == 334 {
					got = "334 " + unb64(t, lines[0])
				}
				if !strings.HasPrefix(got, st.want) {
					t.Fatalf("%q: %q, want %q", st.send, got, st.want)
				}
			}
			c.do("NOOP", 250) // the exchange is over, commands work
			c.do("QUIT", 221)
			sess := onlySession(t, s)
			if got := sess.AuthUser(); got != tt.user {
				t.Errorf("AuthUser %q, want %q", got, tt.user)
			}
			for _, cmd := range sess.Commands() {
				if cmd.Verb != "AUTH" && cmd.Verb != "MAIL" && cmd.Verb != "EHLO" && cmd.Verb != "NOOP" && cmd.Verb != "QUIT" {
					t.Errorf("SASL response recorded as a command: %+v", cmd)
				}
			}
		})
	}
}

func TestAUTHXOAUTH2Challenge(t *testing.T) {
	var v struct{ Status, Schemes, Scope string }
	if err := json.Unmarshal([]byte(xoauth2Failure), &v); err != nil || v.Status != "401" || v.Schemes != "bearer" {
		t.Errorf("failure challenge %q: %+v %v", xoauth2Failure, v, err)
	}
}

func TestAUTHCRAMMD5(t *testing.T) {
	for _, tt := range []struct {
		name, user, secret string
		want               int
	}{
		{"good", "alice", "wonderland", 235},
		{"wrong secret", "alice", "x", 535},
		{"unknown user", "carol", "wonderland", 535},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{Extensions: []string{"AUTH CRAM-MD5"}, Users: authUsers})
			c := greet(t, s.Addr())
			chal := unb64(t, c.do("AUTH CRAM-MD5", 334)[0])
			if !strings.HasPrefix(chal, "<") || !strings.HasSuffix(chal, "@mx.test.example>") {
				t.Errorf("challenge %q", chal)
			}
			mac := hmac.New(md5.New, []byte(tt.secret))
			mac.Write([]byte(chal))
			c.do(b64(tt.user+" "+hex.EncodeToString(mac.Sum(nil))), tt.want)
			if tt.want == 235 {
				c.do("QUIT", 221)
				if sess := onlySession(t, s); sess.AuthUser() != "alice" || sess.AuthMechanism() != "CRAM-MD5" {
					t.Errorf("AuthUser %q mechanism %q", sess.AuthUser(), sess.AuthMechanism())
				}
			}
		})
	}
	t.Run("no space", func(t *testing.T) {
		s := start(t, &Server{Extensions: []string{"AUTH CRAM-MD5"}, Users: authUsers})
		c := greet(t, s.Addr())
		c.do("AUTH CRAM-MD5", 334)
		c.do(b64("alice"), 535)
	})
}

// STD-21 (server side): 538 5.7.11 when TLS is required for AUTH.
func TestAUTHRequireTLS(t *testing.T) {
	s := start(t, &Server{TLSConfig: serverTLS(t), RequireTLS: true, Users: authUsers,
		Extensions: []string{"ENHANCEDSTATUSCODES", "AUTH PLAIN"}})
	c := greet(t, s.Addr())
	if got := c.doText("AUTH PLAIN " + b64("\x00alice\x00wonderland")); !strings.HasPrefix(got, "538 5.7.11 ") {
		t.Errorf("AUTH before TLS: %q", got)
	}
	c.startTLS()
	c.do("EHLO c", 250)
	c.do("AUTH PLAIN "+b64("\x00alice\x00wonderland"), 235)
	c.do("MAIL FROM:<a@example.com>", 250)
}

// fakeMech is a two-round mechanism for tests: it expects "hello", sends
// "who?", expects a user name, and optionally ends with additional data.
type fakeMech struct {
	state int
	final []byte
	user  string
}

func (m *fakeMech) Next(resp []byte) ([]byte, bool, error) {
	m.state++
	switch m.state {
	case 1:
		if string(resp) != "hello" {
			return nil, false, errors.New("expected hello")
		}
		return []byte("who?"), false, nil
	case 2:
		m.user = string(resp)
		return m.final, true, nil
	}
	return nil, false, errors.New("too many rounds")
}

type namedMech struct{ fakeMech }

func (m *namedMech) Username() string { return m.user }

func TestAUTHMechanisms(t *testing.T) {
	var gotConn *Conn
	mechs := map[string]func(*Conn) SASLServer{
		"X-ANON":  func(c *Conn) SASLServer { gotConn = c; return &fakeMech{} },
		"X-NAMED": func(*Conn) SASLServer { return &namedMech{} },
		"X-FINAL": func(*Conn) SASLServer { return &namedMech{fakeMech{final: []byte("v=ok")}} },
		"X-NIL":   func(*Conn) SASLServer { return nil },
		"PLAIN":   nil, // disables the built-in
		"LOGIN": func(*Conn) SASLServer { // replaces the built-in
			return &namedMech{}
		},
	}
	ext := []string{"ENHANCEDSTATUSCODES", "AUTH X-ANON X-NAMED X-FINAL X-NIL PLAIN LOGIN"}
	tests := []struct {
		name       string
		steps      []string // alternating: line to send, expected reply start
		user, mech string
	}{
		{"no Username method", []string{"AUTH X-ANON " + b64("hello"), "334 " + b64("who?"), b64("zed"), "235 2.7.0"}, "", "X-ANON"},
		{"Username method", []string{"AUTH X-NAMED " + b64("hello"), "334 " + b64("who?"), b64("zed"), "235 2.7.0"}, "zed", "X-NAMED"},
		{"additional data with success", []string{"AUTH X-FINAL " + b64("hello"), "334 " + b64("who?"), b64("zed"),
			"334 " + b64("v=ok"), "", "235 2.7.0"}, "zed", "X-FINAL"},
		{"additional data, non-empty answer", []string{"AUTH X-FINAL " + b64("hello"), "334 " + b64("who?"), b64("zed"),
			"334 " + b64("v=ok"), b64("x"), "535 5.7.8"}, "", ""},
		{"failure", []string{"AUTH X-NAMED " + b64("bye"), "535 5.7.8"}, "", ""},
		{"factory returns nil", []string{"AUTH X-NIL", "504 5.5.4"}, "", ""},
		{"disabled built-in", []string{"AUTH PLAIN " + b64("\x00alice\x00wonderland"), "504 5.5.4"}, "", ""},
		{"replaced built-in", []string{"AUTH LOGIN " + b64("hello"), "334 " + b64("who?"), b64("zed"), "235"}, "zed", "LOGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &Server{Extensions: ext, Users: authUsers, Mechanisms: mechs})
			c := greet(t, s.Addr())
			for i := 0; i < len(tt.steps); i += 2 {
				if got := c.doText(tt.steps[i]); !strings.HasPrefix(got, tt.steps[i+1]) {
					t.Fatalf("%q: %q, want %q", tt.steps[i], got, tt.steps[i+1])
				}
			}
			c.do("QUIT", 221)
			sess := onlySession(t, s)
			if sess.AuthUser() != tt.user || sess.AuthMechanism() != tt.mech {
				t.Errorf("AuthUser %q mechanism %q, want %q %q", sess.AuthUser(), sess.AuthMechanism(), tt.user, tt.mech)
			}
		})
	}
	if gotConn == nil || gotConn.TLS() {
		t.Errorf("factory got conn %v", gotConn)
	}
}

// go-sasl clients against the built-in servers, as the library will use
// them.
func TestAUTHGoSASLClients(t *testing.T) {
	clients := map[string]sasl.Client{
		"PLAIN":       sasl.NewPlainClient("", "alice", "wonderland"),
		"LOGIN":       sasl.NewLoginClient("alice", "wonderland"),
		"OAUTHBEARER": sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "bob", Token: "token-123"}),
	}
	for name, cl := range clients {
		t.Run(name, func(t *testing.T) {
			s := start(t, &Server{Extensions: []string{"AUTH " + name}, Users: authUsers})
			c := greet(t, s.Addr())
			mech, ir, err := cl.Start()
			if err != nil {
				t.Fatal(err)
			}
			line := "AUTH " + mech
			if ir != nil {
				line += " " + b64(string(ir))
			}
			c.write(line + "\r\n")
			for {
				code, lines, err := c.readReply()
				if err != nil {
					t.Fatal(err)
				}
				if code == 235 {
					break
				}
				if code != 334 {
					t.Fatalf("%d %q", code, lines)
				}
				resp, err := cl.Next([]byte(unb64(t, lines[0])))
				if err != nil {
					t.Fatal(err)
				}
				c.write(b64(string(resp)) + "\r\n")
			}
		})
	}
}
