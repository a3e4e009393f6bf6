package scram

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// The SCRAM-SHA-256 exchange of RFC 7677 section 3: user "user", password
// "pencil".
const (
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// rfcClient returns a client for the RFC 7677 user with the RFC's nonce.
func rfcClient() *Client {
	c := NewClient("user", "pencil", "", nil, false).(*Client)
	c.testNonce = rfcClientNonce
	return c
}

// clientAfterServerFirst runs a client through the RFC 7677 server-first-message.
func clientAfterServerFirst(t testing.TB) *Client {
	t.Helper()
	c := rfcClient()
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next([]byte(rfcServerFirst)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRFC7677Vector(t *testing.T) {
	c := rfcClient()
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if mech != "SCRAM-SHA-256" || string(ir) != rfcClientFirst {
		t.Fatalf("Start = %q, %q; want SCRAM-SHA-256, %q", mech, ir, rfcClientFirst)
	}
	final, err := c.Next([]byte(rfcServerFirst))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfcClientFinal {
		t.Fatalf("client-final-message\n got %s\nwant %s", final, rfcClientFinal)
	}
	if err := c.Complete(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Complete before server-final = %v, want ErrIncomplete", err)
	}
	resp, err := c.Next([]byte(rfcServerFinal))
	if err != nil {
		t.Fatal(err)
	}
	if resp == nil || len(resp) != 0 {
		t.Fatalf("response to server-final = %q, want empty non-nil", resp)
	}
	if err := c.Complete(); err != nil {
		t.Fatalf("Complete = %v", err)
	}
	if _, err := c.Next([]byte("v=x")); !errors.Is(err, sasl.ErrUnexpectedServerChallenge) {
		t.Fatalf("challenge after the end = %v, want sasl.ErrUnexpectedServerChallenge", err)
	}
}

func TestClientStart(t *testing.T) {
	cb := &ChannelBinding{Type: "tls-exporter", Data: []byte{1, 2, 3}}
	tests := []struct {
		name                 string
		user, pass, authz    string
		cb                   *ChannelBinding
		couldBind            bool
		wantMech, wantPrefix string
		wantErr              error
	}{
		{name: "plain n", user: "user", pass: "pencil", wantMech: Mechanism, wantPrefix: "n,,n=user,r="},
		{name: "could bind y", user: "user", pass: "pencil", couldBind: true, wantMech: Mechanism, wantPrefix: "y,,n=user,r="},
		{name: "binding p", user: "user", pass: "pencil", cb: cb, couldBind: true, wantMech: MechanismPlus, wantPrefix: "p=tls-exporter,,n=user,r="},
		{name: "escapes", user: "a=b,c", pass: "x", wantMech: Mechanism, wantPrefix: "n,,n=a=3Db=2Cc,r="},
		{name: "escape order", user: "=2C", pass: "x", wantMech: Mechanism, wantPrefix: "n,,n==3D2C,r="},
		{name: "authzid", user: "admin", pass: "x", authz: "bob,=x", wantMech: Mechanism, wantPrefix: "n,a=bob=2C=3Dx,n=admin,r="},
		{name: "saslprep user", user: "I\u00ADX\u00A0\u2168", pass: "x", wantMech: Mechanism, wantPrefix: "n,,n=IX IX,r="},
		{name: "utf8 user", user: "jürgen", pass: "päss w0rd", wantMech: Mechanism, wantPrefix: "n,,n=jürgen,r="},
		{name: "empty user", user: "", pass: "x", wantErr: ErrSASLprep},
		{name: "user maps to nothing", user: "\u00AD", pass: "x", wantErr: ErrSASLprep},
		{name: "empty password", user: "u", pass: "", wantErr: ErrSASLprep},
		{name: "control in user", user: "u\x00v", pass: "x", wantErr: ErrSASLprep},
		{name: "control in password", user: "u", pass: "p\r\nq", wantErr: ErrSASLprep},
		{name: "unsupported in password", user: "u", pass: "pa\u0308ss", wantErr: ErrSASLprepUnsupported},
		{name: "bad authzid", user: "u", pass: "x", authz: "\x07", wantErr: ErrSASLprep},
		{name: "bad cb type", user: "u", pass: "x", cb: &ChannelBinding{Type: "tls exporter", Data: []byte{1}}, wantErr: ErrChannelBinding},
		{name: "empty cb data", user: "u", pass: "x", cb: &ChannelBinding{Type: "tls-exporter"}, wantErr: ErrChannelBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(tt.user, tt.pass, tt.authz, tt.cb, tt.couldBind)
			mech, ir, err := c.Start()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Start error = %v, want %v", err, tt.wantErr)
				}
				if _, err := c.Next([]byte(rfcServerFirst)); err == nil {
					t.Fatal("Next after a failed Start succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mech != tt.wantMech || !strings.HasPrefix(string(ir), tt.wantPrefix) {
				t.Fatalf("Start = %q, %q; want %q, prefix %q", mech, ir, tt.wantMech, tt.wantPrefix)
			}
			nonce := string(ir[len(tt.wantPrefix):])
			if len(nonce) < 24 || !isPrintable(nonce) {
				t.Fatalf("nonce %q: want >= 24 printable characters", nonce)
			}
		})
	}
}

// Secrets must not appear in errors: a password SASLprep refuses is reported
// without its characters.
func TestClientPasswordErrorRedacted(t *testing.T) {
	_, _, err := NewClient("user", "s\x07cret\u0308", "", nil, false).Start()
	if err == nil {
		t.Fatal("Start accepted a password with a control character")
	}
	if msg := err.Error(); strings.Contains(msg, "U+0007") || strings.Contains(msg, "cret") {
		t.Fatalf("error %q reveals the password", msg)
	}
	_, _, err = NewClient("us\x07er", "x", "", nil, false).Start()
	if err == nil || !strings.Contains(err.Error(), "U+0007") {
		t.Fatalf("user name error %v should name the offending code point", err)
	}
}

func TestClientNonceFresh(t *testing.T) {
	seen := map[string]bool{}
	c := NewClient("user", "pencil", "", nil, false)
	for range 50 {
		_, ir, err := c.Start()
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(ir)] {
			t.Fatalf("client-first-message %q repeated", ir)
		}
		seen[string(ir)] = true
	}
}

func TestClientServerFirstRejected(t *testing.T) {
	const r = "r=" + rfcClientNonce + "SRV"
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"garbage", "hello", ErrMalformed},
		{"mandatory extension first", "m=x," + r + ",s=" + rfcSalt + ",i=4096", ErrExtension},
		{"mandatory extension last", r + ",s=" + rfcSalt + ",i=4096,m=x", ErrExtension},
		{"missing salt", r + ",i=4096", ErrMalformed},
		{"missing iterations", r + ",s=" + rfcSalt, ErrMalformed},
		{"order", "s=" + rfcSalt + "," + r + ",i=4096", ErrMalformed},
		{"nonce not ours", "r=XXXX" + rfcServerNonce + ",s=" + rfcSalt + ",i=4096", ErrNonce},
		{"nonce prefix of ours", "r=" + rfcClientNonce[:10] + ",s=" + rfcSalt + ",i=4096", ErrNonce},
		{"nonce only ours", "r=" + rfcClientNonce + ",s=" + rfcSalt + ",i=4096", ErrNonce},
		{"nonce case changed", "r=" + strings.ToLower(rfcClientNonce) + "S,s=" + rfcSalt + ",i=4096", ErrNonce},
		{"nonce with space", r + " x,s=" + rfcSalt + ",i=4096", ErrMalformed},
		{"nonce with DEL", r + "\x7f,s=" + rfcSalt + ",i=4096", ErrMalformed},
		{"nonce non-ASCII", r + "é,s=" + rfcSalt + ",i=4096", ErrMalformed},
		{"empty nonce", "r=,s=" + rfcSalt + ",i=4096", ErrMalformed},
		{"empty salt", r + ",s=,i=4096", ErrMalformed},
		{"salt not base64", r + ",s=%%%%,i=4096", ErrMalformed},
		{"salt unpadded", r + ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096", ErrMalformed},
		{"salt non-canonical", r + ",s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096", ErrMalformed},
		{"salt with newline", r + ",s=W22ZaJ0SNY7s\noEsUEjb6gQ==,i=4096", ErrMalformed},
		{"salt url alphabet", r + ",s=W22ZaJ0SNY7soEsUEjb6g_==,i=4096", ErrMalformed},
		{"iterations zero", r + ",s=" + rfcSalt + ",i=0", ErrMalformed},
		{"iterations leading zero", r + ",s=" + rfcSalt + ",i=04096", ErrMalformed},
		{"iterations negative", r + ",s=" + rfcSalt + ",i=-4096", ErrMalformed},
		{"iterations plus", r + ",s=" + rfcSalt + ",i=+4096", ErrMalformed},
		{"iterations hex", r + ",s=" + rfcSalt + ",i=0x1000", ErrMalformed},
		{"iterations space", r + ",s=" + rfcSalt + ",i= 4096", ErrMalformed},
		{"iterations too few", r + ",s=" + rfcSalt + ",i=4095", ErrIterationCount},
		{"iterations one", r + ",s=" + rfcSalt + ",i=1", ErrIterationCount},
		{"iterations too many", r + ",s=" + rfcSalt + ",i=10000001", ErrIterationCount},
		{"iterations overflow", r + ",s=" + rfcSalt + ",i=99999999999999999999999999", ErrIterationCount},
		{"duplicate nonce", r + ",s=" + rfcSalt + ",i=4096,r=x", ErrMalformed},
		{"duplicate salt", r + ",s=" + rfcSalt + ",i=4096,s=" + rfcSalt, ErrMalformed},
		{"empty extension value", r + ",s=" + rfcSalt + ",i=4096,x=", ErrMalformed},
		{"extension no name", r + ",s=" + rfcSalt + ",i=4096,=x", ErrMalformed},
		{"extension long name", r + ",s=" + rfcSalt + ",i=4096,xy=z", ErrMalformed},
		{"trailing comma", r + ",s=" + rfcSalt + ",i=4096,", ErrMalformed},
		{"NUL", r + ",s=" + rfcSalt + ",i=4096,x=a\x00b", ErrMalformed},
		{"invalid UTF-8", r + ",s=" + rfcSalt + ",i=4096,x=\xff", ErrMalformed},
		{"too long", r + ",s=" + rfcSalt + ",i=4096,x=" + strings.Repeat("a", maxMessageLen), ErrMalformed},
		{"server-final instead", rfcServerFinal, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rfcClient()
			if _, _, err := c.Start(); err != nil {
				t.Fatal(err)
			}
			if tt.msg == "" {
				// The first empty challenge asks for the client-first-message again.
				if _, err := c.Next(nil); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := c.Next([]byte(tt.msg))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Next(%q) error = %v, want %v", tt.msg, err, tt.want)
			}
			if resp != nil {
				t.Fatalf("Next returned a response %q with an error", resp)
			}
			if c.Complete() == nil {
				t.Fatal("Complete succeeded after a failed exchange")
			}
			if _, err := c.Next([]byte(rfcServerFinal)); err == nil {
				t.Fatal("Next after failure succeeded")
			}
		})
	}
}

func TestClientServerFirstAccepted(t *testing.T) {
	for _, msg := range []string{
		rfcServerFirst,
		rfcServerFirst + ",x=unknown optional extension",
		rfcServerFirst + ",x=a=b,Z=ü",
		"r=" + rfcClientNonce + "!,s=AA==,i=4096",
		"r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=10000",
	} {
		c := rfcClient()
		if _, _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next([]byte(msg)); err != nil {
			t.Errorf("Next(%q) = %v", msg, err)
		}
	}
}

// The iteration bounds are inclusive.
func TestParseServerFirstBounds(t *testing.T) {
	for _, tt := range []struct {
		i  string
		ok bool
	}{{"4095", false}, {"4096", true}, {"10000000", true}, {"10000001", false}} {
		_, err := parseServerFirst([]byte("r=ab,s=AA==,i="+tt.i), "a")
		if (err == nil) != tt.ok {
			t.Errorf("i=%s: err = %v, want ok=%v", tt.i, err, tt.ok)
		}
	}
}

func TestClientServerFinal(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		want    error
		wantSrv string // for *ServerError
	}{
		{name: "valid", msg: rfcServerFinal},
		{name: "valid with extension", msg: rfcServerFinal + ",x=y"},
		{name: "wrong signature", msg: "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", want: ErrServerSignature},
		{name: "short signature", msg: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95A==", want: ErrServerSignature},
		{name: "empty verifier", msg: "v=", want: ErrMalformed},
		{name: "verifier not base64", msg: "v=not base64!", want: ErrMalformed},
		{name: "missing verifier", msg: "x=y", want: ErrServerSignature},
		{name: "error", msg: "e=invalid-proof", wantSrv: "invalid-proof"},
		{name: "error with extension", msg: "e=other-error,x=y", wantSrv: "other-error"},
		{name: "unknown error", msg: "e=something new", wantSrv: "something new"},
		{name: "empty error", msg: "e=", want: ErrMalformed},
		{name: "mandatory extension", msg: rfcServerFinal + ",m=x", want: ErrExtension},
		{name: "mandatory extension first", msg: "m=x," + rfcServerFinal, want: ErrExtension},
		{name: "two verifiers", msg: rfcServerFinal + "," + rfcServerFinal, want: ErrMalformed},
		{name: "empty", msg: "", want: ErrMalformed},
		{name: "trailing comma", msg: rfcServerFinal + ",", want: ErrMalformed},
		{name: "server-first again", msg: rfcServerFirst, want: ErrServerSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientAfterServerFirst(t)
			resp, err := c.Next([]byte(tt.msg))
			switch {
			case tt.wantSrv != "":
				var se *ServerError
				if !errors.As(err, &se) || se.Value != tt.wantSrv {
					t.Fatalf("error = %v, want *ServerError %q", err, tt.wantSrv)
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("error = %v, want %v", err, tt.want)
				}
			default:
				if err != nil || resp == nil || len(resp) != 0 {
					t.Fatalf("Next = %q, %v; want empty response", resp, err)
				}
				if err := c.Complete(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if c.Complete() == nil {
				t.Fatal("Complete succeeded after a rejected server-final-message")
			}
		})
	}
}

func TestClientNextBeforeStart(t *testing.T) {
	c := NewClient("user", "pencil", "", nil, false)
	if _, err := c.Next([]byte(rfcServerFirst)); err == nil {
		t.Fatal("Next before Start succeeded")
	}
}

// A server that did not receive the initial response sends an empty
// challenge; the client answers it with the client-first-message, once.
func TestClientEmptyChallengeResend(t *testing.T) {
	c := rfcClient()
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Next([]byte{})
	if err != nil || string(resp) != rfcClientFirst {
		t.Fatalf("Next(empty) = %q, %v; want %q", resp, err, rfcClientFirst)
	}
	if _, err := c.Next([]byte{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("second empty challenge: %v, want ErrMalformed", err)
	}
}

// Start begins a new exchange with a new nonce, after success or failure.
func TestClientRestart(t *testing.T) {
	c := clientAfterServerFirst(t)
	if _, err := c.Next([]byte("v=AAAA")); err == nil {
		t.Fatal("bad verifier accepted")
	}
	c.testNonce = ""
	_, ir1, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	_, ir2, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if string(ir1) == string(ir2) {
		t.Fatal("restart reused the nonce")
	}
	if c.Complete() == nil {
		t.Fatal("Complete after restart")
	}
}

// NewClient copies the binding data: changing the caller's slice later must
// not change what the client sends.
func TestClientCopiesBinding(t *testing.T) {
	data := []byte("0123456789abcdef0123456789abcdef")
	cb := &ChannelBinding{Type: TLSExporterType, Data: data}
	c := NewClient("user", "pencil", "", cb, true)
	data[0] = 'X'
	if got := c.(*Client).cb.Data[0]; got != '0' {
		t.Fatalf("client binding data changed with the caller's slice: %q", got)
	}
}
