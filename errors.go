package smtpsecure

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// Sentinel errors. Every error this package returns wraps at least one of
// them, so errors.Is answers the coarse question; errors.As on the types below
// gives the details.
var (
	// ErrDowngrade is matched by every *DowngradeError: a secure, verified
	// connection could not be had and nothing was sent in its place.
	ErrDowngrade = errors.New("secure connection could not be established")

	// ErrExtensionMissing is matched by every *ExtensionError: the message
	// or the caller's options need an SMTP extension the server lacks.
	ErrExtensionMissing = errors.New("server lacks a required SMTP extension")

	// ErrProtocol is matched by every *ProtocolError: the server broke the
	// SMTP protocol (malformed or oversized reply, unexpected reply code,
	// unsolicited data).
	ErrProtocol = errors.New("SMTP protocol violation")

	// ErrReplyTooLong, ErrReplyTooManyLines and ErrMalformedReply name the
	// protocol violation found while reading a reply. They are reached through
	// *ProtocolError.
	ErrReplyTooLong      = wire.ErrLineTooLong
	ErrReplyTooManyLines = wire.ErrTooManyLines
	ErrMalformedReply    = wire.ErrMalformedReply

	// ErrTimeout is matched by a *ConnError whose cause is an expired
	// deadline (the Dialer's timeouts or the context's deadline).
	ErrTimeout = errors.New("timed out")

	// ErrAuthFailed is matched by an *AuthError when the server rejected the
	// credentials or the exchange.
	ErrAuthFailed = errors.New("authentication failed")

	// ErrAuthUnavailable is matched by an *AuthError when the server offers no
	// AUTH or no mechanism the credentials can use.
	ErrAuthUnavailable = errors.New("no usable authentication mechanism")

	// ErrInsecureAuth is matched by an *AuthError when credentials were not
	// sent because the connection is not TLS with a verified certificate
	// (see Dialer.InsecureAuth).
	ErrInsecureAuth = errors.New("refused to send credentials over a connection that is not verified TLS")

	// ErrInvalidAddress is matched by an *AddressError: an envelope address
	// was refused before anything was sent.
	ErrInvalidAddress = errors.New("invalid envelope address")

	// ErrDeliveryUncertain is matched by an *UncertainDeliveryError: the
	// message was sent in full but the connection failed before the server's
	// final answer, so it may or may not have been delivered.
	ErrDeliveryUncertain = errors.New("message may or may not have been delivered")

	// ErrRecipientsRejected is matched by a *RecipientsError: the message
	// was sent to nobody because the server refused its recipients.
	ErrRecipientsRejected = errors.New("recipients rejected")

	// ErrMessageTooLarge is returned, wrapped with the host and the limit,
	// when the declared message size exceeds the server's SIZE limit. Nothing
	// was sent.
	ErrMessageTooLarge = errors.New("message larger than the server accepts")

	// ErrClientClosed is matched by the error of every call on a Client
	// after Close or Quit, or after an error ended the session; in the
	// latter case the error also matches the error that ended it (see
	// Client.Err).
	ErrClientClosed = errors.New("SMTP session is closed")

	// ErrIdleClosed is matched by the *ConnError of a call on a session
	// that the server closed (or announced closing with a 421) while the
	// session was idle. It is found before anything is written, so the
	// message of that call was not sent and may be sent on a new session.
	ErrIdleClosed = errors.New("server closed the session while it was idle; nothing was sent, a new session may be tried")

	// ErrRefused is matched by every *SMTPError: the server refused a
	// command with a 4xx or 5xx reply.
	ErrRefused = errors.New("server refused the command")

	// ErrMessageRead is matched by a *MessageError: the caller's message
	// reader failed while the message was being sent, and nothing was
	// delivered.
	ErrMessageRead = errors.New("reading the message failed")

	// ErrSign is matched by a *SignError: a message could not be signed
	// (Deliverer.Signer, SignMessage), and nothing was sent.
	ErrSign = errors.New("signing the message failed")

	// ErrInvalidOptions is matched by errors about the caller's
	// configuration or options (a Dialer field, an Envelope, MailOptions),
	// found before anything is sent.
	ErrInvalidOptions = errors.New("invalid options")

	// ErrSequence is matched by errors about calls made in the wrong order
	// (RCPT before MAIL, DATA without an accepted recipient, a second MAIL
	// while a transaction is open). Nothing is sent.
	ErrSequence = errors.New("out of sequence")
)

// optionsErr and sequenceErr format errors that match ErrInvalidOptions
// and ErrSequence.
func optionsErr(format string, a ...any) error {
	return fmt.Errorf("smtpsecure: %w: "+format, append([]any{ErrInvalidOptions}, a...)...)
}

func sequenceErr(format string, a ...any) error {
	return fmt.Errorf("smtpsecure: %w: "+format, append([]any{ErrSequence}, a...)...)
}

// ExtensionError reports that the message or the options need an SMTP
// extension the server did not offer after TLS. Nothing of the message was
// delivered: either nothing was sent, or (for 8-bit data found while
// streaming to a server without 8BITMIME) the connection was closed before
// the end of the data.
type ExtensionError struct {
	// Host is the server, as the caller named it.
	Host string
	// Extension is the EHLO keyword that was needed ("8BITMIME",
	// "SMTPUTF8", "REQUIRETLS", "DSN", "BINARYMIME", "CHUNKING").
	Extension string
	// Why says what needed it.
	Why string
}

// Error names the server, the extension and what needed it.
func (e *ExtensionError) Error() string {
	return fmt.Sprintf("smtpsecure: %s does not offer %s, which %s; nothing was delivered", e.Host, e.Extension, e.Why)
}

// Unwrap returns ErrExtensionMissing.
func (e *ExtensionError) Unwrap() error { return ErrExtensionMissing }

// EnhancedCode returns the status a mail system would bounce with: 5.6.3 for
// 8BITMIME and BINARYMIME, 5.6.7 for SMTPUTF8, 5.7.30 for REQUIRETLS, 5.5.4
// otherwise.
func (e *ExtensionError) EnhancedCode() EnhancedCode {
	switch e.Extension {
	case "8BITMIME", "BINARYMIME":
		return CodeConversionRequired
	case "SMTPUTF8":
		return CodeNonASCIIAddresses
	case "REQUIRETLS":
		return CodeRequireTLSUnsupported
	}
	return EnhancedCode{5, 5, 4}
}

// ProtocolError reports a server that broke the SMTP protocol. The session
// is closed.
type ProtocolError struct {
	// Host is the server, as the caller named it.
	Host string
	// Op says what the client was doing ("reading the reply to EHLO").
	Op string
	// Err is the violation, one of ErrMalformedReply, ErrReplyTooLong,
	// ErrReplyTooManyLines, or a description.
	Err error
}

// Error names the host, the operation and the violation.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: protocol violation while %s: %s", e.Host, e.Op, nested(e.Err, e.Host))
}

// Unwrap returns ErrProtocol and the violation.
func (e *ProtocolError) Unwrap() []error { return []error{ErrProtocol, e.Err} }

// ConnError reports a network failure: the connection could not be made,
// was closed or reset, or a deadline passed; the session is closed. It also
// reports a call whose context had already ended when it began: then
// nothing was sent and a session that was usable still is (see Client.Err).
// Either way errors.Is reaches the context's error when the context ended.
type ConnError struct {
	// Host is the server, as the caller named it.
	Host string
	// Op says what the client was doing ("dial", "reading the reply to MAIL").
	Op string
	// Err is the cause (a *net.OpError, io.ErrUnexpectedEOF,
	// os.ErrDeadlineExceeded, or the context's error).
	Err error

	hint       string // what the caller can do, after a "; "
	notStarted bool   // the context had ended before the call began
}

// Error names the host, the operation and the cause.
func (e *ConnError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: %s: %s%s", e.Host, e.Op, nested(e.Err, e.Host), e.hint)
}

// Unwrap returns the cause, and ErrTimeout when a deadline expired.
func (e *ConnError) Unwrap() []error {
	if e.Timeout() {
		return []error{ErrTimeout, e.Err}
	}
	return []error{e.Err}
}

// Timeout reports whether a deadline expired (not a cancellation).
func (e *ConnError) Timeout() bool {
	if errors.Is(e.Err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// AuthError reports that authentication did not happen.
type AuthError struct {
	// Host is the server, as the caller named it.
	Host string
	// Mechanism is the SASL mechanism tried, "" if none was.
	Mechanism string
	// Err is the cause: the server's *SMTPError (535 5.7.8, say), the
	// mechanism's error, or one of ErrInsecureAuth and ErrAuthUnavailable.
	Err error
}

// Error names the host, the mechanism and the cause.
func (e *AuthError) Error() string {
	var se *SMTPError
	switch {
	case errors.As(e.Err, &se):
		return fmt.Sprintf("smtpsecure: %s refused authentication with %s: %s", e.Host, e.Mechanism, nested(e.Err, e.Host))
	case e.Mechanism != "":
		return fmt.Sprintf("smtpsecure: %s: authentication with %s: %s", e.Host, e.Mechanism, nested(e.Err, e.Host))
	}
	return fmt.Sprintf("smtpsecure: %s: authentication: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns the cause, and ErrAuthFailed when the cause is not
// already ErrInsecureAuth or ErrAuthUnavailable.
func (e *AuthError) Unwrap() []error {
	if errors.Is(e.Err, ErrInsecureAuth) || errors.Is(e.Err, ErrAuthUnavailable) {
		return []error{e.Err}
	}
	return []error{ErrAuthFailed, e.Err}
}

// AddressError reports an envelope address refused before anything was
// sent: it contains CR, LF, NUL or other control characters, or is not a
// valid address.
type AddressError struct {
	// Address is the address as given.
	Address string
	// Err says what is wrong with it.
	Err error
}

// Error quotes the address and says what is wrong with it.
func (e *AddressError) Error() string {
	return fmt.Sprintf("smtpsecure: envelope address %q refused: %v", e.Address, e.Err)
}

// Unwrap returns ErrInvalidAddress and the cause.
func (e *AddressError) Unwrap() []error { return []error{ErrInvalidAddress, e.Err} }

// UncertainDeliveryError reports a connection that failed after the whole
// message was sent and before the server's final reply. The server may have
// accepted the message: resending risks a duplicate, not resending risks a
// loss. Callers that must not lose mail resend; callers that must not
// duplicate it check the recipient side first.
type UncertainDeliveryError struct {
	// Host is the server, as the caller named it.
	Host string
	// Recipients lists the recipients the server had accepted: only they
	// may have received the message. Nil when the error comes from a Data
	// writer, whose recipients the caller knows.
	Recipients []string
	// Err is the network error that ended the session.
	Err error
}

// Error says that delivery is uncertain and why.
func (e *UncertainDeliveryError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: connection failed after the end of the message and before the server's reply, so it may or may not have been delivered: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns ErrDeliveryUncertain and the cause.
func (e *UncertainDeliveryError) Unwrap() []error { return []error{ErrDeliveryUncertain, e.Err} }

// RecipientError is the server's refusal of one recipient.
type RecipientError struct {
	// Recipient is the address as the caller gave it.
	Recipient string
	// Err is the server's reply to RCPT TO.
	Err *SMTPError
}

// Error names the recipient and the server's reply.
func (e *RecipientError) Error() string {
	return fmt.Sprintf("recipient %s: %d %s", e.Recipient, e.Err.Code, e.Err.Message())
}

// Unwrap returns the server's reply.
func (e *RecipientError) Unwrap() error { return e.Err }

// RecipientsError reports that the message was delivered to nobody
// because of the recipients the server refused: all of them, or, with
// Envelope.AllOrNothing (and in the net/smtp drop-in SendMail), at least
// one. A message delivered to some recipients is no error: Send's result
// lists the refused ones.
type RecipientsError struct {
	// Host is the server, as the caller named it.
	Host string
	// Rejected lists the refused recipients in the order given.
	Rejected []*RecipientError
}

// Error lists the refused recipients and says that nobody got the message.
func (e *RecipientsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtpsecure: %s refused %d recipient(s), so the message was sent to nobody", e.Host, len(e.Rejected))
	for i, r := range e.Rejected {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejected)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap returns ErrRecipientsRejected and each recipient's error.
func (e *RecipientsError) Unwrap() []error {
	errs := make([]error, 0, len(e.Rejected)+1)
	errs = append(errs, ErrRecipientsRejected)
	for _, r := range e.Rejected {
		errs = append(errs, r)
	}
	return errs
}

// Temporary reports whether every refusal was transient (4xx), so the
// refused recipients may be retried later.
func (e *RecipientsError) Temporary() bool {
	for _, r := range e.Rejected {
		if !r.Err.Temporary() {
			return false
		}
	}
	return len(e.Rejected) > 0
}

// MessageError reports that the caller's message reader failed while the
// message was being sent. The session was closed before the end of the
// data, so the server discards what it got: nothing was delivered.
type MessageError struct {
	// Host is the server, as the caller named it.
	Host string
	// Err is the reader's error.
	Err error
}

// Error says that reading the message failed and that nothing was
// delivered.
func (e *MessageError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: reading the message failed, so the session was closed before the end of the data and nothing was delivered: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns ErrMessageRead and the reader's error.
func (e *MessageError) Unwrap() []error { return []error{ErrMessageRead, e.Err} }

// closedError is what every call on a Client returns after an error ended
// the session: it matches ErrClientClosed and the error that ended it,
// and says that the session closed earlier rather than dressing that
// error up as this call's.
type closedError struct{ ended error }

// Error says that the session closed earlier, and why.
func (e *closedError) Error() string {
	return "smtpsecure: session closed earlier: " + strings.TrimPrefix(e.ended.Error(), "smtpsecure: ")
}

// Unwrap returns ErrClientClosed and the error that ended the session. An
// *UncertainDeliveryError is given as its network cause: the uncertainty is
// about the earlier message, and a later call's message was not sent at
// all.
func (e *closedError) Unwrap() []error {
	var ue *UncertainDeliveryError
	if errors.As(e.ended, &ue) {
		return []error{ErrClientClosed, ue.Err}
	}
	return []error{ErrClientClosed, e.ended}
}

// closedErr returns the error of a call on a session that has ended.
func (c *Client) closedErr() error {
	if c.err == ErrClientClosed {
		return fmt.Errorf("smtpsecure: %s: %w (Close or Quit was called)", c.host, ErrClientClosed)
	}
	return &closedError{ended: c.err}
}

// nested returns the message of err, the cause inside an error of this
// package about host, without what the outer message already says: the
// "smtpsecure: " prefix and the host of an error of this package, and,
// for a server's reply, everything but the reply itself.
func nested(err error, host string) string {
	msg := err.Error()
	var se *SMTPError
	if errors.As(err, &se) {
		msg = strings.Replace(msg, se.Error(), se.reply(), 1)
	}
	if rest, ok := strings.CutPrefix(msg, "smtpsecure: "); ok {
		msg = rest
		if rest, ok := strings.CutPrefix(msg, host+": "); ok {
			msg = rest
		}
	}
	return msg
}
