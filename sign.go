package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// A MessageSigner signs a message before it is sent: it reads the whole
// message and returns header fields to add at its top, such as a
// DKIM-Signature. *DKIMSigner is one. Deliverer.Signer signs every message
// Deliver sends with it, once, before the first session; SignMessage signs
// one message for any other way of sending it.
type MessageSigner interface {
	// Sign reads the message exactly as it will be sent: CRLF line ends
	// (every bare CR and bare LF becomes CRLF, and a last line without
	// one gets one), without dot-stuffing. It returns the header fields to
	// add at the top of the message: each line ends in CRLF, continuation
	// lines start with a space or a tab, and there is no empty line; nil
	// adds nothing. The context is the caller's. An error stops the
	// message before anything of it is sent.
	Sign(ctx context.Context, msg io.Reader) ([]byte, error)
}

// SignError reports that a message could not be signed
// (Deliverer.Signer, SignMessage): the signer failed or was misconfigured,
// the message could not be read, or the signer returned something other
// than header fields. Nothing was sent.
type SignError struct {
	// Err is the cause: the signer's error (for a *DKIMSigner, an error
	// matching ErrInvalidOptions says that its fields are wrong), the
	// message reader's error, the context's error, or what is wrong with
	// the fields the signer returned.
	Err error
}

// Error says that signing failed, why, and that nothing was sent.
func (e *SignError) Error() string {
	return "smtpsecure: signing the message failed, so nothing was sent: " + strings.TrimPrefix(e.Err.Error(), "smtpsecure: ")
}

// Unwrap returns ErrSign and the cause.
func (e *SignError) Unwrap() []error { return []error{ErrSign, e.Err} }

// maxSignatureFields bounds what a MessageSigner may return: a
// DKIM-Signature with a 4096-bit RSA signature is under 1 KiB.
const maxSignatureFields = 64 << 10

// SignMessage signs msg with s and returns the signed message: the header
// fields s returned, then msg, read from msg when it is read. msg is read
// once here, to be signed, and never held in memory; it must not change
// while the result is in use. The result is an io.Reader for Dialer.Send
// and Client.Send (which declare its size with SIZE) and a MessageSource for
// Deliver. Only a text message can be signed this way: one sent with
// BodyBinaryMIME goes unchanged with BDAT, and its line ends are not those
// s was given. The error is a *SignError.
//
// Deliverer.Signer does the same for every message Deliver sends.
func SignMessage(ctx context.Context, s MessageSigner, msg MessageSource) (*io.SectionReader, error) {
	if s == nil {
		return nil, &SignError{Err: optionsErr("nil MessageSigner")}
	}
	if msg == nil {
		return nil, &SignError{Err: optionsErr("nil MessageSource")}
	}
	signed, err := signMessage(ctx, s, msg)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(signed, 0, signed.Size()), nil
}

// signMessage gives s the message as it goes on the wire and returns the
// message with the fields s returned in front.
func signMessage(ctx context.Context, s MessageSigner, msg MessageSource) (*prependedSource, error) {
	size := msg.Size()
	if size < 0 {
		return nil, &SignError{Err: optionsErr("negative MessageSource.Size %d", size)}
	}
	wr := newWireReader(ctx, io.NewSectionReader(msg, 0, size))
	fields, err := s.Sign(ctx, wr)
	switch {
	case wr.err != nil:
		// The message could not be read: that is the cause, whatever the
		// signer made of it.
		return nil, &SignError{Err: wr.err}
	case err != nil:
		return nil, &SignError{Err: err}
	}
	if err := checkFields(fields); err != nil {
		return nil, &SignError{Err: err}
	}
	return &prependedSource{head: bytes.Clone(fields), src: msg, size: size}, nil
}

// checkFields checks that b is header fields: lines ending in CRLF, each a
// field ("Name: value") or a continuation of one, and nothing that could
// end the header or the data early.
func checkFields(b []byte) error {
	if len(b) > maxSignatureFields {
		return fmt.Errorf("the signer returned %d octets of header fields, more than %d", len(b), maxSignatureFields)
	}
	if len(b) > 0 && !bytes.HasSuffix(b, crlf) {
		return errors.New("the signer returned header fields that do not end in CRLF")
	}
	for i, line := range bytes.SplitAfter(b, crlf) {
		if len(line) == 0 {
			break // after the last CRLF
		}
		content := line[:len(line)-2]
		switch {
		case len(content) == 0:
			return errors.New("the signer returned an empty line, which would end the header")
		case bytes.ContainsAny(content, "\r\n\x00"):
			return errors.New("the signer returned a header field with a bare CR, a bare LF or a NUL")
		case content[0] == ' ' || content[0] == '\t':
			if i == 0 {
				return errors.New("the signer returned a continuation line before any header field")
			}
		default:
			colon := bytes.IndexByte(content, ':')
			if colon <= 0 {
				return fmt.Errorf("the signer returned %q, which is not a header field", truncate(string(content), 40))
			}
			for _, c := range content[:colon] {
				if c < 33 || c > 126 {
					return fmt.Errorf("the signer returned the header field name %q, which has characters other than printable ASCII", truncate(string(content[:colon]), 40))
				}
			}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// prependedSource is a MessageSource of head followed by the first size
// octets of src.
type prependedSource struct {
	head []byte
	src  MessageSource
	size int64
}

// ReadAt reads from head, then from src.
func (p *prependedSource) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("smtpsecure: negative offset")
	}
	n := 0
	if off < int64(len(p.head)) {
		n = copy(b, p.head[off:])
		if n == len(b) {
			return n, nil
		}
	}
	srcOff := off + int64(n) - int64(len(p.head))
	if srcOff >= p.size {
		return n, io.EOF
	}
	want := b[n:]
	if rest := p.size - srcOff; int64(len(want)) > rest {
		want = want[:rest]
	}
	m, err := p.src.ReadAt(want, srcOff)
	n += m
	if err == nil && n < len(b) {
		err = io.EOF
	}
	return n, err
}

// Size returns the length of head and src together.
func (p *prependedSource) Size() int64 { return int64(len(p.head)) + p.size }

// wireReader reads a message as a session sends it with BDAT: line ends
// normalised to CRLF by the same wire.DataWriter, no dot-stuffing. It
// keeps the first error of the underlying reader, and stops when the
// context ends.
type wireReader struct {
	ctx   context.Context
	src   io.Reader
	dw    *wire.DataWriter
	out   bytes.Buffer // encoded, not yet read
	chunk []byte
	done  bool
	err   error // the source's error or the context's
}

func newWireReader(ctx context.Context, src io.Reader) *wireReader {
	r := &wireReader{ctx: ctx, src: src, chunk: make([]byte, 32<<10)}
	r.dw = wire.NewDataWriter(&r.out, wire.DataOptions{})
	return r
}

// Read returns encoded octets, reading and encoding more as needed.
func (r *wireReader) Read(p []byte) (int, error) {
	for r.out.Len() == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return 0, err
		}
		n, err := r.src.Read(r.chunk)
		r.dw.Write(r.chunk[:n]) // into r.out, which does not fail
		switch {
		case errors.Is(err, io.EOF):
			r.done = true
			r.dw.Close()
		case err != nil:
			r.err = err
		default:
			r.dw.Flush()
		}
	}
	return r.out.Read(p)
}
