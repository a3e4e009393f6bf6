package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// fieldSigner is a MessageSigner that returns fixed fields and keeps what
// it was given.
type fieldSigner struct {
	fields []byte
	err    error
	calls  int
	got    []byte
}

func (f *fieldSigner) Sign(ctx context.Context, msg io.Reader) ([]byte, error) {
	f.calls++
	b, err := io.ReadAll(msg)
	f.got = b
	if err != nil {
		return nil, err
	}
	return f.fields, f.err
}

// What a signer returns must be header fields: anything that could end the
// header or the data, or is not a field, is refused.
func TestCheckFields(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		ok     bool
	}{
		{"nothing", "", true},
		{"one field", "DKIM-Signature: v=1; a=rsa-sha256\r\n", true},
		{"folded", "DKIM-Signature: v=1;\r\n\t b=abc\r\n X: y\r\n", true},
		{"two fields", "A: 1\r\nB: 2\r\n", true},
		{"no final CRLF", "A: 1", false},
		{"bare LF", "A: 1\nB: 2\r\n", false},
		{"bare CR", "A: 1\rB: 2\r\n", false},
		{"empty line", "A: 1\r\n\r\n", false},
		{"empty line first", "\r\nA: 1\r\n", false},
		{"continuation first", " A: 1\r\n", false},
		{"no colon", "Not a field\r\n", false},
		{"space in name", "Bad Name: 1\r\n", false},
		{"NUL", "A: 1\x00\r\n", false},
		{"too large", "A: " + strings.Repeat("x", maxSignatureFields) + "\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkFields([]byte(tt.fields)); (err == nil) != tt.ok {
				t.Errorf("checkFields(%q) = %v, want ok=%v", tt.fields, err, tt.ok)
			}
		})
	}
}

// prependedSource reads as its head and its source put together, at any
// offset and length, and reports io.EOF as io.ReaderAt requires.
func TestPrependedSourceReadAt(t *testing.T) {
	head := []byte("H: 1\r\n")
	src := strings.NewReader("the message body, and more\r\n")
	p := &prependedSource{head: head, src: src, size: src.Size()}
	whole := append(append([]byte(nil), head...), "the message body, and more\r\n"...)
	if p.Size() != int64(len(whole)) {
		t.Fatalf("Size %d, want %d", p.Size(), len(whole))
	}
	for off := 0; off <= len(whole)+1; off++ {
		for n := 0; n <= len(whole)+2; n++ {
			b := make([]byte, n)
			got, err := p.ReadAt(b, int64(off))
			want := 0
			if off < len(whole) {
				want = min(n, len(whole)-off)
			}
			if got != want || !bytes.Equal(b[:got], whole[min(off, len(whole)):min(off, len(whole))+want]) {
				t.Fatalf("ReadAt(%d octets, %d) = %d %q, want %d", n, off, got, b[:got], want)
			}
			// Fewer octets than asked for come with io.EOF; io.EOF may
			// also come with all of them at the end (as bytes.Reader does).
			if got < n && !errors.Is(err, io.EOF) || err != nil && !errors.Is(err, io.EOF) || errors.Is(err, io.EOF) && off+got < len(whole) {
				t.Fatalf("ReadAt(%d octets, %d): %d read, error %v", n, off, got, err)
			}
		}
	}
	// Through a SectionReader, as SignMessage returns it.
	r := io.NewSectionReader(p, 0, p.Size())
	b, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || !bytes.Equal(b, whole) {
		t.Fatalf("read %q, %v", b, err)
	}
}

// The signer reads the message as a session sends it: CRLF line ends, no
// dot-stuffing, a final line end; however the caller's reader hands it out.
func TestSignerSeesWireForm(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb\r\n", "a\r\nb\r\n"},
		{"a\r\r\nb", "a\r\n\r\nb\r\n"},
		{".\r\n..x\r\n", ".\r\n..x\r\n"},
		{strings.Repeat("long line ", 10000) + "\n", strings.Repeat("long line ", 10000) + "\r\n"},
	}
	for _, tt := range tests {
		s := &fieldSigner{}
		if _, err := signMessage(context.Background(), s, strings.NewReader(tt.in)); err != nil {
			t.Fatal(err)
		}
		if string(s.got) != tt.want {
			t.Errorf("signer got %q for %q, want %q", truncate(string(s.got), 60), truncate(tt.in, 60), truncate(tt.want, 60))
		}
	}
}

// A failing signer, a failing reader, a context that ends and fields that
// are not fields are *SignErrors that match their cause and ErrSign.
func TestSignMessageErrors(t *testing.T) {
	boom := errors.New("key store unreachable")
	diskErr := errors.New("disk on fire")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		s     MessageSigner
		msg   MessageSource
		cause error
		want  string
	}{
		{"signer fails", context.Background(), &fieldSigner{err: boom}, strings.NewReader("A: b\r\n\r\n"), boom, "key store unreachable"},
		{"reader fails", context.Background(), &fieldSigner{fields: []byte("X: 1\r\n")}, failingSource{diskErr}, diskErr, "disk on fire"},
		{"context ended", canceled, &fieldSigner{fields: []byte("X: 1\r\n")}, strings.NewReader("A: b\r\n\r\n"), context.Canceled, "context canceled"},
		{"not a field", context.Background(), &fieldSigner{fields: []byte("garbage\r\n")}, strings.NewReader("A: b\r\n\r\n"), nil, "not a header field"},
		{"nil signer", context.Background(), nil, strings.NewReader("A: b\r\n\r\n"), ErrInvalidOptions, "nil MessageSigner"},
		{"nil message", context.Background(), &fieldSigner{}, nil, ErrInvalidOptions, "nil MessageSource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := SignMessage(tt.ctx, tt.s, tt.msg)
			var se *SignError
			if r != nil || !errors.As(err, &se) || !errors.Is(err, ErrSign) || tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("SignMessage = %v, %v; want a *SignError matching %v", r, err, tt.cause)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "smtpsecure: signing the message failed, so nothing was sent: ") || !strings.Contains(msg, tt.want) || strings.Count(msg, "smtpsecure:") != 1 {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// failingSource is a MessageSource whose reads fail.
type failingSource struct{ err error }

func (f failingSource) ReadAt([]byte, int64) (int, error) { return 0, f.err }
func (f failingSource) Size() int64                       { return 100 }

// A message signed with SignMessage goes through Dialer.Send with the
// fields first and its exact size declared with SIZE.
func TestSignMessageThroughSend(t *testing.T) {
	srv := newServer(t, nil)
	s := &fieldSigner{fields: []byte("X-Signed: yes\r\n")}
	signed, err := SignMessage(ctxT(t), s, strings.NewReader("Subject: hi\n\nBody\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv)
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, signed); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	want := "X-Signed: yes\r\nSubject: hi\r\n\r\nBody\r\n"
	if string(msgs[0].Data) != want {
		t.Errorf("received %q, want %q", msgs[0].Data, want)
	}
	if got := msgs[0].MailParams["SIZE"]; got != strconv.Itoa(len(want)) {
		t.Errorf("SIZE=%s, want %d", got, len(want))
	}
}
