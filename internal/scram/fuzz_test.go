package scram

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The oracles below restate the RFC 5802 section 7 grammar as regular
// expressions, independently of the hand-written parsers, so the fuzz targets
// can check that a parser accepts exactly what the grammar (plus the
// documented semantic rules) accepts.

const (
	reValue     = `[^,\x00]+`                        // value: 1*value-char
	reSASLName  = `(?:[^,=\x00]|=2C|=3D)+`           // saslname
	rePrintable = `[\x21-\x2B\x2D-\x7E]+`            // 1*printable
	reBase64    = `[A-Za-z0-9+/]*={0,2}`             // base64, checked with the decoder below
	reExts      = `((?:,[A-Za-z]=` + reValue + `)*)` // ["," extensions]
)

var (
	oracleServerFirst = regexp.MustCompile(`^r=(` + rePrintable + `),s=(` + reBase64 + `),i=([1-9][0-9]*)` + reExts + `$`)
	oracleServerFinal = regexp.MustCompile(`^(?:v=(` + reBase64 + `)|e=(` + reValue + `))` + reExts + `$`)
	oracleClientFirst = regexp.MustCompile(`^(n|y|p=[A-Za-z0-9.-]+),(?:a=(` + reSASLName + `))?,n=(` + reSASLName + `),r=(` + rePrintable + `)` + reExts + `$`)
	oracleClientFinal = regexp.MustCompile(`^c=(` + reBase64 + `),r=(` + rePrintable + `)` + reExts + `,p=(` + reBase64 + `)$`)
)

func strictB64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil
}

// extNamesOK reports whether no extension attribute is "m" or one of fixed.
func extNamesOK(exts, fixed string) bool {
	if exts == "" {
		return true
	}
	for _, e := range strings.Split(exts[1:], ",") {
		if e[0] == 'm' || strings.IndexByte(fixed, e[0]) >= 0 {
			return false
		}
	}
	return true
}

// maxOracleLen bounds the inputs the fuzz targets compare with the oracles.
// The regular expressions cost milliseconds on inputs of several KiB, which
// stalls the fuzzer's minimiser; longer inputs are only run through the
// parsers (which must not panic). The length limit has unit tests.
const maxOracleLen = 1024

// oracleMatch matches msg against a grammar, after the limits every message
// shares (non-empty, at most maxMessageLen bytes, valid UTF-8).
func oracleMatch(re *regexp.Regexp, msg []byte) [][]byte {
	if len(msg) == 0 || len(msg) > maxMessageLen || !utf8.Valid(msg) {
		return nil
	}
	return re.FindSubmatch(msg)
}

func FuzzServerFirst(f *testing.F) {
	for _, s := range []string{
		rfcServerFirst,
		rfcServerFirst + ",x=ext",
		"m=x," + rfcServerFirst,
		"r=" + rfcClientNonce + ",s=" + rfcSalt + ",i=4096",
		"r=" + rfcClientNonce + "x,s=,i=4096",
		"r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=4095",
		"r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=10000001",
		"r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=04096",
		"r=" + rfcClientNonce + "x,s=W22Z\naJ0SNY7soEsUEjb6gQ==,i=4096",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		sf, err := parseServerFirst(msg, rfcClientNonce)
		if len(msg) > maxOracleLen {
			return
		}

		// Oracle: grammar, then semantic rules.
		want := false
		var wantSalt []byte
		var wantIter int
		if m := oracleMatch(oracleServerFirst, msg); m != nil {
			salt, okSalt := strictB64(string(m[2]))
			iter, errIter := strconv.Atoi(string(m[3]))
			want = bytes.HasPrefix(m[1], []byte(rfcClientNonce)) && len(m[1]) > len(rfcClientNonce) &&
				okSalt && len(salt) > 0 && errIter == nil && iter >= MinIterations && iter <= MaxIterations &&
				extNamesOK(string(m[4]), "rsi")
			wantSalt, wantIter = salt, iter
		}
		if (err == nil) != want {
			t.Fatalf("parseServerFirst(%q): err = %v, oracle accepts = %v", msg, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNonce) && !errors.Is(err, ErrIterationCount) && !errors.Is(err, ErrExtension) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !bytes.Equal(sf.salt, wantSalt) || sf.iterations != wantIter || !strings.HasPrefix(sf.nonce, rfcClientNonce) {
			t.Fatalf("parsed %+v from %q", sf, msg)
		}
	})
}

func FuzzServerFinal(f *testing.F) {
	for _, s := range []string{
		rfcServerFinal,
		rfcServerFinal + ",x=y",
		"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		"v=",
		"e=invalid-proof",
		"e=other-error,x=y",
		"m=x," + rfcServerFinal,
		rfcServerFinal + ",m=x",
		"",
	} {
		f.Add([]byte(s))
	}
	base := clientAfterServerFirst(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := *base
		resp, err := c.Next(msg)
		if len(msg) > maxOracleLen {
			if err == nil {
				t.Fatalf("accepted a %d-byte server-final-message", len(msg))
			}
			return
		}

		m := oracleMatch(oracleServerFinal, msg)
		grammar := m != nil && extNamesOK(string(m[3]), "ve")
		isVerifier := grammar && len(m[1]) > 0
		correct := isVerifier && string(msg[:len("v=")+len(m[1])]) == rfcServerFinal

		var se *ServerError
		switch {
		case err == nil:
			if !correct {
				t.Fatalf("accepted %q, which does not carry the right signature", msg)
			}
			if resp == nil || len(resp) != 0 || c.Complete() != nil {
				t.Fatalf("accepted %q but response %q, Complete %v", msg, resp, c.Complete())
			}
		case errors.As(err, &se):
			if !grammar || len(m[2]) == 0 || se.Value != string(m[2]) {
				t.Fatalf("ServerError %q from %q", se.Value, msg)
			}
		default:
			if correct {
				t.Fatalf("rejected the correct server-final-message %q: %v", msg, err)
			}
			if c.Complete() == nil {
				t.Fatal("Complete after rejection")
			}
		}
	})
}

func FuzzClientMessages(f *testing.F) {
	const first, final = rfcClientFirst, rfcClientFinal
	f.Add([]byte(first), []byte(final))
	f.Add([]byte("y,,n=user,r="+rfcClientNonce), []byte(final))
	f.Add([]byte("p=tls-exporter,,n=user,r="+rfcClientNonce), []byte(final))
	f.Add([]byte("n,a=user,n=user,r="+rfcClientNonce+",x=y"), []byte("c=biws,r="+rfcClientNonce+rfcServerNonce+",x=y,p=AAAA"))
	f.Add([]byte("n,,m=x,n=user,r=abc"), []byte(""))
	f.Add([]byte("n,,n=us=2Cer,r=abc"), []byte(final))
	f.Add([]byte("n,,n=us=2der,r=abc"), []byte(final))
	cr := NewCredentials("pencil", mustB64(rfcSalt), 4096)
	users := func(u string) (Credentials, bool) { return cr, u == "user" || u == "us,er" }

	f.Fuzz(func(t *testing.T, first, final []byte) {
		s := NewServer(users, nil)
		s.testNonce = rfcServerNonce
		sf, _, err := s.Next(first)
		if len(first) > maxOracleLen || len(final) > maxOracleLen {
			if err == nil {
				s.Next(final)
			}
			return
		}

		fm := oracleMatch(oracleClientFirst, first)
		firstOK := fm != nil && extNamesOK(string(fm[5]), "nr") && !bytes.HasPrefix(fm[1], []byte("p="))
		var user string
		if firstOK {
			user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(string(fm[3]))
			az := strings.NewReplacer("=2C", ",", "=3D", "=").Replace(string(fm[2]))
			firstOK = (user == "user" || user == "us,er") && (az == "" || az == user)
		}
		if (err == nil) != firstOK {
			t.Fatalf("client-first %q: err = %v, oracle accepts = %v", first, err, firstOK)
		}
		if err != nil {
			return
		}
		if !strings.HasPrefix(string(sf), "r="+string(fm[4])+rfcServerNonce+",s=") {
			t.Fatalf("server-first %q does not extend the client nonce", sf)
		}

		sfin, done, err := s.Next(final)
		if oracleMatch(oracleClientFinal, final) == nil {
			if err == nil {
				t.Fatalf("client-final %q accepted against the grammar", final)
			}
		}
		if err != nil {
			if s.Username() != "" {
				t.Fatal("Username set after failure")
			}
			return
		}
		// A proof only verifies over exactly the transcript it was computed for.
		if done || string(first) != rfcClientFirst || string(final) != rfcClientFinal || string(sfin) != rfcServerFinal {
			t.Fatalf("accepted client-first %q, client-final %q (server-final %q)", first, final, sfin)
		}
	})
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The oracles agree with the parsers on the hand-written tables too.
func TestOraclesAgree(t *testing.T) {
	for _, s := range []string{rfcServerFirst, rfcServerFirst + ",x=y"} {
		if oracleServerFirst.FindStringSubmatch(s) == nil {
			t.Errorf("oracle rejects %q", s)
		}
	}
	if oracleServerFinal.FindStringSubmatch(rfcServerFinal) == nil || oracleClientFirst.FindStringSubmatch(rfcClientFirst) == nil ||
		oracleClientFinal.FindStringSubmatch(rfcClientFinal) == nil {
		t.Error("oracle rejects an RFC 7677 message")
	}
}
