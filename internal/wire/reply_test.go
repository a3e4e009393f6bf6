package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		code  int
		lines []string
	}{
		{"single line", "250 OK\r\n", 250, []string{"OK"}},
		{"code only", "250\r\n", 250, []string{""}},
		{"code and space", "250 \r\n", 250, []string{""}},
		{"bare LF", "220 mx.example.com ESMTP\n", 220, []string{"mx.example.com ESMTP"}},
		{"multi-line", "250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 250,
			[]string{"mx.example.com", "PIPELINING", "SIZE 1000"}},
		{"mixed endings", "250-a\n250-b\r\n250 c\n", 250, []string{"a", "b", "c"}},
		{"empty continuation", "250-\r\n250-\r\n250\r\n", 250, []string{"", "", ""}},
		{"inner CR kept", "250 a\rb\r\n", 250, []string{"a\rb"}},
		{"only last CR stripped", "250 a\r\r\n", 250, []string{"a\r"}},
		{"text with tab", "550 5.7.1\tno\r\n", 550, []string{"5.7.1\tno"}},
		{"lowest code", "200 x\r\n", 200, []string{"x"}},
		{"highest code", "559 x\r\n", 559, []string{"x"}},
		{"intermediate", "354 go ahead\r\n", 354, []string{"go ahead"}},
		{"non-ASCII text", "250 h\xc3\xa9llo \xff\r\n", 250, []string{"h\xc3\xa9llo \xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			rep, err := r.ReadReply()
			if err != nil {
				t.Fatalf("ReadReply(%q): %v", tt.in, err)
			}
			if rep.Code != tt.code || !reflect.DeepEqual(rep.Lines, tt.lines) {
				t.Errorf("ReadReply(%q) = %d %q, want %d %q", tt.in, rep.Code, rep.Lines, tt.code, tt.lines)
			}
			if _, err := r.ReadReply(); err != io.EOF {
				t.Errorf("second ReadReply: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"letter after code", "250x\r\n"},
		{"letter after code, multi-line", "250-a\r\n250x\r\n"},
		{"two digits", "25\r\n"},
		{"empty line", "\r\n"},
		{"bare empty line", "\n"},
		{"letter in code", "2a0 ok\r\n"},
		{"letters", "abc def\r\n"},
		{"first digit 1", "199 ok\r\n"},
		{"first digit 6", "600 ok\r\n"},
		{"first digit 0", "050 ok\r\n"},
		{"second digit 6", "260 ok\r\n"},
		{"second digit 9", "590 ok\r\n"},
		{"NUL in code", "25\x000 ok\r\n"},
		{"NUL after code", "250\x00ok\r\n"},
		{"leading space", " 250 ok\r\n"},
		{"tab separator", "250\tok\r\n"},
		{"code mismatch", "250-a\r\n251 b\r\n"},
		{"code mismatch in class", "250-a\r\n550 b\r\n"},
		{"garbage continuation", "250-a\r\nhello\r\n"},
		{"HTTP response", "HTTP/1.1 400 Bad Request\r\n"},
		{"sign", "+250 ok\r\n"},
		{"TLS alert bytes", "\x15\x03\x01\x00\x02\x02\x46\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.in)).ReadReply()
			if !errors.Is(err, ErrMalformedReply) {
				t.Fatalf("ReadReply(%q): err = %v, want ErrMalformedReply", tt.in, err)
			}
			var re *ReplyError
			if !errors.As(err, &re) {
				t.Fatalf("ReadReply(%q): err %T is not a *ReplyError", tt.in, err)
			}
			if re.Line == "" || re.Line[0] != '"' {
				t.Errorf("ReplyError.Line = %s, want a quoted line", re.Line)
			}
		})
	}
}

func TestReadReplyEOF(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"nothing", "", io.EOF},
		{"partial line", "250 O", io.ErrUnexpectedEOF},
		{"line without LF", "250 OK\r", io.ErrUnexpectedEOF},
		{"after continuation", "250-a\r\n", io.ErrUnexpectedEOF},
		{"partial second line", "250-a\r\n250 b", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.in)).ReadReply()
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadReply(%q): err = %v, want %v", tt.in, err, tt.want)
			}
			if tt.want == io.ErrUnexpectedEOF && errors.Is(err, io.EOF) {
				t.Errorf("ReadReply(%q): err %v also matches io.EOF, which callers take as a clean close", tt.in, err)
			}
		})
	}
}

func TestReadReplyLimits(t *testing.T) {
	longText := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		in   string
		want error // nil: accepted
	}{
		{"line at limit (CRLF)", "250 " + longText(MaxLineLength-6) + "\r\n", nil},
		{"line at limit (LF)", "250 " + longText(MaxLineLength-5) + "\n", nil},
		{"line over limit (CRLF)", "250 " + longText(MaxLineLength-5) + "\r\n", ErrLineTooLong},
		{"line over limit (LF)", "250 " + longText(MaxLineLength-4) + "\n", ErrLineTooLong},
		{"second line over limit", "250-a\r\n250 " + longText(MaxLineLength) + "\r\n", ErrLineTooLong},
		{"lines at limit", strings.Repeat("250-a\r\n", MaxReplyLines-1) + "250 a\r\n", nil},
		{"lines over limit", strings.Repeat("250-a\r\n", MaxReplyLines) + "250 a\r\n", ErrTooManyLines},
		{"bytes at limit", strings.Repeat("250-"+longText(1018)+"\r\n", 63) + "250 " + longText(1018) + "\r\n", nil},
		{"bytes over limit", strings.Repeat("250-"+longText(1018)+"\r\n", 64) + "250 x\r\n", ErrTooManyLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := NewReader(strings.NewReader(tt.in)).ReadReply()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ReadReply: %v", err)
				}
				if rep.Code != 250 {
					t.Fatalf("code %d", rep.Code)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadReply: err = %v, want %v", err, tt.want)
			}
			var re *ReplyError
			if !errors.As(err, &re) || len(re.Line) > 110 {
				t.Errorf("err = %#v, want a *ReplyError with a line of at most ~100 bytes", err)
			}
		})
	}
}

// endless produces an endless stream made of pattern and counts the bytes
// read from it.
type endless struct {
	pattern []byte
	off     int
	n       int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[e.off]
		e.off = (e.off + 1) % len(e.pattern)
	}
	e.n += len(p)
	return len(p), nil
}

// A hostile server that never ends a line or a reply must not make the
// reader consume (and buffer) more than a limit's worth.
func TestReadReplyStopsAtLimit(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    error
		maxRead int
	}{
		{"endless line", "250 aaaaaaaaaaaaaaaaaaaaaaaaaa", ErrLineTooLong, MaxLineLength},
		{"endless continuation", "250-aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", ErrTooManyLines, MaxReplyBytes + MaxLineLength},
		{"endless short continuation", "250-\r\n", ErrTooManyLines, MaxReplyLines*6 + MaxLineLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &endless{pattern: []byte(tt.pattern)}
			_, err := NewReader(src).ReadReply()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if src.n > tt.maxRead {
				t.Errorf("read %d bytes from the server, want at most %d", src.n, tt.maxRead)
			}
		})
	}
}

func TestReadReplySequence(t *testing.T) {
	in := "220 ready\r\n250-a\r\n250 b\r\n354 go\r\n"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		code  int
		lines []string
	}{{220, []string{"ready"}}, {250, []string{"a", "b"}}, {354, []string{"go"}}}
	for _, w := range want {
		rep, err := r.ReadReply()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Code != w.code || !reflect.DeepEqual(rep.Lines, w.lines) {
			t.Errorf("got %d %q, want %d %q", rep.Code, rep.Lines, w.code, w.lines)
		}
	}
	if _, err := r.ReadReply(); err != io.EOF {
		t.Errorf("err = %v, want io.EOF", err)
	}
}

// Buffered exposes bytes that arrived with (after) a reply, such as a reply
// injected by a man in the middle right behind "220 ready for TLS".
func TestReaderBufferedAndReset(t *testing.T) {
	r := NewReader(strings.NewReader("220 go ahead\r\n250 injected\r\n"))
	if _, err := r.ReadReply(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Buffered(), len("250 injected\r\n"); got != want {
		t.Errorf("Buffered() = %d, want %d", got, want)
	}
	r.Reset(strings.NewReader("250 from TLS\r\n"))
	if r.Buffered() != 0 {
		t.Errorf("Buffered() after Reset = %d, want 0", r.Buffered())
	}
	rep, err := r.ReadReply()
	if err != nil || rep.Lines[0] != "from TLS" {
		t.Errorf("after Reset: %v, %v; want the new reader's reply", rep, err)
	}

	r = NewReader(strings.NewReader("220 go ahead\r\n"))
	if _, err := r.ReadReply(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered() = %d, want 0", r.Buffered())
	}
}

// A large bufio.Reader given to NewReader must not lift the line limit.
func TestNewReaderOverBufio(t *testing.T) {
	long := "250 " + strings.Repeat("x", 2*MaxLineLength) + "\r\n"
	_, err := NewReader(bufio.NewReaderSize(strings.NewReader(long), 4*MaxLineLength)).ReadReply()
	if !errors.Is(err, ErrLineTooLong) {
		t.Errorf("err = %v, want ErrLineTooLong", err)
	}
}

func TestReadReplyTimeout(t *testing.T) {
	for _, partial := range []string{"", "250-a\r\n", "250 par"} {
		client, server := net.Pipe()
		go func() {
			_, _ = server.Write([]byte(partial))
		}()
		r := NewReader(client)
		if err := client.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, err := r.ReadReply()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("partial %q: err = %v, want one matching os.ErrDeadlineExceeded", partial, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("partial %q: err = %v, want a net.Error with Timeout()", partial, err)
		}
		client.Close()
		server.Close()
	}
}

func TestReplyText(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"OK"}, "OK"},
		{[]string{"a", "b", ""}, "a\nb\n"},
		{[]string{"tab\tkept"}, "tab\tkept"},
		{[]string{"esc \x1b[31mred"}, "esc ?[31mred"},
		{[]string{"nul \x00 cr \r del \x7f"}, "nul ? cr ? del ?"},
		{[]string{"c1 \u009b2J"}, "c1 ?2J"},
		{[]string{"bad \xff utf8"}, "bad \ufffd utf8"},
		{[]string{"h\u00e9llo"}, "h\u00e9llo"},
	}
	for _, tt := range tests {
		r := &Reply{Code: 250, Lines: tt.lines}
		if got := r.Text(); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
	var nilReply *Reply
	if nilReply.Text() != "" || nilReply.String() != "<nil>" {
		t.Error("nil Reply: Text or String not empty")
	}
	if s := (&Reply{Code: 550, Lines: []string{"5.7.1 no", "go away"}}).String(); s != "550 5.7.1 no\ngo away" {
		t.Errorf("String() = %q", s)
	}
}

// STD-35: the enhanced code is read after the reply code; STD-37: the basic
// code wins when the classes differ.
func TestReplyEnhancedCode(t *testing.T) {
	tests := []struct {
		in   string
		want EnhancedCode
		ok   bool
	}{
		{"250 2.0.0 OK\r\n", EnhancedCode{2, 0, 0}, true},
		{"535 5.7.8 Authentication credentials invalid\r\n", EnhancedCode{5, 7, 8}, true},
		{"454 4.7.0 TLS not available\r\n", EnhancedCode{4, 7, 0}, true},
		{"550-5.7.1 first\r\n550-4.7.1 second\r\n550 5.7.1 third\r\n", EnhancedCode{5, 7, 1}, true},
		{"550 5.7.999 unknown detail\r\n", EnhancedCode{5, 7, 999}, true},
		{"550 4.7.1 class mismatch\r\n", EnhancedCode{}, false},
		{"250 5.0.0 class mismatch\r\n", EnhancedCode{}, false},
		{"421 2.0.0 class mismatch\r\n", EnhancedCode{}, false},
		{"354 2.0.0 class 3 has no enhanced codes\r\n", EnhancedCode{}, false},
		{"250 OK\r\n", EnhancedCode{}, false},
		{"250\r\n", EnhancedCode{}, false},
		{"250 2.0.0.1 too many parts\r\n", EnhancedCode{}, false},
		{"250 2.0\r\n", EnhancedCode{}, false},
	}
	for _, tt := range tests {
		rep, err := NewReader(strings.NewReader(tt.in)).ReadReply()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := rep.EnhancedCode()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: EnhancedCode() = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	var nilReply *Reply
	if _, ok := nilReply.EnhancedCode(); ok {
		t.Error("nil Reply has an enhanced code")
	}
}

func TestReplyErrorMessage(t *testing.T) {
	_, err := NewReader(strings.NewReader("250x " + strings.Repeat("y", 300) + "\x1b\r\n")).ReadReply()
	var re *ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	if len(re.Line) > 110 || !strings.HasPrefix(re.Line, `"250x`) || !strings.HasSuffix(re.Line, "...") {
		t.Errorf("Line = %s, want the start of the line quoted, cut to ~100 bytes", re.Line)
	}
	msg := err.Error()
	if !strings.Contains(msg, "malformed smtp reply") || strings.ContainsAny(msg, "\r\n\x1b") {
		t.Errorf("Error() = %q", msg)
	}
	_, err = NewReader(strings.NewReader("250\x1b\r\n")).ReadReply()
	if !errors.As(err, &re) || !strings.Contains(re.Line, `\x1b`) || !strings.Contains(re.Line, `\r\n`) {
		t.Errorf("control bytes not quoted: %v", err)
	}
}

// Reading an ordinary reply allocates the Reply, its Lines (except for a
// one-line reply) and one string for all of its text, nothing else.
func TestReadReplyAllocs(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"250 2.0.0 OK\r\n", 2},
		{ehloReply, 3},
	}
	for _, tt := range tests {
		src := strings.NewReader(tt.in)
		r := NewReader(src)
		if _, err := r.ReadReply(); err != nil { // warm up the scratch buffers
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			src.Reset(tt.in)
			r.Reset(src)
			if _, err := r.ReadReply(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tt.want {
			t.Errorf("%q: %v allocations per reply, want at most %v", tt.in, allocs, tt.want)
		}
	}
}

const ehloReply = "250-mx.example.com Hello client.example.org [192.0.2.7]\r\n" +
	"250-SIZE 52428800\r\n" +
	"250-8BITMIME\r\n" +
	"250-PIPELINING\r\n" +
	"250-PIPE_CONNECT\r\n" +
	"250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER SCRAM-SHA-256\r\n" +
	"250-CHUNKING\r\n" +
	"250-SMTPUTF8\r\n" +
	"250-ENHANCEDSTATUSCODES\r\n" +
	"250-DSN\r\n" +
	"250-REQUIRETLS\r\n" +
	"250 STARTTLS\r\n"

func BenchmarkReadReply(b *testing.B) {
	src := strings.NewReader(ehloReply)
	r := NewReader(src)
	b.SetBytes(int64(len(ehloReply)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(ehloReply)
		r.Reset(src)
		if _, err := r.ReadReply(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n", "250\r\n", ehloReply, "250-a\n250 b\n", "250x\r\n", "250-a\r\n251 b\r\n",
		"", "250 O", "\r\n", "220 a\r\n250 b\r\n", "550 5.7.1 \x1b[0m\xff\r\n",
		strings.Repeat("250-a\r\n", 3) + "250 b", "354 \x00\r\n", "559 \r\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		consumed := 0
		for {
			rep, err := r.ReadReply()
			if err != nil {
				var re *ReplyError
				switch {
				case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
				case errors.As(err, &re):
					if !errors.Is(err, ErrMalformedReply) && !errors.Is(err, ErrLineTooLong) && !errors.Is(err, ErrTooManyLines) {
						t.Fatalf("ReplyError with unknown cause: %v", err)
					}
					if len(re.Line) > 110 {
						t.Fatalf("ReplyError.Line too long: %d", len(re.Line))
					}
				default:
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if rep.Code < 200 || rep.Code > 559 || rep.Code%100 > 59 {
				t.Fatalf("code %d out of range", rep.Code)
			}
			if len(rep.Lines) < 1 || len(rep.Lines) > MaxReplyLines {
				t.Fatalf("%d lines", len(rep.Lines))
			}
			size := 0
			for _, l := range rep.Lines {
				if strings.IndexByte(l, '\n') >= 0 || len(l) > MaxLineLength {
					t.Fatalf("bad line %q", l)
				}
				size += len(l)
			}
			if size > MaxReplyBytes {
				t.Fatalf("reply of %d bytes", size)
			}
			for _, c := range rep.Text() {
				if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
					t.Fatalf("control character %q in Text()", c)
				}
			}
			consumed++
			if consumed > len(data) {
				t.Fatal("more replies than input bytes")
			}
		}
	})
}

// TestReadReplyKeepsEveryReply: replies handed out from the Reader's slab,
// and texts shared with recent replies, stay as they were read while many
// more are read after them.
func TestReadReplyKeepsEveryReply(t *testing.T) {
	var in strings.Builder
	for i := 0; i < 3*slabSize; i++ {
		fmt.Fprintf(&in, "250 2.0.0 OK\r\n25%d 2.1.%d Ok %d\r\n", i%2, i%3, i%5)
	}
	r := NewReader(strings.NewReader(in.String()))
	var reps []*Reply
	for i := 0; i < 6*slabSize; i++ {
		rep, err := r.ReadReply()
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	for i, rep := range reps {
		n := i / 2
		want := "250 [2.0.0 OK]"
		if i%2 == 1 {
			want = fmt.Sprintf("25%d [2.1.%d Ok %d]", n%2, n%3, n%5)
		}
		if got := fmt.Sprintf("%d %v", rep.Code, rep.Lines); got != want {
			t.Errorf("reply %d = %s, want %s", i, got, want)
		}
	}
}
