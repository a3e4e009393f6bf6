package smtpsecure

import (
	"bufio"
	"context"
	"io"
	"net/textproto"
	"strings"
)

// preparedMessage is a message checked and measured for Deliver.
type preparedMessage struct {
	src MessageSource
	// env is the caller's envelope with MailOptions.Size filled in; each
	// session gets a copy with the recipients of its domain.
	env Envelope
	// mode is how the sessions treat authentication: strict, or relaxed
	// for a TLS report or a message whose "TLS-Required: No" is honoured.
	mode hostMode
}

// maxHeaderScan bounds what is read of a message to find its TLS-Required
// header field.
const maxHeaderScan = 256 << 10

// prepare checks the envelope and the message before anything is dialled,
// signs the message with the Signer, if any, and measures it once, so that
// each session reads it only to send it, and every session sends the same
// signed octets.
func (d *Deliverer) prepare(ctx context.Context, env *Envelope, msg MessageSource, mode hostMode) (*preparedMessage, error) {
	if msg == nil {
		return nil, optionsErr("nil MessageSource")
	}
	if err := env.validate(); err != nil {
		return nil, err
	}
	if env.AllOrNothing {
		return nil, optionsErr("Envelope.AllOrNothing is not supported by Deliver: each domain, and each MX host, takes the message on its own")
	}
	if env.Size < 0 {
		return nil, optionsErr("negative MailOptions.Size %d", env.Size)
	}
	size := msg.Size()
	if size < 0 {
		return nil, optionsErr("negative MessageSource.Size %d", size)
	}
	m := &preparedMessage{src: msg, env: *env, mode: mode}
	if d.Signer != nil {
		if env.Body == BodyBinaryMIME {
			return nil, optionsErr("a BINARYMIME message cannot be signed by Deliverer.Signer: it is sent unchanged, and a signature covers CRLF lines (RFC 6376 §5.3); encode the content as base64 or quoted-printable")
		}
		signed, err := signMessage(ctx, d.Signer, msg)
		if err != nil {
			return nil, err
		}
		if m.env.Size > 0 {
			m.env.Size += int64(len(signed.head))
		}
		msg, size = signed, signed.Size()
		m.src = signed
	}
	if m.env.Size == 0 {
		m.env.Size = messageSize(io.NewSectionReader(msg, 0, size), env.Body == BodyBinaryMIME)
	}
	switch {
	case env.RequireTLS:
		// RFC 8689 §4.2.2: the header field is ignored when REQUIRETLS is
		// asked for, and nothing may relax a REQUIRETLS message.
		m.mode = modeStrict
	case mode == modeStrict && d.InsecureHonorTLSRequiredNo && tlsRequiredNo(io.NewSectionReader(msg, 0, size)):
		m.mode = modeRelaxed
	}
	return m, nil
}

// tlsRequiredNo reports whether the message header has exactly one
// TLS-Required field and its value is "No" (RFC 8689 §3: case-insensitive,
// white space around it ignored). A header that does not end, with its
// empty line, within maxHeaderScan octets counts as not having it.
func tlsRequiredNo(r io.Reader) bool {
	tp := textproto.NewReader(bufio.NewReader(io.LimitReader(r, maxHeaderScan)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return false
	}
	v := h.Values("Tls-Required")
	return len(v) == 1 && strings.EqualFold(strings.TrimSpace(v[0]), "No")
}
