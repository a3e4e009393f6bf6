package smtpsecure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/address"
	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// Envelope is the SMTP envelope of one message and its options.
type Envelope struct {
	// From is the reverse-path; "" sends the null reverse-path "<>" used
	// for bounces.
	From string
	// To lists the recipients; at least one is needed.
	To []string
	// MailOptions are the MAIL FROM parameters.
	MailOptions
	// Notify asks for delivery status notifications (DSN, RFC 3461) for
	// every recipient. The zero value asks for nothing and lets the server
	// decide.
	Notify Notify
	// OriginalRecipients gives ORCPT values (RFC 3461 §4.2), keyed by the
	// address as written in To.
	OriginalRecipients map[string]string
	// AllOrNothing sends the message only if every recipient is accepted.
	// It costs one round trip: the envelope's replies are awaited before the
	// data goes out.
	AllOrNothing bool
}

// MailOptions are the parameters of MAIL FROM. A parameter the server does
// not offer is never sent in another form: the transaction fails with an
// *ExtensionError before anything is sent.
type MailOptions struct {
	// Size is the message size in octets for SIZE (RFC 1870). Zero means
	// unknown; Send fills it in from readers with a Len method (such as
	// *bytes.Reader). A size over the server's limit fails before sending.
	Size int64
	// Body declares the body type (RFC 6152, RFC 3030).
	Body BodyType
	// SMTPUTF8 declares that the message needs SMTPUTF8 (RFC 6531), for
	// example because its header has UTF-8. It is set automatically when an
	// envelope address has a non-ASCII local part.
	SMTPUTF8 bool
	// RequireTLS asks every hop to relay the message only over verified
	// TLS (RFC 8689). The server must offer REQUIRETLS and this session must
	// be verified TLS.
	RequireTLS bool
	// Return selects what a DSN returns of the message (RET).
	Return DSNReturn
	// EnvelopeID is the DSN envelope identifier (ENVID), printable ASCII up
	// to 100 characters.
	EnvelopeID string
}

// BodyType is the BODY parameter of MAIL FROM.
type BodyType string

const (
	// BodyAuto, the zero value, declares BODY=8BITMIME when the server
	// offers 8BITMIME. When it does not, the message must be 7-bit: an 8-bit
	// octet ends the session without delivering and gives an
	// *ExtensionError.
	BodyAuto BodyType = ""
	// Body7Bit declares a 7-bit message; an 8-bit octet fails as above.
	Body7Bit BodyType = "7BIT"
	// Body8BitMIME declares 8-bit content; the server must offer 8BITMIME.
	Body8BitMIME BodyType = "8BITMIME"
	// BodyBinaryMIME declares binary content, sent unchanged with BDAT; the
	// server must offer BINARYMIME and CHUNKING (RFC 3030 §3).
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// DSNReturn is the RET parameter of MAIL FROM (RFC 3461 §4.3).
type DSNReturn string

const (
	// ReturnDefault sends no RET parameter.
	ReturnDefault DSNReturn = ""
	// ReturnFull asks DSNs to include the whole message.
	ReturnFull DSNReturn = "FULL"
	// ReturnHeaders asks DSNs to include the header only.
	ReturnHeaders DSNReturn = "HDRS"
)

// Notify is the NOTIFY parameter of RCPT TO (RFC 3461 §4.1), a set of
// conditions.
type Notify int

const (
	// NotifyNever asks for no DSN at all; it cannot be combined.
	NotifyNever Notify = 1 << iota
	// NotifySuccess asks for a DSN on delivery.
	NotifySuccess
	// NotifyFailure asks for a DSN on failure.
	NotifyFailure
	// NotifyDelay asks for a DSN on delay.
	NotifyDelay
)

func (n Notify) param() (string, error) {
	if n == 0 {
		return "", nil
	}
	if n&NotifyNever != 0 {
		if n != NotifyNever {
			return "", optionsErr("NotifyNever cannot be combined with other conditions")
		}
		return "NEVER", nil
	}
	if n&^(NotifySuccess|NotifyFailure|NotifyDelay) != 0 {
		return "", optionsErr("unknown Notify bits %#x", int(n))
	}
	var parts []string
	if n&NotifySuccess != 0 {
		parts = append(parts, "SUCCESS")
	}
	if n&NotifyFailure != 0 {
		parts = append(parts, "FAILURE")
	}
	if n&NotifyDelay != 0 {
		parts = append(parts, "DELAY")
	}
	return strings.Join(parts, ","), nil
}

// RcptOptions are the parameters of RCPT TO.
type RcptOptions struct {
	// Notify asks for DSNs for this recipient.
	Notify Notify
	// OriginalRecipient is the ORCPT address (RFC 3461 §4.2).
	OriginalRecipient string
}

// envAddr is a parsed envelope address in wire form.
type envAddr struct {
	wire string // as it goes between < and >
	utf8 bool   // needs SMTPUTF8
}

func parseAddr(s string) (envAddr, error) {
	a, w, err := address.ParseEncode(s)
	if err != nil {
		return envAddr{}, &AddressError{Address: s, Err: err}
	}
	return envAddr{wire: w, utf8: a.NeedsSMTPUTF8()}, nil
}

// parseFrom accepts "" (or "<>") as the null reverse-path.
func parseFrom(s string) (envAddr, error) {
	if s == "" || s == "<>" {
		return envAddr{}, nil
	}
	return parseAddr(s)
}

func parseRcpt(s string) (envAddr, error) {
	return parseAddr(s)
}

// parse checks the envelope and every address, and reports whether any
// address needs SMTPUTF8. The recipients are appended to rcpts[:0], a
// buffer to reuse, or nil.
func (env *Envelope) parse(rcpts []envAddr) (envAddr, []envAddr, bool, error) {
	if env == nil {
		return envAddr{}, nil, false, optionsErr("nil Envelope")
	}
	if len(env.To) == 0 {
		return envAddr{}, nil, false, optionsErr("no recipients")
	}
	from, err := parseFrom(env.From)
	if err != nil {
		return envAddr{}, nil, false, err
	}
	needUTF8 := from.utf8
	rcpts = rcpts[:0]
	for _, to := range env.To {
		a, err := parseRcpt(to)
		if err != nil {
			return envAddr{}, nil, false, err
		}
		rcpts = append(rcpts, a)
		needUTF8 = needUTF8 || a.utf8
	}
	for to, o := range env.OriginalRecipients {
		if err := wire.CheckArg(o); err != nil || strings.ContainsAny(o, " <>") {
			return envAddr{}, nil, false, &AddressError{Address: o, Err: fmt.Errorf("invalid original recipient for %q", to)}
		}
	}
	return from, rcpts, needUTF8, nil
}

// need returns an *ExtensionError unless the server offers ext.
func (c *Client) need(ext, why string) error {
	if c.ext.Has(ext) {
		return nil
	}
	return &ExtensionError{Host: c.host, Extension: ext, Why: why}
}

// mailCommand builds MAIL FROM with the parameters the options ask for,
// checking each against the server's extensions (STD-31..33, STD-91).
func (c *Client) mailCommand(from envAddr, o *MailOptions, needUTF8 bool) (string, *txState, error) {
	// One transaction at a time: its state lives in the Client.
	tx := &c.txBuf
	*tx = txState{}
	var b strings.Builder
	b.Grow(len("MAIL FROM:<> SIZE=1234567890 BODY=BINARYMIME SMTPUTF8") + len(from.wire))
	b.WriteString("MAIL FROM:<")
	b.WriteString(from.wire)
	b.WriteString(">")

	if o.Size < 0 {
		return "", nil, optionsErr("negative MailOptions.Size %d", o.Size)
	}
	if max, ok := c.ext.MaxSize(); ok && o.Size > 0 {
		if max > 0 && o.Size > max {
			return "", nil, fmt.Errorf("smtpsecure: %s: %w (%d octets, limit %d); nothing was sent", c.host, ErrMessageTooLarge, o.Size, max)
		}
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(o.Size, 10))
	}

	switch o.Body {
	case BodyAuto:
		if c.ext.Has("8BITMIME") {
			b.WriteString(" BODY=8BITMIME")
		} else {
			tx.reject8 = true
		}
	case Body7Bit:
		tx.reject8 = true
		if c.ext.Has("8BITMIME") {
			b.WriteString(" BODY=7BIT")
		}
	case Body8BitMIME:
		if err := c.need("8BITMIME", "MailOptions.Body asks for"); err != nil {
			return "", nil, err
		}
		b.WriteString(" BODY=8BITMIME")
	case BodyBinaryMIME:
		if err := c.need("BINARYMIME", "MailOptions.Body asks for"); err != nil {
			return "", nil, err
		}
		if err := c.need("CHUNKING", "BODY=BINARYMIME needs for BDAT"); err != nil {
			return "", nil, err
		}
		tx.binary = true
		b.WriteString(" BODY=BINARYMIME")
	default:
		return "", nil, optionsErr("unknown MailOptions.Body %q", string(o.Body))
	}

	if needUTF8 || o.SMTPUTF8 {
		why := "MailOptions.SMTPUTF8 asks for"
		if needUTF8 {
			why = "an envelope address with a non-ASCII local part needs"
		}
		if err := c.need("SMTPUTF8", why); err != nil {
			return "", nil, err
		}
		tx.smtputf8 = true
		b.WriteString(" SMTPUTF8")
	}

	if o.RequireTLS {
		if !c.Verified() {
			return "", nil, &ExtensionError{Host: c.host, Extension: "REQUIRETLS", Why: "MailOptions.RequireTLS asks for, over verified TLS only (this session is not)"}
		}
		if err := c.need("REQUIRETLS", "MailOptions.RequireTLS asks for"); err != nil {
			return "", nil, err
		}
		b.WriteString(" REQUIRETLS")
	}

	switch o.Return {
	case ReturnDefault:
	case ReturnFull, ReturnHeaders:
		if err := c.need("DSN", "MailOptions.Return asks for"); err != nil {
			return "", nil, err
		}
		b.WriteString(" RET=")
		b.WriteString(string(o.Return))
	default:
		return "", nil, optionsErr("unknown MailOptions.Return %q", string(o.Return))
	}
	if o.EnvelopeID != "" {
		if len(o.EnvelopeID) > 100 || !printableASCII(o.EnvelopeID) {
			return "", nil, optionsErr("MailOptions.EnvelopeID must be 1 to 100 printable ASCII characters")
		}
		if err := c.need("DSN", "MailOptions.EnvelopeID asks for"); err != nil {
			return "", nil, err
		}
		b.WriteString(" ENVID=")
		b.WriteString(wire.XText(o.EnvelopeID))
	}
	return b.String(), tx, nil
}

// rcptCommand builds RCPT TO for one recipient of transaction tx.
func (c *Client) rcptCommand(to envAddr, o *RcptOptions, tx *txState) (string, error) {
	if o == nil {
		o = &RcptOptions{}
	}
	if to.utf8 && !tx.smtputf8 {
		return "", &AddressError{Address: to.wire, Err: errors.New("a non-ASCII local part needs SMTPUTF8, which this transaction did not declare (set MailOptions.SMTPUTF8)")}
	}
	var b strings.Builder
	b.Grow(len("RCPT TO:<>") + len(to.wire))
	b.WriteString("RCPT TO:<")
	b.WriteString(to.wire)
	b.WriteString(">")
	notify, err := o.Notify.param()
	if err != nil {
		return "", err
	}
	if notify != "" {
		if err := c.need("DSN", "RcptOptions.Notify asks for"); err != nil {
			return "", err
		}
		b.WriteString(" NOTIFY=")
		b.WriteString(notify)
	}
	if o.OriginalRecipient != "" {
		if err := c.need("DSN", "RcptOptions.OriginalRecipient asks for"); err != nil {
			return "", err
		}
		if err := wire.CheckArg(o.OriginalRecipient); err != nil {
			return "", &AddressError{Address: o.OriginalRecipient, Err: err}
		}
		if printableASCII(o.OriginalRecipient) {
			b.WriteString(" ORCPT=rfc822;")
			b.WriteString(wire.XText(o.OriginalRecipient))
		} else {
			if !tx.smtputf8 {
				return "", &AddressError{Address: o.OriginalRecipient, Err: errors.New("a non-ASCII original recipient needs SMTPUTF8")}
			}
			b.WriteString(" ORCPT=utf-8;")
			b.WriteString(wire.UTF8AddrXText(o.OriginalRecipient))
		}
	}
	return b.String(), nil
}

func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validate is the part of Envelope checking that needs no server.
func (env *Envelope) validate() error {
	var buf [8]envAddr
	_, _, _, err := env.parse(buf[:0])
	return err
}

func (env *Envelope) rcptOptions(to string) RcptOptions {
	ro := RcptOptions{Notify: env.Notify}
	if o, ok := env.OriginalRecipients[to]; ok {
		ro.OriginalRecipient = o
	}
	return ro
}
