package wire

import (
	"bufio"
	"bytes"
	"io"
)

// NewDotReader returns a reader of the content of an SMTP DATA command as a
// server sees it (RFC 5321 §4.5.2), for test servers and fuzzing.
//
// It is strict: only the line "." that follows a CRLF (or is the first line)
// and is itself ended by CRLF terminates the data. "\n.\n", "\r\n.\n",
// "\n.\r\n" and "\r.\r" are content, so a test server built on it shows
// exactly what a strict server would store. A leading "." on a line is
// removed (dot-unstuffing); every other byte, including bare CR and bare LF,
// is returned as sent. The final ".\r\n" is consumed but not returned, and
// the bytes after it stay in r for the next command.
//
// Memory use does not depend on the length of the content. If r ends before
// the terminator, Read returns [io.ErrUnexpectedEOF]; other errors from r are
// returned as they are.
func NewDotReader(r *bufio.Reader) io.Reader {
	return &dotReader{r: r, state: dotLineStart}
}

type dotState uint8

const (
	dotLineStart dotState = iota // after CRLF, or at the start of the data
	dotData                      // inside a line
	dotCR                        // inside a line, just after a CR
	dotDot                       // after a "." at the start of a line
	dotDotCR                     // after "." CR at the start of a line
	dotDone                      // the terminator has been read
)

type dotReader struct {
	r     *bufio.Reader
	state dotState
	err   error
}

func (d *dotReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.state == dotDone {
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if d.err != nil {
			break
		}
		if d.state == dotData {
			// Copy the run up to and including the next CR in one go.
			if _, err := d.r.Peek(1); err != nil {
				d.setErr(err)
				continue
			}
			buf, _ := d.r.Peek(min(d.r.Buffered(), len(p)-n))
			if i := bytes.IndexByte(buf, '\r'); i >= 0 {
				buf = buf[:i+1]
				d.state = dotCR
			}
			n += copy(p[n:], buf)
			_, _ = d.r.Discard(len(buf))
			continue
		}
		c, err := d.r.ReadByte()
		if err != nil {
			d.setErr(err)
			continue
		}
		switch d.state {
		case dotLineStart:
			switch c {
			case '.':
				d.state = dotDot
			case '\r':
				p[n] = c
				n++
				d.state = dotCR
			default:
				p[n] = c
				n++
				d.state = dotData
			}
		case dotCR:
			p[n] = c
			n++
			switch c {
			case '\n':
				d.state = dotLineStart
			case '\r':
				d.state = dotCR
			default:
				d.state = dotData
			}
		case dotDot:
			// The leading dot is dropped whatever follows, unless the line
			// turns out to be the terminator.
			switch c {
			case '\r':
				d.state = dotDotCR
			default:
				p[n] = c
				n++
				d.state = dotData
			}
		case dotDotCR:
			if c == '\n' {
				d.state = dotDone
				continue
			}
			// The CR after the dropped dot was content; c is read again
			// as the byte that follows a CR.
			_ = d.r.UnreadByte()
			p[n] = '\r'
			n++
			d.state = dotCR
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, d.err
}

func (d *dotReader) setErr(err error) {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	d.err = err
}
