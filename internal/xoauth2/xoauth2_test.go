package xoauth2

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
)

// Google's documented example (developers.google.com, "OAuth 2.0 Mechanism"):
// the initial response for someuser@example.com and its base64 form.
const (
	googleUser  = "someuser@example.com"
	googleToken = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
	googleIR64  = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
	// The documented error challenge, base64 as sent after "334 ".
	googleErr64 = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
)

func TestGoogleExample(t *testing.T) {
	c := NewClient(googleUser, googleToken)
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if mech != "XOAUTH2" {
		t.Fatalf("mechanism %q", mech)
	}
	if got := base64.StdEncoding.EncodeToString(ir); got != googleIR64 {
		t.Fatalf("initial response\n got %s\nwant %s", got, googleIR64)
	}
	if c.(*Client).Err() != nil {
		t.Fatal("Err set before any challenge")
	}
}

func TestErrorChallenge(t *testing.T) {
	challenge, err := base64.StdEncoding.DecodeString(googleErr64)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(googleUser, googleToken).(*Client)
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Next(challenge)
	if err != nil || resp == nil || len(resp) != 0 {
		t.Fatalf("Next(error challenge) = %q, %v; want the empty response", resp, err)
	}
	var e *Error
	if !errors.As(c.Err(), &e) {
		t.Fatalf("Err() = %v, want *Error", c.Err())
	}
	want := Error{Status: "401", Schemes: "bearer mac", Scope: "https://mail.google.com/"}
	if *e != want {
		t.Fatalf("Err() = %+v, want %+v", *e, want)
	}
	if msg := e.Error(); strings.Contains(msg, googleToken) || !strings.Contains(msg, "401") {
		t.Fatalf("error message %q", msg)
	}
	// A further challenge returns the error instead of another response.
	if _, err := c.Next([]byte("{}")); !errors.As(err, &e) {
		t.Fatalf("second challenge: %v, want the *Error", err)
	}
}

func TestParseError(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Error
	}{
		{"google", `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`, &Error{"401", "bearer", "https://mail.google.com/"}},
		{"trailing newline", "{\"status\":\"400\"}\n", &Error{Status: "400"}},
		{"microsoft style", `{"status":"401","schemes":"Bearer"}`, &Error{Status: "401", Schemes: "Bearer"}},
		{"numeric status", `{"status":401,"schemes":"bearer"}`, &Error{Status: "401", Schemes: "bearer"}},
		{"unknown members", `{"status":"401","x":[1,2],"scope":"s"}`, &Error{Status: "401", Scope: "s"}},
		{"empty", ``, nil},
		{"not JSON", `status=401`, nil},
		{"array", `["401"]`, nil},
		{"no status", `{"schemes":"bearer"}`, nil},
		{"null status", `{"status":null}`, nil},
		{"empty status", `{"status":""}`, nil},
		{"bool status", `{"status":true}`, nil},
		{"object status", `{"status":{}}`, nil},
		{"control in status", `{"status":"40\n1"}`, nil},
		{"long status", `{"status":"` + strings.Repeat("4", 33) + `"}`, nil},
		{"scope not string", `{"status":"401","scope":1}`, nil},
		{"two objects", `{"status":"401"}{"status":"402"}`, nil},
		{"truncated", `{"status":"401"`, nil},
		{"too long", `{"status":"401","x":"` + strings.Repeat("a", maxChallenge) + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseError([]byte(tt.in))
			if tt.want == nil {
				if !errors.Is(err, ErrMalformed) || got != nil {
					t.Fatalf("ParseError(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil || *got != *tt.want {
				t.Fatalf("ParseError(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// An unparseable challenge is still answered with the empty response, so the
// server can finish with its 5xx; Err reports ErrMalformed.
func TestMalformedChallenge(t *testing.T) {
	c := NewClient("u", "t").(*Client)
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Next([]byte("garbage"))
	if err != nil || len(resp) != 0 {
		t.Fatalf("Next = %q, %v", resp, err)
	}
	if !errors.Is(c.Err(), ErrMalformed) {
		t.Fatalf("Err = %v, want ErrMalformed", c.Err())
	}
}

func TestClientInvalidCredentials(t *testing.T) {
	for _, tt := range []struct{ user, token string }{
		{"", "t"},
		{"u", ""},
		{"u\x01auth=Bearer evil", "t"},
		{"u", "t\x01\x01"},
		{"u\r\n", "t"},
		{"u", "t\nQUIT"},
		{"u", "t\r"},
	} {
		c := NewClient(tt.user, tt.token)
		_, ir, err := c.Start()
		if !errors.Is(err, ErrInvalidCredentials) || ir != nil {
			t.Errorf("Start(%q, %q) = %q, %v; want ErrInvalidCredentials", tt.user, tt.token, ir, err)
		}
		if err != nil && strings.Contains(err.Error(), "evil") {
			t.Errorf("error %q echoes the input", err)
		}
		if _, err := c.Next(nil); err == nil {
			t.Error("Next after a failed Start succeeded")
		}
	}
}

func TestClientEmptyChallengeResend(t *testing.T) {
	c := NewClient(googleUser, googleToken).(*Client)
	_, ir, _ := c.Start()
	resp, err := c.Next([]byte{})
	if err != nil || string(resp) != string(ir) {
		t.Fatalf("Next(empty) = %q, %v; want the initial response", resp, err)
	}
	resp, err = c.Next([]byte{})
	if err != nil || len(resp) != 0 || !errors.Is(c.Err(), ErrMalformed) {
		t.Fatalf("second empty challenge: %q, %v, Err %v", resp, err, c.Err())
	}
}

// exchange drives c against s like an SMTP session.
func exchange(c sasl.Client, s *Server) error {
	_, resp, err := c.Start()
	if err != nil {
		return err
	}
	for range 5 {
		challenge, done, err := s.Next(resp)
		if err != nil || done {
			return err
		}
		if resp, err = c.Next(challenge); err != nil {
			return err
		}
	}
	return errors.New("exchange did not end")
}

func TestClientAgainstServer(t *testing.T) {
	check := func(user, token string) bool { return user == googleUser && token == googleToken }

	s := NewServer(check)
	if err := exchange(NewClient(googleUser, googleToken), s); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if s.Username() != googleUser {
		t.Fatalf("Username = %q", s.Username())
	}

	s = NewServer(check)
	c := NewClient(googleUser, "expired").(*Client)
	if err := exchange(c, s); !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("bad token: %v, want ErrTokenRejected", err)
	}
	var e *Error
	if !errors.As(c.Err(), &e) || e.Status != "401" || e.Scope != "https://mail.google.com/" {
		t.Fatalf("client Err = %v", c.Err())
	}
	if s.Username() != "" {
		t.Fatal("Username set after failure")
	}
}

func TestServer(t *testing.T) {
	s := NewServer(func(string, string) bool { return true })
	if ch, done, err := s.Next(nil); err != nil || done || ch == nil || len(ch) != 0 {
		t.Fatalf("Next(nil) = %q, %v, %v; want empty challenge", ch, done, err)
	}
	if _, done, err := s.Next([]byte("user=u\x01auth=Bearer t\x01\x01")); !done || err != nil {
		t.Fatalf("done=%v err=%v", done, err)
	}
	if _, _, err := s.Next([]byte{}); err == nil {
		t.Fatal("Next after done succeeded")
	}

	s = NewServer(func(string, string) bool { return false })
	ch, _, _ := s.Next([]byte("user=u\x01auth=Bearer t\x01\x01"))
	if e, err := ParseError(ch); err != nil || e.Status != "401" {
		t.Fatalf("error challenge %q: %v", ch, err)
	}
	if _, _, err := s.Next([]byte("x")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-empty response to the error challenge: %v", err)
	}
}

func TestParseInitialResponse(t *testing.T) {
	tests := []struct {
		in          string
		user, token string
	}{
		{"user=u\x01auth=Bearer t\x01\x01", "u", "t"},
		{"auth=bearer t\x01user=u\x01\x01", "u", "t"},
		{"user=a=b\x01host=x\x01auth=BEARER t.t\x01\x01", "a=b", "t.t"},
		{"user=u\x01auth=Bearer t\x01", "", ""},
		{"user=u\x01auth=Bearer t", "", ""},
		{"user=u\x01\x01", "", ""},
		{"auth=Bearer t\x01\x01", "", ""},
		{"user=u\x01user=v\x01auth=Bearer t\x01\x01", "", ""},
		{"user=u\x01auth=Bearer t\x01auth=Bearer s\x01\x01", "", ""},
		{"user=u\x01auth=Basic t\x01\x01", "", ""},
		{"user=u\x01auth=Bearer \x01\x01", "", ""},
		{"user=u\x01auth=Bearert\x01\x01", "", ""},
		{"user=\x01auth=Bearer t\x01\x01", "", ""},
		{"user=u\x01\x01auth=Bearer t\x01\x01", "", ""},
		{"user=u\x01=x\x01auth=Bearer t\x01\x01", "", ""},
		{"user=u\r\n\x01auth=Bearer t\x01\x01", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		user, token, err := parseInitialResponse([]byte(tt.in))
		if tt.user == "" {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("parseInitialResponse(%q) = %q, %q, %v; want ErrMalformed", tt.in, user, token, err)
			}
			continue
		}
		if err != nil || user != tt.user || token != tt.token {
			t.Errorf("parseInitialResponse(%q) = %q, %q, %v", tt.in, user, token, err)
		}
	}
}

func FuzzParseError(f *testing.F) {
	g, _ := base64.StdEncoding.DecodeString(googleErr64)
	for _, s := range []string{string(g), `{"status":401}`, `{"status":"401","schemes":"Bearer"}`, `{}`, `[]`, `{"status":"4\u00e9"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, challenge []byte) {
		e, err := ParseError(challenge)
		if err != nil {
			if e != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseError = %v, %v", e, err)
			}
			// The client answers any challenge with the empty response.
			c := NewClient("u", "t").(*Client)
			c.Start()
			if resp, err := c.Next(challenge); len(challenge) > 0 && (err != nil || len(resp) != 0 || c.Err() == nil) {
				t.Fatalf("client: %q, %v, Err %v", resp, err, c.Err())
			}
			return
		}
		// Accepted: the rules hold and the result survives a round trip.
		if e.Status == "" || len(e.Status) > 32 || !printable(e.Status) || !utf8.ValidString(e.Schemes) || !utf8.ValidString(e.Scope) {
			t.Fatalf("accepted %+v from %q", e, challenge)
		}
		if len(challenge) > maxChallenge {
			t.Fatalf("accepted a %d-byte challenge", len(challenge))
		}
		b, _ := json.Marshal(map[string]string{"status": e.Status, "schemes": e.Schemes, "scope": e.Scope})
		e2, err := ParseError(b)
		if err != nil || *e2 != *e {
			t.Fatalf("round trip of %+v: %+v, %v", e, e2, err)
		}
	})
}

func FuzzInitialResponse(f *testing.F) {
	for _, s := range []string{"user=u\x01auth=Bearer t\x01\x01", "auth=bearer t\x01user=u\x01host=h\x01\x01", "user=u\x01\x01", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, token, err := parseInitialResponse(msg)
		if err != nil {
			return
		}
		if !validField(user) || !validField(token) {
			t.Fatalf("accepted user %q token %q from %q", user, token, msg)
		}
		// What a client builds from the result parses back to the same.
		_, ir, err := NewClient(user, token).Start()
		if err != nil {
			t.Fatalf("client refuses %q, %q: %v", user, token, err)
		}
		u2, t2, err := parseInitialResponse(ir)
		if err != nil || u2 != user || t2 != token {
			t.Fatalf("round trip: %q, %q, %v", u2, t2, err)
		}
	})
}
