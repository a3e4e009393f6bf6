package scram

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSASLprep(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		err  error
	}{
		// RFC 4013 section 3.
		{name: "RFC 4013 #1 soft hyphen mapped to nothing", in: "I\u00ADX", want: "IX"},
		{name: "RFC 4013 #2 no transformation", in: "user", want: "user"},
		{name: "RFC 4013 #3 case preserved", in: "USER", want: "USER"},
		{name: "RFC 4013 #4 NFKC of ordinal", in: "\u00AA", want: "a"},
		{name: "RFC 4013 #5 NFKC of roman numeral", in: "\u2168", want: "IX"},
		{name: "RFC 4013 #6 prohibited", in: "\u0007", err: errProhibited},
		{name: "RFC 4013 #7 bidi", in: "\u0627\u0031", err: errBidi},

		{name: "printable ASCII", in: " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", want: " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"},
		{name: "empty", in: "", want: ""},
		{name: "NBSP to space", in: "a\u00A0b", want: "a b"},
		{name: "ideographic space", in: "a\u3000b", want: "a b"},
		{name: "zero width space to space", in: "a\u200Bb", want: "a b"},
		{name: "ZWJ removed", in: "a\u200Db", want: "ab"},
		{name: "variation selector removed", in: "a\uFE0Fb", want: "ab"},
		{name: "BOM removed", in: "\uFEFFab", want: "ab"},
		{name: "precomposed Latin", in: "päss wörd ÆØÅ ß", want: "päss wörd ÆØÅ ß"},
		{name: "Latin Extended-A", in: "Łódź Šťastný", want: "Łódź Šťastný"},
		{name: "Greek", in: "Καλημέρα", want: "Καλημέρα"},
		{name: "Cyrillic", in: "пароль", want: "пароль"},
		{name: "CJK", in: "密码", want: "密码"},
		{name: "Hangul", in: "비밀번호", want: "비밀번호"},
		{name: "kana", in: "パスワード", want: "パスワード"},
		{name: "symbols", in: "€100 © ±", want: "€100 © ±"},
		{name: "fullwidth ASCII", in: "\uFF30\uFF41\uFF53\uFF53\uFF11", want: "Pass1"},
		{name: "halfwidth katakana", in: "\uFF8A\uFF9F", err: ErrSASLprepUnsupported},
		{name: "ligature", in: "\uFB01x", want: "fix"},
		{name: "fraction", in: "\u00BD", want: "1\u20442"},
		{name: "micro sign", in: "\u00B5", want: "\u03BC"},
		{name: "angstrom sign", in: "\u212B", want: "\u00C5"},
		{name: "superscript", in: "x\u00B2", want: "x2"},
		{name: "Hebrew", in: "\u05E9\u05DC\u05D5\u05DD", want: "\u05E9\u05DC\u05D5\u05DD"},
		{name: "Hebrew with digits inside", in: "\u05D0123\u05D1", want: "\u05D0123\u05D1"},
		{name: "Arabic", in: "\u0643\u0644\u0645\u0629", want: "\u0643\u0644\u0645\u0629"},
		{name: "mixed directions", in: "\u05D0a\u05D1", err: errBidi},
		{name: "RTL starting with digit", in: "1\u05D0", err: errBidi},
		{name: "NUL", in: "a\x00b", err: errProhibited},
		{name: "DEL", in: "a\x7fb", err: errProhibited},
		{name: "C1 control", in: "a\u0085b", err: errProhibited},
		{name: "private use", in: "a\uE000", err: errProhibited},
		{name: "non-character", in: "a\uFFFF", err: errProhibited},
		{name: "plane 1 non-character", in: "a\U0001FFFE", err: errProhibited},
		{name: "replacement character", in: "a\uFFFD", err: errProhibited},
		{name: "LRM", in: "a\u200Eb", err: errProhibited},
		{name: "RLO", in: "a\u202Eb", err: errProhibited},
		{name: "tag", in: "a\U000E0041", err: errProhibited},
		{name: "ideographic description", in: "\u2FF0", err: errProhibited},
		{name: "line separator", in: "a\u2028b", err: errProhibited},
		{name: "combining acute as U+0341", in: "a\u0341", err: ErrSASLprepUnsupported},
		{name: "decomposed umlaut", in: "pa\u0308ss", err: ErrSASLprepUnsupported},
		{name: "emoji (unassigned in 3.2)", in: "pw\U0001F600", err: ErrSASLprepUnsupported},
		{name: "math alphanumeric", in: "\U0001D400", err: ErrSASLprepUnsupported},
		{name: "invalid UTF-8", in: "a\xffb", err: ErrSASLprep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := saslprep(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !errors.Is(err, ErrSASLprep) {
					t.Fatalf("saslprep(%+q) = %+q, %v; want error %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("saslprep(%+q) = %+q, %v; want %+q", tt.in, got, err, tt.want)
			}
		})
	}
}

// The tables must be sorted and disjoint, and everything compatMap produces
// must itself be stable, or results would depend on neighbours.
func TestSASLprepTables(t *testing.T) {
	prev := rune(0x7F)
	for _, r := range stableRanges {
		if r.lo <= prev || r.hi < r.lo {
			t.Fatalf("stableRanges not sorted and disjoint at %04X-%04X", r.lo, r.hi)
		}
		prev = r.hi
		for _, c := range []rune{r.lo, r.hi} {
			if mappedToNothing(c) || nonASCIISpace(c) || prohibited(c) {
				t.Errorf("stable U+%04X is mapped or prohibited", c)
			}
		}
	}
	for k, v := range compatMap {
		if _, ok := lookupStable(k); ok || k < 0x80 || mappedToNothing(k) || nonASCIISpace(k) || prohibited(k) {
			t.Errorf("compatMap key U+%04X is also stable, ASCII, mapped or prohibited", k)
		}
		if v == "" || !utf8.ValidString(v) {
			t.Errorf("compatMap[U+%04X] = %+q", k, v)
		}
		for _, c := range v {
			_, stable := lookupStable(c)
			if !stable && (c < 0x20 || c > 0x7E) {
				t.Errorf("compatMap[U+%04X] contains U+%04X, which is not stable", k, c)
			}
		}
	}
	if len(compatMap) < 300 || len(stableRanges) < 400 {
		t.Fatalf("tables suspiciously small: %d compat, %d ranges", len(compatMap), len(stableRanges))
	}
}

func FuzzSASLprep(f *testing.F) {
	for _, s := range []string{"user", "I\u00ADX", "\u2168", "\u0627\u0031", "päss w0rd", "\uFF30", "\u05D0\u05D1", "a\u0308", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := saslprep(s)
		if len(s) > 1024 { // user names and passwords are short; keep the minimiser fast
			return
		}
		if err != nil {
			if !errors.Is(err, ErrSASLprep) {
				t.Fatalf("error %v does not wrap ErrSASLprep", err)
			}
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 output %+q", out)
		}
		// The output is prepared: preparing it again changes nothing.
		again, err := saslprep(out)
		if err != nil || again != out {
			t.Fatalf("saslprep(%+q) = %+q, but saslprep of that = %+q, %v", s, out, again, err)
		}
		for _, c := range out {
			if c < 0x20 || c == 0x7F || mappedToNothing(c) || (nonASCIISpace(c)) || prohibited(c) {
				t.Fatalf("output %+q contains U+%04X", out, c)
			}
		}
	})
}

// TestSASLprepReference compares saslprep with vectors from an independent
// implementation (testdata/saslprep_reference.py, Python's stringprep and
// Unicode 3.2 data). It runs when SCRAM_SASLPREP_VECTORS names the vector
// file: every result we give must equal the reference, and every string we
// refuse must be refused by the reference too, unless we refuse it as
// unsupported.
func TestSASLprepReference(t *testing.T) {
	path := os.Getenv("SCRAM_SASLPREP_VECTORS")
	if path == "" {
		t.Skip("SCRAM_SASLPREP_VECTORS not set; see testdata/saslprep_reference.py")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decode := func(s string) string {
		if s == "-" {
			return ""
		}
		var b strings.Builder
		for _, h := range strings.Fields(s) {
			n, err := strconv.ParseUint(h, 16, 32)
			if err != nil {
				t.Fatalf("bad vector %q", s)
			}
			b.WriteRune(rune(n))
		}
		return b.String()
	}
	var same, bothRefuse, unsupported, wrong int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		in, want, _ := strings.Cut(sc.Text(), "\t")
		got, err := saslprep(decode(in))
		switch {
		case err == nil && (want == "ERR" || got != decode(want)):
			wrong++
			t.Errorf("%s: got %+q, reference %s", in, got, want)
		case err == nil:
			same++
		case want == "ERR":
			bothRefuse++
		case errors.Is(err, ErrSASLprepUnsupported):
			unsupported++
		default:
			wrong++
			t.Errorf("%s: %v, reference gives %s", in, err, want)
		}
		if wrong > 20 {
			t.Fatal("too many differences")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("same result %d, both refuse %d, unsupported here %d, wrong %d", same, bothRefuse, unsupported, wrong)
}
