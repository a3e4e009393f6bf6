package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"
)

// normalize is the reference for the line-ending rules, written differently
// from DataWriter: CRLF, then lone CR, become LF, every LF becomes CRLF, and
// non-empty content gets a final CRLF.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

// stuff is the reference for dot-stuffing of normalised content.
func stuff(norm string) string {
	if norm == "" {
		return ".\r\n"
	}
	lines := strings.SplitAfter(norm, "\r\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	b.WriteString(".\r\n")
	return b.String()
}

// encode runs DataWriter over the pieces of in given by the cut points.
func encode(t testing.TB, in string, opts DataOptions, cuts ...int) string {
	t.Helper()
	var out bytes.Buffer
	d := NewDataWriter(&out, opts)
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if n, err := d.Write([]byte(in[prev:c])); err != nil || n != c-prev {
			t.Fatalf("Write(%q) = %d, %v", in[prev:c], n, err)
		}
		prev = c
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

// STD-28: DATA is dot-stuffed, BDAT is not; both normalise line endings the
// same way.
func TestDataWriterRules(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		data     string // DotStuff: true
		bdat     string // DotStuff: false
		optional bool
	}{
		{"empty", "", ".\r\n", "", false},
		{"plain line", "Hello\r\n", "Hello\r\n.\r\n", "Hello\r\n", false},
		{"missing final CRLF", "Hello", "Hello\r\n.\r\n", "Hello\r\n", false},
		{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", false},
		{"bare CR", "a\rb\r", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", false},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n", false},
		{"LF CR", "a\n\rb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n", false},
		{"CRLF LF", "a\r\n\nb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n", false},
		{"only LF", "\n", "\r\n.\r\n", "\r\n", false},
		{"only CR", "\r", "\r\n.\r\n", "\r\n", false},
		{"dot first line", ".hidden\r\n", "..hidden\r\n.\r\n", ".hidden\r\n", false},
		{"lone dot first line", ".\r\nmore\r\n", "..\r\nmore\r\n.\r\n", ".\r\nmore\r\n", false},
		{"lone dot only", ".", "..\r\n.\r\n", ".\r\n", false},
		{"dot line in the middle", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", false},
		{"two dots", "a\r\n..\r\n", "a\r\n...\r\n.\r\n", "a\r\n..\r\n", false},
		{"dot not at line start", "a.b\r\n", "a.b\r\n.\r\n", "a.b\r\n", false},
		{"smuggling LF dot LF", "a\n.\nMAIL FROM:<x@y>\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", false},
		{"smuggling CRLF dot LF", "a\r\n.\nb", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", false},
		{"smuggling LF dot CRLF", "a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", false},
		{"smuggling CR dot CR", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", false},
		{"smuggling CR dot LF", "a\r.\nb", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", false},
		{"blank lines", "\r\n\r\n", "\r\n\r\n.\r\n", "\r\n\r\n", false},
		{"8-bit passes", "caf\xc3\xa9\n", "caf\xc3\xa9\r\n.\r\n", "caf\xc3\xa9\r\n", false},
		{"NUL passes", "a\x00b", "a\x00b\r\n.\r\n", "a\x00b\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(t, tt.in, DataOptions{DotStuff: true}); got != tt.data {
				t.Errorf("DATA encoding of %q = %q, want %q", tt.in, got, tt.data)
			}
			if got := encode(t, tt.in, DataOptions{}); got != tt.bdat {
				t.Errorf("BDAT encoding of %q = %q, want %q", tt.in, got, tt.bdat)
			}
			if got := stuff(normalize(tt.in)); got != tt.data {
				t.Errorf("reference encoding %q disagrees with the table %q", got, tt.data)
			}
		})
	}
}

// nasty holds every sequence a lenient server might take for the end of
// data, at the start, in the middle and at the end.
const nasty = ".\r\nline one\n.\nlf-dot-lf\r\n.\ncrlf-dot-lf\n.\r\nlf-dot-crlf\r.\rcr-dot-cr" +
	"\r\n.\r\ncrlf-dot-crlf\r\r\n..\rlone\rcr\nlone\nlf\r\n\r\n.end\r."

// checkEncoded asserts the two safety properties of DATA encoding: no bare
// CR or LF anywhere, and no line holding a single "." before the end marker.
func checkEncoded(t testing.TB, enc string, dotStuff bool) {
	t.Helper()
	for i := 0; i < len(enc); i++ {
		switch enc[i] {
		case '\r':
			if i+1 == len(enc) || enc[i+1] != '\n' {
				t.Fatalf("bare CR at %d in %q", i, enc)
			}
		case '\n':
			if i == 0 || enc[i-1] != '\r' {
				t.Fatalf("bare LF at %d in %q", i, enc)
			}
		}
	}
	if !dotStuff {
		return
	}
	if !strings.HasSuffix(enc, ".\r\n") {
		t.Fatalf("no end marker in %q", enc)
	}
	body := enc[:len(enc)-3]
	if body != "" && !strings.HasSuffix(body, "\r\n") {
		t.Fatalf("end marker not on a line of its own in %q", enc)
	}
	for _, bad := range []string{"\r\n.\r\n", "\n.\n", "\r\n.\n", "\n.\r", "\r.\r", "\r.\n"} {
		if i := strings.Index(body, bad); i >= 0 {
			t.Fatalf("early end of data %q at %d in %q", bad, i, enc)
		}
	}
	for _, bad := range []string{".\r", ".\n"} {
		if strings.HasPrefix(body, bad) {
			t.Fatalf("content starts with %q in %q", bad, enc)
		}
	}
}

// decode reads DATA-encoded bytes back as a strict server would.
func decode(t testing.TB, enc string) string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(enc + "QUIT\r\n"))
	got, err := io.ReadAll(NewDotReader(br))
	if err != nil {
		t.Fatalf("NewDotReader(%q): %v", enc, err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "QUIT\r\n" {
		t.Fatalf("DotReader stopped in the wrong place: left %q", rest)
	}
	return string(got)
}

// STD-28: whatever the Write boundaries, DATA and BDAT encodings are the
// normalised content, DATA round-trips through a strict server's reader, and
// no end-of-data lookalike survives.
func TestDataWriterEveryBoundary(t *testing.T) {
	want := normalize(nasty)
	wantData := stuff(want)
	check := func(t *testing.T, cuts ...int) {
		t.Helper()
		enc := encode(t, nasty, DataOptions{DotStuff: true}, cuts...)
		if enc != wantData {
			t.Fatalf("cuts %v: DATA encoding = %q, want %q", cuts, enc, wantData)
		}
		checkEncoded(t, enc, true)
		if got := decode(t, enc); got != want {
			t.Fatalf("cuts %v: round trip = %q, want %q", cuts, got, want)
		}
		if enc := encode(t, nasty, DataOptions{}, cuts...); enc != want {
			t.Fatalf("cuts %v: BDAT encoding = %q, want %q", cuts, enc, want)
		}
	}
	for i := 0; i <= len(nasty); i++ {
		check(t, i)
		for j := i; j <= len(nasty); j++ {
			check(t, i, j)
		}
	}
	every := make([]int, len(nasty))
	for i := range every {
		every[i] = i
	}
	check(t, every...) // one byte per Write
}

// STD-28: the same content goes out whether it is sent with DATA or BDAT.
func TestDataAndBDATDeliverSameBytes(t *testing.T) {
	for _, in := range []string{"", "a", "a\n", nasty, "\r\r\r", "\n\n.\n\n", strings.Repeat("x.\n", 10000)} {
		data := encode(t, in, DataOptions{DotStuff: true})
		bdat := encode(t, in, DataOptions{})
		if got := decode(t, data); got != bdat {
			t.Errorf("%q: DATA delivers %q, BDAT %q", in, got, bdat)
		}
	}
}

func TestDataWriterReject8Bit(t *testing.T) {
	tests := []struct {
		name    string
		pieces  []string
		written string // what reaches the underlying writer
		n       []int  // Write results
		ok      bool
	}{
		{"7-bit passes", []string{"abc\n", "def"}, "abc\r\ndef\r\n.\r\n", []int{4, 3}, true},
		{"8-bit first", []string{"\xc3\xa9"}, "", []int{0}, false},
		{"8-bit later in line", []string{"abc\ndef\xffghi"}, "abc\r\ndef", []int{7}, false},
		{"8-bit in second write", []string{"abcdefghijklmnop\n", "x\x80"}, "abcdefghijklmnop\r\nx", []int{17, 1}, false},
		{"8-bit after dot", []string{".\x80"}, "..", []int{1}, false},
		{"long 7-bit run then 8-bit", []string{strings.Repeat("a", 100) + "\x80"}, strings.Repeat("a", 100), []int{100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			d := NewDataWriter(&out, DataOptions{DotStuff: true, Reject8Bit: true})
			var err error
			for i, p := range tt.pieces {
				var n int
				n, err = d.Write([]byte(p))
				if n != tt.n[i] {
					t.Errorf("Write(%q) = %d, want %d", p, n, tt.n[i])
				}
				if err != nil {
					break
				}
			}
			cerr := d.Close()
			if tt.ok {
				if err != nil || cerr != nil {
					t.Fatalf("errors %v, %v", err, cerr)
				}
			} else {
				if !errors.Is(err, Err8Bit) || !errors.Is(cerr, Err8Bit) {
					t.Fatalf("Write err = %v, Close err = %v; want Err8Bit from both", err, cerr)
				}
				if _, werr := d.Write([]byte("more")); !errors.Is(werr, Err8Bit) {
					t.Errorf("Write after Err8Bit: %v, want the sticky Err8Bit", werr)
				}
			}
			if got := out.String(); got != tt.written && !(strings.HasPrefix(tt.written, got) && !tt.ok) {
				t.Errorf("written %q, want %q", got, tt.written)
			}
			if bytes.ContainsFunc(out.Bytes(), func(r rune) bool { return r >= 0x80 }) {
				t.Errorf("8-bit octet written: %q", out.String())
			}
			if !tt.ok && strings.HasSuffix(out.String(), ".\r\n") {
				t.Errorf("end marker written after Err8Bit: %q", out.String())
			}
		})
	}
}

type failWriter struct {
	n   int // successful writes before failing
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	f.n--
	return len(p), nil
}

func TestDataWriterErrors(t *testing.T) {
	boom := errors.New("connection reset")
	d := NewDataWriter(&failWriter{err: boom}, DataOptions{DotStuff: true})
	big := bytes.Repeat([]byte("line\r\n"), dataBufSize)
	n, err := d.Write(big)
	if !errors.Is(err, boom) || n >= len(big) {
		t.Fatalf("Write = %d, %v; want a short count and the writer's error", n, err)
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("second Write: %v, want the sticky error", err)
	}
	if err := d.Close(); !errors.Is(err, boom) {
		t.Errorf("Close: %v, want the sticky error", err)
	}

	// An error that shows only when Close flushes.
	d = NewDataWriter(&failWriter{err: boom}, DataOptions{DotStuff: true})
	if _, err := d.Write([]byte("short")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, boom) {
		t.Errorf("Close: %v, want the writer's error", err)
	}

	var out bytes.Buffer
	d = NewDataWriter(&out, DataOptions{DotStuff: true})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out.String() != ".\r\n" {
		t.Errorf("two Closes wrote %q", out.String())
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Write after Close: %v, want ErrWriterClosed", err)
	}
}

// CloseWith puts the trailer after the end marker, in the same final write
// and unencoded, whatever the content; it refuses BDAT, where the trailer
// would become content.
func TestDataWriterCloseWith(t *testing.T) {
	quit := []byte("QUIT\r\n")
	for _, tt := range []struct {
		name, in string
	}{
		{"empty", ""},
		{"no final line break", "Subject: x\r\n\r\nbody"},
		{"dot line", "a\r\n.\r\nb\r\n"},
		{"a buffer and more", strings.Repeat("0123456789abcdef\r\n", dataBufSize/18+3)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var cw countWriter
			d := NewDataWriter(&cw, DataOptions{DotStuff: true})
			if _, err := d.Write([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			writes := cw.writes
			if err := d.CloseWith(quit); err != nil {
				t.Fatal(err)
			}
			if want := stuff(normalize(tt.in)) + "QUIT\r\n"; cw.String() != want {
				t.Errorf("wrote %q, want %q", cw.String(), want)
			}
			if cw.writes != writes+1 {
				t.Errorf("CloseWith made %d writes, want the end marker and the trailer in one", cw.writes-writes)
			}
			if err := d.CloseWith(quit); err != nil || strings.Count(cw.String(), "QUIT") != 1 {
				t.Errorf("a second CloseWith: %v, wrote %q", err, cw.String())
			}
		})
	}
	var out bytes.Buffer
	d := NewDataWriter(&out, DataOptions{})
	d.Write([]byte("x\r\n"))
	if err := d.CloseWith(quit); err == nil || out.Len() != 0 {
		t.Errorf("CloseWith on BDAT content: %v, wrote %q; want an error and nothing written", err, out.String())
	}
}

type countWriter struct {
	writes, small int
	bytes.Buffer
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes++
	if len(p) < 1024 {
		c.small++
	}
	return c.Buffer.Write(p)
}

// The encoder writes in large slices, never line by line or byte by byte,
// whatever the size of the caller's writes and however many line endings
// need fixing.
func TestDataWriterWriteSizes(t *testing.T) {
	msg := realisticMessage(1 << 20)
	lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	for _, tt := range []struct {
		name  string
		in    []byte
		piece int
	}{
		{"CRLF, 32 KiB writes", msg, 32 << 10},
		{"LF, 32 KiB writes", lf, 32 << 10},
		{"LF, 1-byte writes", lf[:64<<10], 1},
	} {
		var cw countWriter
		d := NewDataWriter(&cw, DataOptions{DotStuff: true})
		for p := tt.in; len(p) > 0; {
			n := min(tt.piece, len(p))
			if _, err := d.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		max := cw.Len()/dataBufSize + 2
		if cw.writes > max || cw.small > 1 {
			t.Errorf("%s: %d writes (%d under 1 KiB) for %d bytes, want at most %d and one small", tt.name, cw.writes, cw.small, cw.Len(), max)
		}
		if want := stuff(normalize(string(tt.in))); cw.String() != want {
			t.Errorf("%s: wrong encoding", tt.name)
		}
	}
}

func TestDataWriterResetNoAlloc(t *testing.T) {
	msg := realisticMessage(64 << 10)
	d := NewDataWriter(io.Discard, DataOptions{})
	allocs := testing.AllocsPerRun(20, func() {
		d.Reset(io.Discard, DataOptions{DotStuff: true})
		if _, err := d.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message after Reset, want 0", allocs)
	}
	var zero DataWriter
	var out bytes.Buffer
	zero.Reset(&out, DataOptions{DotStuff: true})
	if _, err := zero.Write([]byte(".x")); err != nil || zero.Close() != nil || out.String() != "..x\r\n.\r\n" {
		t.Errorf("Reset on a zero DataWriter: %q, %v", out.String(), err)
	}
}

// STD-28: BDAT chunks of at most size bytes, exactly the content, the last
// one flagged (possibly empty: "BDAT 0 LAST").
func TestChunkWriter(t *testing.T) {
	type chunk struct {
		data string
		last bool
	}
	tests := []struct {
		name   string
		size   int
		writes []string
		want   []chunk
	}{
		{"empty", 4, nil, []chunk{{"", true}}},
		{"smaller than a chunk", 4, []string{"ab"}, []chunk{{"ab", true}}},
		{"exactly one chunk", 4, []string{"abcd"}, []chunk{{"abcd", false}, {"", true}}},
		{"one and a bit", 4, []string{"abcde"}, []chunk{{"abcd", false}, {"e", true}}},
		{"small writes", 3, []string{"a", "b", "c", "d", "e", "f", "g"}, []chunk{{"abc", false}, {"def", false}, {"g", true}}},
		{"large write after partial", 3, []string{"a", "bcdefgh"}, []chunk{{"abc", false}, {"def", false}, {"gh", true}}},
		{"many chunks in one write", 2, []string{"abcdefg"}, []chunk{{"ab", false}, {"cd", false}, {"ef", false}, {"g", true}}},
		{"empty writes", 2, []string{"", "a", "", "b", ""}, []chunk{{"ab", false}, {"", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []chunk
			c := NewChunkWriter(tt.size, ChunkFunc(func(b []byte, last bool) error {
				if len(b) > tt.size {
					t.Errorf("chunk of %d bytes, size %d", len(b), tt.size)
				}
				got = append(got, chunk{string(b), last})
				return nil
			}))
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("chunks %v, want %v", got, tt.want)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
				t.Errorf("Write after Close: %v", err)
			}
		})
	}
}

// STD-28: a failed BDAT ends the transaction: no more chunks, not even the
// LAST one.
func TestChunkWriterStickyError(t *testing.T) {
	refused := errors.New("552 5.3.4 message too big")
	calls := 0
	c := NewChunkWriter(2, ChunkFunc(func(b []byte, last bool) error {
		calls++
		if calls == 2 {
			return refused
		}
		return nil
	}))
	n, err := c.Write([]byte("abcdef"))
	if n != 4 || !errors.Is(err, refused) {
		t.Fatalf("Write = %d, %v; want 4 and the send error", n, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, refused) {
		t.Errorf("later Write: %v", err)
	}
	if err := c.Close(); !errors.Is(err, refused) {
		t.Errorf("Close: %v", err)
	}
	if calls != 2 {
		t.Errorf("send called %d times, want 2", calls)
	}

	// An error from the last chunk is Close's result.
	c = NewChunkWriter(0, ChunkFunc(func(b []byte, last bool) error { return refused }))
	if c.size != DefaultChunkSize {
		t.Errorf("size %d, want DefaultChunkSize", c.size)
	}
	if err := c.Close(); !errors.Is(err, refused) {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, refused) {
		t.Errorf("second Close: %v", err)
	}

	// Reset starts a new message.
	var got []string
	c.Reset(ChunkFunc(func(b []byte, last bool) error { got = append(got, fmt.Sprintf("%s %v", b, last)); return nil }))
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil || fmt.Sprint(got) != "[hi true]" {
		t.Errorf("after Reset: %q, %v", got, err)
	}
}

// STD-28: a DataWriter without dot-stuffing in front of a ChunkWriter gives
// BDAT chunks whose concatenation is the normalised content.
func TestDataWriterIntoChunkWriter(t *testing.T) {
	var sent bytes.Buffer
	lastSeen := false
	c := NewChunkWriter(7, ChunkFunc(func(b []byte, last bool) error {
		if lastSeen {
			t.Error("chunk after LAST")
		}
		lastSeen = last
		sent.Write(b)
		return nil
	}))
	d := NewDataWriter(c, DataOptions{})
	if _, err := io.WriteString(d, nasty); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !lastSeen || sent.String() != normalize(nasty) {
		t.Errorf("BDAT content %q, want %q", sent.String(), normalize(nasty))
	}
}

func TestDotReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		rest string
	}{
		{"empty message", ".\r\n", "", ""},
		{"one line", "a\r\n.\r\n", "a\r\n", ""},
		{"unstuffing", "..a\r\n..\r\n...\r\n.\r\n", ".a\r\n.\r\n..\r\n", ""},
		{"dot inside a line", "a.b\r\n.\r\n", "a.b\r\n", ""},
		{"LF dot LF is content", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", ""},
		{"CRLF dot LF is content", "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", ""},
		{"LF dot CRLF is content", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", ""},
		{"CR dot CR is content", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", ""},
		{"dot CR CR LF", "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", ""},
		{"dot CR x", "a\r\n.\rx\r\n.\r\n", "a\r\n\rx\r\n", ""},
		{"CR CR LF dot", "a\r\r\n.\r\n", "a\r\r\n", ""},
		{"no final CRLF before marker is content", "a\r\nb.\r\n.\r\n", "a\r\nb.\r\n", ""},
		{"rest stays", "a\r\n.\r\nQUIT\r\n", "a\r\n", "QUIT\r\n"},
		{"pipelined commands stay", ".\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "", "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"},
		{"binary", "\x00\xff\x80\r\n.\r\n", "\x00\xff\x80\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var src io.Reader = strings.NewReader(tt.in)
				if one {
					src = iotest.OneByteReader(src)
				}
				br := bufio.NewReaderSize(src, 16)
				got, err := io.ReadAll(NewDotReader(br))
				if err != nil {
					t.Fatalf("one byte %v: %v", one, err)
				}
				if string(got) != tt.want {
					t.Errorf("one byte %v: got %q, want %q", one, got, tt.want)
				}
				rest, _ := io.ReadAll(br)
				if string(rest) != tt.rest {
					t.Errorf("one byte %v: left %q, want %q", one, rest, tt.rest)
				}
			}
			if err := iotest.TestReader(NewDotReader(bufio.NewReader(strings.NewReader(tt.in))), []byte(tt.want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDotReaderUnexpectedEOF(t *testing.T) {
	for _, in := range []string{"", "a", "a\r\n", "a\r\n.", "a\r\n.\r", "a\n.\n", "..\r\n", "a\r\n.\n"} {
		got, err := io.ReadAll(NewDotReader(bufio.NewReader(strings.NewReader(in))))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: got %q, %v; want io.ErrUnexpectedEOF", in, got, err)
		}
	}
	boom := errors.New("reset by peer")
	_, err := io.ReadAll(NewDotReader(bufio.NewReader(iotest.ErrReader(boom))))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
}

// The reader streams: content far larger than its buffer goes through.
func TestDotReaderStreams(t *testing.T) {
	const size = 8 << 20
	src := io.MultiReader(io.LimitReader(&endless{pattern: []byte("..line\r\n")}, size), strings.NewReader(".\r\n"))
	n, err := io.Copy(io.Discard, NewDotReader(bufio.NewReaderSize(src, 4096)))
	if err != nil || n != size/8*7 {
		t.Errorf("copied %d, %v; want %d", n, err, size/8*7)
	}
}

// realisticMessage returns a CRLF message of about size bytes: headers, then
// text lines of varied length, some starting with a dot, some blank.
func realisticMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n" +
		"Subject: Quarterly report\r\nDate: Mon, 2 Jun 2025 10:00:00 +0000\r\n" +
		"Message-ID: <20250602100000.1234@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n")
	words := strings.Fields("the quick brown fox jumps over the lazy dog while a report on quarterly numbers is being prepared for the board meeting next week")
	for i := 0; b.Len() < size; i++ {
		switch {
		case i%40 == 0:
			b.WriteString(".\r\n")
		case i%23 == 0:
			b.WriteString("..and a line that starts with a dot\r\n")
		case i%9 == 0:
			b.WriteString("\r\n")
		default:
			n := 8 + i%7
			for j := 0; j < n; j++ {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[(i*7+j)%len(words)])
			}
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

const benchPiece = 32 << 10 // as io.Copy writes

func BenchmarkDataWriter(b *testing.B) {
	msg := realisticMessage(1 << 20)
	d := NewDataWriter(io.Discard, DataOptions{DotStuff: true})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(io.Discard, DataOptions{DotStuff: true})
		for p := msg; len(p) > 0; {
			n := min(benchPiece, len(p))
			if _, err := d.Write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTextprotoDotWriter(b *testing.B) {
	msg := realisticMessage(1 << 20)
	bw := bufio.NewWriterSize(io.Discard, dataBufSize)
	tw := textproto.NewWriter(bw)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		d := tw.DotWriter()
		for p := msg; len(p) > 0; {
			n := min(benchPiece, len(p))
			if _, err := d.Write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDotReader(b *testing.B) {
	msg := realisticMessage(1 << 20)
	var enc bytes.Buffer
	d := NewDataWriter(&enc, DataOptions{DotStuff: true})
	_, _ = d.Write(msg)
	_ = d.Close()
	src := bytes.NewReader(enc.Bytes())
	br := bufio.NewReader(src)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(enc.Bytes())
		br.Reset(src)
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{NewDotReader(br)}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDataWriter(f *testing.F) {
	f.Add([]byte(nasty), []byte{1, 2, 3}, true, false)
	f.Add([]byte("a\n.\nb"), []byte{2}, true, false)
	f.Add([]byte("\r\r\n.\r"), []byte{1, 1, 1, 1}, false, false)
	f.Add([]byte("caf\xc3\xa9\n.\r\n"), []byte{3}, true, true)
	f.Add([]byte(""), []byte{}, true, false)
	f.Add([]byte("."), []byte{0}, true, true)
	f.Fuzz(func(t *testing.T, in, cuts []byte, dotStuff, reject8 bool) {
		var out bytes.Buffer
		d := NewDataWriter(&out, DataOptions{DotStuff: dotStuff, Reject8Bit: reject8})
		consumed := 0
		var err error
		rest := in
		for i := 0; len(rest) > 0 && err == nil; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(int(cuts[i]), n)
			}
			var w int
			w, err = d.Write(rest[:n])
			consumed += w
			if err == nil && w != n {
				t.Fatalf("Write returned %d of %d without error", w, n)
			}
			rest = rest[n:]
		}
		if err == nil {
			err = d.Close()
		} else if cerr := d.Close(); !errors.Is(cerr, err) {
			t.Fatalf("Close after %v returned %v", err, cerr)
		}
		has8 := index8Bit(in) >= 0
		if reject8 {
			if i := index8Bit(out.Bytes()); i >= 0 {
				t.Fatalf("8-bit octet written at %d: %q", i, out.Bytes())
			}
			if has8 {
				if !errors.Is(err, Err8Bit) {
					t.Fatalf("8-bit input accepted: %v", err)
				}
				if consumed != index8Bit(in) {
					t.Fatalf("consumed %d, first 8-bit octet at %d", consumed, index8Bit(in))
				}
				// What was written is a prefix of the full encoding.
				full := normalize(string(in))
				if dotStuff {
					full = stuff(full)
				}
				if !strings.HasPrefix(full, out.String()) {
					t.Fatalf("partial output %q is not a prefix of %q", out.String(), full)
				}
				return
			}
		}
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		enc := out.String()
		checkEncoded(t, enc, dotStuff)
		want := normalize(string(in))
		if !dotStuff {
			if enc != want {
				t.Fatalf("BDAT encoding %q, want %q", enc, want)
			}
			return
		}
		if got := decode(t, enc); got != want {
			t.Fatalf("round trip %q, want %q", got, want)
		}
	})
}
