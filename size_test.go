package smtpsecure

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// Issue 9 §6, RFC 1870: SIZE never declares less than the octets that will
// be sent. Readers that can be read without being consumed get their exact
// size after LF→CRLF normalisation (dot-stuffing is not counted, RFC 1870
// §3); other readers declare no SIZE unless MailOptions.Size is given;
// BINARYMIME is counted as it is.
func TestSizeDeclared(t *testing.T) {
	bare := "Subject: bare\n\nline 1\nline 2\r\n.dot\nno end"
	partly := bytes.NewReader([]byte("XXXX" + bare))
	partly.Seek(4, io.SeekStart)
	section := io.NewSectionReader(strings.NewReader("XXXX"+bare+"YYYY"), 4, int64(len(bare)))
	section.Seek(0, io.SeekStart)
	buffer := bytes.NewBufferString(bare)
	cases := []struct {
		name   string
		msg    io.Reader
		opts   MailOptions
		exts   []string
		want   string // "" means no SIZE parameter
		binary bool
	}{
		{name: "strings.Reader", msg: strings.NewReader(bare), want: strconv.Itoa(len(normalise(bare)))},
		{name: "bytes.Reader", msg: bytes.NewReader([]byte(bare)), want: strconv.Itoa(len(normalise(bare)))},
		{name: "bytes.Reader partly read", msg: partly, want: strconv.Itoa(len(normalise(bare)))},
		{name: "bytes.Buffer", msg: buffer, want: strconv.Itoa(len(normalise(bare)))},
		{name: "io.SectionReader", msg: section, want: strconv.Itoa(len(normalise(bare)))},
		{name: "CR LF already", msg: strings.NewReader(testMsg), want: strconv.Itoa(len(testMsg))},
		{name: "empty", msg: strings.NewReader(""), want: ""},
		{name: "stream", msg: io.MultiReader(strings.NewReader(bare)), want: ""},
		{name: "caller's size", msg: io.MultiReader(strings.NewReader(bare)), opts: MailOptions{Size: 4242}, want: "4242"},
		{name: "BINARYMIME", msg: bytes.NewReader([]byte("\x00bin\nary\r")), opts: MailOptions{Body: BodyBinaryMIME},
			exts: []string{"BINARYMIME"}, want: "9", binary: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = append(append([]string(nil), stdExtensions...), tc.exts...)
			})
			c := dial(t, s)
			env := &Envelope{From: "a@test.example", To: []string{"b@test.example"}, MailOptions: tc.opts}
			if _, err := c.Send(ctxT(t), env, tc.msg); err != nil {
				t.Fatal(err)
			}
			c.Quit(ctxT(t))
			m := s.Messages()
			if len(m) != 1 {
				t.Fatalf("%d messages", len(m))
			}
			got, ok := m[0].MailParams["SIZE"]
			switch {
			case tc.want == "" && ok:
				t.Fatalf("SIZE=%s declared", got)
			case tc.want != "" && got != tc.want:
				t.Fatalf("SIZE=%q, want %s", got, tc.want)
			}
			if tc.want != "" && tc.opts.Size == 0 && got != strconv.Itoa(len(m[0].Data)) {
				t.Fatalf("SIZE=%s for %d octets received", got, len(m[0].Data))
			}
		})
	}
}

// The size counter agrees with the encoder that produces the content,
// whatever the line endings and however the content is split.
func TestSizeCounterMatchesEncoder(t *testing.T) {
	inputs := []string{"", "a", "\r", "\n", "\r\n", "\n\r", "a\r\r\n", "a\n\n", ".\r\n..\n", "no end", "x\r", "\r\n\r\n\r", "\x00", "a\x00", "\r\x00"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		b := make([]byte, rng.IntN(200))
		for j := range b {
			const alphabet = "ab.\r\n\x80\x00"
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var out bytes.Buffer
		dw := wire.NewDataWriter(&out, wire.DataOptions{})
		io.WriteString(dw, in)
		dw.Close()
		var sc sizeCounter
		// Split the input to cross a CR LF pair now and then.
		cut := len(in) / 2
		sc.add([]byte(in[:cut]))
		sc.add([]byte(in[cut:]))
		if sc.total() != int64(out.Len()) {
			t.Fatalf("%q: counted %d, the encoder wrote %d", in, sc.total(), out.Len())
		}
	}
}
