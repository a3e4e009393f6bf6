package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Limits on what [Reader.ReadReply] accepts, so that a hostile server cannot
// make the client allocate without bound.
const (
	// MaxLineLength is the longest reply line in octets, including CRLF.
	// RFC 5321 §4.5.3.1.5 sets 512; real servers exceed that a little.
	MaxLineLength = 4096
	// MaxReplyLines is the most lines one multi-line reply may have.
	MaxReplyLines = 1000
	// MaxReplyBytes is the most octets one whole reply may have.
	MaxReplyBytes = 64 << 10
)

// Errors of [Reader.ReadReply], always wrapped in a [*ReplyError].
var (
	ErrLineTooLong    = errors.New("smtp reply line too long")
	ErrTooManyLines   = errors.New("smtp reply has too many lines") // also when MaxReplyBytes is exceeded
	ErrMalformedReply = errors.New("malformed smtp reply")
)

// ReplyError says which reply line broke which rule. Errors.Is reaches the
// sentinel in Err ([ErrLineTooLong], [ErrTooManyLines] or
// [ErrMalformedReply]).
type ReplyError struct {
	// Line is the offending line, Go-quoted so that it is printable, and
	// cut to about 100 bytes.
	Line string
	// Err is the rule that was broken.
	Err error
	// Reason adds detail to Err, such as "code 250 follows 354"; it may be
	// empty.
	Reason string
}

func (e *ReplyError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%v (%s) in line %s; the server does not speak SMTP correctly or the connection is not to an SMTP server", e.Err, e.Reason, e.Line)
	}
	return fmt.Sprintf("%v in line %s; the server does not speak SMTP correctly or the connection is not to an SMTP server", e.Err, e.Line)
}

// Unwrap returns Err.
func (e *ReplyError) Unwrap() error { return e.Err }

// quoteLine returns a printable, Go-quoted form of the start of s, at most
// about 100 bytes long, with "..." if s was cut.
func quoteLine[T string | []byte](s T) string {
	const max = 100
	n := min(len(s), max)
	q := strconv.QuoteToASCII(string(s[:n]))
	for len(q) > max {
		// Escapes make the quoted form longer than its input.
		n = min(n-1, n*max/len(q))
		q = strconv.QuoteToASCII(string(s[:n]))
	}
	if n < len(s) {
		q += "..."
	}
	return q
}

// Reply is one SMTP reply (RFC 5321 §4.2): a code and the text of each of its
// lines.
type Reply struct {
	// Code is the three-digit reply code, 200 to 559.
	Code int
	// Lines holds the text of each line after "NNN-", "NNN " or "NNN"
	// (possibly empty), without the line ending. It is the server's text
	// as sent: use Text for messages and logs.
	Lines []string
}

// Text returns the lines joined by "\n", safe to print: control characters
// other than HTAB (including ANSI escapes) become "?" and invalid UTF-8
// becomes U+FFFD. It returns "" for a nil Reply.
func (r *Reply) Text() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeSafe(&b, l)
	}
	return b.String()
}

// writeSafe appends s to b with control characters and invalid UTF-8
// replaced.
func writeSafe(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte('\t')
		case unicode.IsControl(r):
			b.WriteByte('?')
		default:
			b.WriteRune(r) // utf8.RuneError for invalid bytes
		}
	}
}

// String returns the code and the text, for logs: "250 first line\nsecond".
func (r *Reply) String() string {
	if r == nil {
		return "<nil>"
	}
	return strconv.Itoa(r.Code) + " " + r.Text()
}

// EnhancedCode returns the RFC 3463 enhanced status code at the start of the
// first line, such as 5.7.8 in "535 5.7.8 Authentication failed". It returns
// false if there is none, if it is malformed, or if its class differs from
// the first digit of Code: the basic reply code wins. The code is returned as
// sent; apply [EnhancedCode.Normalized] before acting on subject and detail.
//
// Servers put enhanced codes into replies only when they offer
// ENHANCEDSTATUSCODES (RFC 2034); the caller decides whether to trust text
// that merely looks like one.
func (r *Reply) EnhancedCode() (EnhancedCode, bool) {
	if r == nil || len(r.Lines) == 0 {
		return EnhancedCode{}, false
	}
	c, _, ok := ParseEnhancedCode(r.Lines[0])
	if !ok || c.Class != r.Code/100 {
		return EnhancedCode{}, false
	}
	return c, true
}

// Reader reads SMTP replies from a connection. It is not safe for concurrent
// use.
type Reader struct {
	br   *bufio.Reader
	text []byte // the text of the lines of the reply being read
	ends []int  // the end of each line's text in text

	// Replies of one line are handed out from a slab, allocated a few at
	// a time; a slab is never reused, so a Reply stays valid for as long
	// as it is referenced.
	slab []replyOne
	// recent holds the texts of recent one-line replies, which servers
	// repeat ("2.1.0 Ok"), so that a repeated text is not allocated again.
	recent [4]string
	next   int

	// The first backing arrays of text and ends, enough for the replies
	// of a session (an EHLO reply included) without growing them.
	textArr [512]byte
	endsArr [24]int
}

// slabSize is the number of one-line replies allocated at once.
const slabSize = 16

// maxRecent is the longest reply text kept in Reader.recent.
const maxRecent = 64

// NewReader returns a Reader that reads from r through a 4 KiB buffer of its
// own. r should be the connection itself: bytes held in a buffer in front of
// it are not seen by [Reader.Buffered].
func NewReader(r io.Reader) *Reader {
	if _, ok := r.(*bufio.Reader); ok {
		// bufio.NewReaderSize would reuse a large enough *bufio.Reader,
		// and with it lift MaxLineLength to that reader's size.
		r = struct{ io.Reader }{r}
	}
	rd := &Reader{br: bufio.NewReaderSize(r, MaxLineLength)}
	rd.text, rd.ends = rd.textArr[:0], rd.endsArr[:0]
	return rd
}

// Buffered returns the number of bytes that have been read from the
// underlying reader but not yet consumed as part of a reply. Before a TLS
// handshake it must be zero: anything else was sent by someone before the
// server's reply to STARTTLS was complete, and would otherwise be taken as
// coming from inside TLS (RFC 3207 §4.2 and the STARTTLS injection attack).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Poll reads from the underlying reader once if nothing is buffered, and
// returns the number of bytes buffered and the error of that read. With a
// read deadline that has already passed it does not wait: it sees only
// what the underlying reader holds already (a TLS connection may hold
// decrypted records, or a close_notify). The error is not kept: the next
// read tries again.
func (r *Reader) Poll() (int, error) {
	if n := r.br.Buffered(); n > 0 {
		return n, nil
	}
	_, err := r.br.Peek(1)
	return r.br.Buffered(), err
}

// Reset makes r read from rd, typically the TLS connection after STARTTLS.
// Buffered data is discarded.
func (r *Reader) Reset(rd io.Reader) {
	if rd == r.br {
		rd = struct{ io.Reader }{rd}
	}
	r.br.Reset(rd)
}

// replyOne holds a Reply and the backing array of a one-line reply, so that
// the common case costs one allocation less.
type replyOne struct {
	Reply
	one [1]string
}

// replyMany is replyOne for a reply of up to len(lines) lines (an EHLO
// reply).
type replyMany struct {
	Reply
	lines [16]string
}

// ReadReply reads one reply.
//
// Each line must be a three-digit code (first digit 2-5, second 0-5), then
// "-" (more lines follow), " " or nothing (last line), then text, ended by
// CRLF or a bare LF. All lines must carry the same code. A violation is a
// [*ReplyError] wrapping [ErrMalformedReply]; a line longer than
// [MaxLineLength] or a reply beyond [MaxReplyLines] or [MaxReplyBytes] is
// reported as soon as the limit is passed, with [ErrLineTooLong] or
// [ErrTooManyLines]. After such an error the stream is out of step and the
// connection should be closed.
//
// A connection closed before the first byte of a reply gives [io.EOF]; closed
// in the middle of a reply, an error wrapping [io.ErrUnexpectedEOF]. Other
// I/O errors are returned as they are (the caller says what it was
// reading), so errors.Is(err, os.ErrDeadlineExceeded) reports a timeout.
func (r *Reader) ReadReply() (*Reply, error) {
	r.text = r.text[:0]
	r.ends = r.ends[:0]
	code, total := 0, 0
	for {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			switch {
			case err == bufio.ErrBufferFull:
				return nil, &ReplyError{Line: quoteLine(line), Err: ErrLineTooLong}
			case err == io.EOF && len(line) == 0 && len(r.ends) == 0:
				return nil, io.EOF
			case err == io.EOF:
				return nil, fmt.Errorf("smtp reply cut short after %d lines: %w", len(r.ends), io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		total += len(line)
		if total > MaxReplyBytes {
			return nil, &ReplyError{Line: quoteLine(line), Err: ErrTooManyLines, Reason: "reply longer than " + strconv.Itoa(MaxReplyBytes) + " bytes"}
		}
		raw := line
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		c, ok := parseCode(line)
		if !ok {
			return nil, &ReplyError{Line: quoteLine(raw), Err: ErrMalformedReply, Reason: "no valid reply code"}
		}
		if len(r.ends) > 0 && c != code {
			return nil, &ReplyError{Line: quoteLine(raw), Err: ErrMalformedReply, Reason: "code " + strconv.Itoa(c) + " follows " + strconv.Itoa(code)}
		}
		code = c
		more := false
		if len(line) > 3 {
			switch line[3] {
			case '-':
				more = true
			case ' ':
			default:
				return nil, &ReplyError{Line: quoteLine(raw), Err: ErrMalformedReply, Reason: "code not followed by space or hyphen"}
			}
			r.text = append(r.text, line[4:]...)
		}
		r.ends = append(r.ends, len(r.text))
		if !more {
			return r.build(code), nil
		}
		if len(r.ends) >= MaxReplyLines {
			return nil, &ReplyError{Line: quoteLine(raw), Err: ErrTooManyLines, Reason: "more than " + strconv.Itoa(MaxReplyLines) + " lines"}
		}
	}
}

// build makes the Reply from r.text and r.ends with one string for all the
// text.
func (r *Reader) build(code int) *Reply {
	var all string
	var rep *Reply
	var lines []string
	if len(r.ends) == 1 {
		all = r.intern()
		if len(r.slab) == 0 {
			r.slab = make([]replyOne, slabSize)
		}
		ro := &r.slab[0]
		r.slab = r.slab[1:]
		rep, lines = &ro.Reply, ro.one[:]
	} else if all = string(r.text); len(r.ends) <= len(replyMany{}.lines) {
		rm := &replyMany{}
		rep, lines = &rm.Reply, rm.lines[:len(r.ends)]
	} else {
		rep, lines = &Reply{}, make([]string, len(r.ends))
	}
	start := 0
	for i, end := range r.ends {
		lines[i] = all[start:end]
		start = end
	}
	rep.Code, rep.Lines = code, lines
	if cap(r.text) > 2*MaxLineLength {
		r.text = r.textArr[:0] // do not keep the memory of an unusually long reply
	}
	return rep
}

// intern returns r.text as a string, the one of a recent reply when the
// text is the same.
func (r *Reader) intern() string {
	if len(r.text) > maxRecent {
		return string(r.text)
	}
	for _, t := range r.recent {
		if t == string(r.text) { // compared without allocating
			return t
		}
	}
	t := string(r.text)
	r.recent[r.next] = t
	r.next = (r.next + 1) % len(r.recent)
	return t
}

// parseCode returns the reply code at the start of line: three digits, the
// first 2-5 and the second 0-5 (RFC 5321 §4.2).
func parseCode(line []byte) (int, bool) {
	if len(line) < 3 {
		return 0, false
	}
	a, b, c := line[0], line[1], line[2]
	if a < '2' || a > '5' || b < '0' || b > '5' || c < '0' || c > '9' {
		return 0, false
	}
	return int(a-'0')*100 + int(b-'0')*10 + int(c-'0'), true
}
