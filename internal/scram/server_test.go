package scram

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func rfcCredentials(t testing.TB) Credentials {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(rfcSalt)
	if err != nil {
		t.Fatal(err)
	}
	return NewCredentials("pencil", salt, 4096)
}

func lookupOne(name string, cr Credentials) func(string) (Credentials, bool) {
	return func(u string) (Credentials, bool) {
		if u != name {
			return Credentials{}, false
		}
		return cr, true
	}
}

func TestServerRFC7677Vector(t *testing.T) {
	s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
	s.testNonce = rfcServerNonce
	steps := []struct{ in, out string }{
		{rfcClientFirst, rfcServerFirst},
		{rfcClientFinal, rfcServerFinal},
	}
	for _, st := range steps {
		out, done, err := s.Next([]byte(st.in))
		if err != nil || done || string(out) != st.out {
			t.Fatalf("Next(%q) = %q, %v, %v; want %q", st.in, out, done, err, st.out)
		}
	}
	if got := s.Username(); got != "user" {
		t.Fatalf("Username = %q", got)
	}
	out, done, err := s.Next([]byte{})
	if err != nil || !done || out != nil {
		t.Fatalf("Next(empty) = %q, %v, %v; want done", out, done, err)
	}
	if _, _, err := s.Next([]byte{}); err == nil {
		t.Fatal("Next after done succeeded")
	}
}

// run drives a client against a server the way an SMTP session does and
// returns the client's or the server's error.
func run(t testing.TB, c *Client, s *Server) error {
	t.Helper()
	_, resp, err := c.Start()
	if err != nil {
		return err
	}
	for range 10 {
		challenge, done, err := s.Next(resp)
		if err != nil {
			return err
		}
		if done {
			return c.Complete()
		}
		if resp, err = c.Next(challenge); err != nil {
			return err
		}
	}
	t.Fatal("exchange did not end")
	return nil
}

func TestClientAgainstServer(t *testing.T) {
	users := map[string]Credentials{
		"user":             NewCredentials("pencil", nil, 4096),
		"a,b=c":            NewCredentials("x", []byte("salt"), 4096),
		"bob@test.example": NewCredentials("päss w0rd", []byte("salt"), 4096),
		"IX":               NewCredentials("\u2168", []byte("salt"), 4096),
		"weak":             NewCredentials("x", []byte("salt"), 1000),
	}
	lookup := func(u string) (Credentials, bool) { cr, ok := users[u]; return cr, ok }
	bind := &ChannelBinding{Type: TLSExporterType, Data: []byte("0123456789abcdef0123456789abcdef")}
	other := &ChannelBinding{Type: TLSExporterType, Data: []byte("0123456789abcdef0123456789abcdeX")}

	tests := []struct {
		name              string
		user, pass, authz string
		clientCB          *ChannelBinding
		couldBind         bool
		serverCB          *ChannelBinding
		want              error
	}{
		{name: "no binding", user: "user", pass: "pencil"},
		{name: "escaped name", user: "a,b=c", pass: "x"},
		{name: "utf8 password", user: "bob@test.example", pass: "päss w0rd"},
		{name: "NFKC password", user: "IX", pass: "IX"},
		{name: "NBSP password", user: "bob@test.example", pass: "päss\u00A0w0rd"},
		{name: "authzid self", user: "user", pass: "pencil", authz: "user"},
		{name: "binding", user: "user", pass: "pencil", clientCB: bind, serverCB: bind},
		{name: "could bind, server cannot", user: "user", pass: "pencil", couldBind: true},
		{name: "cannot bind, server can", user: "user", pass: "pencil", serverCB: bind},
		{name: "downgrade", user: "user", pass: "pencil", couldBind: true, serverCB: bind, want: ErrChannelBindingDowngrade},
		{name: "binding data differs", user: "user", pass: "pencil", clientCB: bind, serverCB: other, want: ErrChannelBinding},
		{name: "binding type differs", user: "user", pass: "pencil", clientCB: &ChannelBinding{Type: "tls-server-end-point", Data: bind.Data}, serverCB: bind, want: ErrChannelBinding},
		{name: "server offers no binding", user: "user", pass: "pencil", clientCB: bind, want: ErrChannelBinding},
		{name: "wrong password", user: "user", pass: "pencil2", want: ErrInvalidProof},
		{name: "wrong password with binding", user: "user", pass: "pencil2", clientCB: bind, serverCB: bind, want: ErrInvalidProof},
		{name: "unknown user", user: "nobody", pass: "x", want: ErrUnknownUser},
		{name: "other authzid", user: "user", pass: "pencil", authz: "admin", want: ErrAuthorization},
		{name: "too few iterations", user: "weak", pass: "x", want: ErrIterationCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(tt.user, tt.pass, tt.authz, tt.clientCB, tt.couldBind).(*Client)
			s := NewServer(lookup, tt.serverCB)
			err := run(t, c, s)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("exchange failed: %v", err)
				}
				if s.Username() != tt.user {
					t.Fatalf("server Username = %q, want %q", s.Username(), tt.user)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if s.Username() != "" {
				t.Fatalf("server Username = %q after failure", s.Username())
			}
		})
	}
}

// A server that claims success before proving itself leaves the client
// incomplete.
func TestClientIncompleteOnEarlySuccess(t *testing.T) {
	c := rfcClient()
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next([]byte(rfcServerFirst)); err != nil {
		t.Fatal(err)
	}
	// The server now answers 235 without a server-final-message.
	if err := c.Complete(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Complete = %v, want ErrIncomplete", err)
	}
}

func TestServerNoInitialResponse(t *testing.T) {
	s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
	out, done, err := s.Next(nil)
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("Next(nil) = %q, %v, %v; want empty challenge", out, done, err)
	}
	s.testNonce = rfcServerNonce
	out, _, err = s.Next([]byte(rfcClientFirst))
	if err != nil || string(out) != rfcServerFirst {
		t.Fatalf("Next(client-first) = %q, %v", out, err)
	}
}

func TestServerRejectsClientFirst(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"no gs2 header", "n=user,r=abc", ErrMalformed},
		{"bad flag", "x,,n=user,r=abc", ErrMalformed},
		{"bad cb name", "p=tls exporter,,n=user,r=abc", ErrMalformed},
		{"empty cb name", "p=,,n=user,r=abc", ErrMalformed},
		{"unterminated gs2", "n,", ErrMalformed},
		{"bad authzid", "n,b=x,n=user,r=abc", ErrMalformed},
		{"empty authzid", "n,a=,n=user,r=abc", ErrMalformed},
		{"bad escape in authzid", "n,a=x=2D,n=user,r=abc", ErrMalformed},
		{"mandatory extension", "n,,m=x,n=user,r=abc", ErrExtension},
		{"mandatory extension later", "n,,n=user,r=abc,m=x", ErrExtension},
		{"no user", "n,,r=abc", ErrMalformed},
		{"no nonce", "n,,n=user", ErrMalformed},
		{"empty user", "n,,n=,r=abc", ErrMalformed},
		{"bad escape", "n,,n=us=er,r=abc", ErrMalformed},
		{"lower-case escape", "n,,n=a=2c,r=abc", ErrMalformed},
		{"truncated escape", "n,,n=a=2,r=abc", ErrMalformed},
		{"empty nonce", "n,,n=user,r=", ErrMalformed},
		{"nonce with space", "n,,n=user,r=a c", ErrMalformed},
		{"duplicate user", "n,,n=user,r=abc,n=other", ErrMalformed},
		{"NUL", "n,,n=us\x00er,r=abc", ErrMalformed},
		{"invalid UTF-8", "n,,n=us\xffer,r=abc", ErrMalformed},
		{"unknown user", "n,,n=nobody,r=abc", ErrUnknownUser},
		{"binding unsupported", "p=tls-exporter,,n=user,r=abc", ErrChannelBinding},
		{"too long", "n,,n=user,r=abc,x=" + strings.Repeat("y", maxMessageLen), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
			msg := []byte(tt.msg)
			if _, _, err := s.Next(msg); !errors.Is(err, tt.want) {
				t.Fatalf("Next(%q) error = %v, want %v", tt.msg, err, tt.want)
			}
			if _, _, err := s.Next([]byte(rfcClientFirst)); err == nil {
				t.Fatal("server continued after a failure")
			}
		})
	}
}

func TestServerAcceptsClientFirst(t *testing.T) {
	for _, msg := range []string{
		rfcClientFirst,
		"n,,n=user,r=abc,x=optional",
		"n,a=user,n=user,r=abc",
		"y,,n=user,r=abc",
	} {
		s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
		if _, _, err := s.Next([]byte(msg)); err != nil {
			t.Errorf("Next(%q) = %v", msg, err)
		}
	}
}

func TestServerRejectsClientFinal(t *testing.T) {
	const r = "r=" + rfcClientNonce + rfcServerNonce
	const p = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"no proof", "c=biws," + r, ErrMalformed},
		{"proof first", p[1:] + ",c=biws," + r, ErrMalformed},
		{"no channel binding", r + p, ErrMalformed},
		{"wrong gs2 in c", "c=eSws," + r + p, ErrChannelBinding},
		{"c not base64", "c=b!ws," + r + p, ErrMalformed},
		{"nonce differs", "c=biws,r=" + rfcClientNonce + "X" + p, ErrNonce},
		{"client nonce only", "c=biws,r=" + rfcClientNonce + p, ErrNonce},
		{"short proof", "c=biws," + r + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==", ErrMalformed},
		{"proof not base64", "c=biws," + r + ",p=@@@@", ErrMalformed},
		{"wrong proof", "c=biws," + r + ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", ErrInvalidProof},
		{"extension changes AuthMessage", "c=biws," + r + ",x=y" + p, ErrInvalidProof},
		{"mandatory extension", "c=biws," + r + ",m=y" + p, ErrExtension},
		{"duplicate nonce", "c=biws," + r + "," + r + p, ErrMalformed},
		{"two proofs", "c=biws," + r + p + p, ErrMalformed},
		{"trailing comma", rfcClientFinal + ",", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
			s.testNonce = rfcServerNonce
			if _, _, err := s.Next([]byte(rfcClientFirst)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Next([]byte(tt.msg)); !errors.Is(err, tt.want) {
				t.Fatalf("Next(%q) error = %v, want %v", tt.msg, err, tt.want)
			}
			if s.Username() != "" {
				t.Fatal("Username set after failure")
			}
		})
	}
}

func TestServerNonEmptyFinalResponse(t *testing.T) {
	s := NewServer(lookupOne("user", rfcCredentials(t)), nil)
	s.testNonce = rfcServerNonce
	for _, m := range []string{rfcClientFirst, rfcClientFinal} {
		if _, _, err := s.Next([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if _, done, err := s.Next([]byte("x")); err == nil || done {
		t.Fatalf("non-empty last response: done=%v err=%v", done, err)
	}
	if s.Username() != "" {
		t.Fatal("Username set after failure")
	}
}

func TestServerUnusableCredentials(t *testing.T) {
	for name, cr := range map[string]Credentials{
		"zero":          {},
		"no iterations": NewCredentials("x", []byte("s"), 0),
		"short key":     {Salt: []byte("s"), Iterations: 4096, StoredKey: []byte{1}, ServerKey: []byte{2}},
	} {
		s := NewServer(lookupOne("user", cr), nil)
		if _, _, err := s.Next([]byte(rfcClientFirst)); err == nil {
			t.Errorf("%s: unusable credentials accepted", name)
		}
	}
	if _, _, err := (&Server{}).Next([]byte(rfcClientFirst)); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("server without Lookup: %v", err)
	}
}

func TestNewCredentials(t *testing.T) {
	a := NewCredentials("pencil", nil, 4096)
	b := NewCredentials("pencil", nil, 4096)
	if len(a.Salt) != 16 || string(a.Salt) == string(b.Salt) {
		t.Fatalf("random salts %x, %x", a.Salt, b.Salt)
	}
	salt := []byte("salt")
	c := NewCredentials("pencil", salt, 4096)
	salt[0] = 'X'
	if string(c.Salt) != "salt" {
		t.Fatal("NewCredentials kept the caller's salt slice")
	}
	// SASLprep makes equivalent passwords equal.
	d := NewCredentials("I\u00ADX", []byte("salt"), 4096)
	e := NewCredentials("\u2168", []byte("salt"), 4096)
	if string(d.StoredKey) != string(e.StoredKey) {
		t.Fatal("SASLprep-equivalent passwords give different keys")
	}
}
