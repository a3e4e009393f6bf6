package smtpsecure

import (
	"bytes"
	"io"
)

// messageSize returns the size to declare with SIZE (RFC 1870) for msg, or
// 0 to declare none. SIZE must never be less than what is sent, so a size
// is given only for readers that can be measured without being consumed:
// *bytes.Buffer, and io.ReaderAt implementations that tell their size and
// position (*bytes.Reader, *strings.Reader, *io.SectionReader). The count
// is the content as it goes on the wire after LF→CRLF normalisation and
// the final CRLF, without dot-stuffing (RFC 1870 §3); BINARYMIME content is
// sent as it is.
func (c *Client) messageSize(msg io.Reader, binary bool) int64 {
	var ra io.ReaderAt
	var off, n int64
	switch m := msg.(type) {
	case *bytes.Buffer:
		b := m.Bytes()
		if binary {
			return int64(len(b))
		}
		var sc sizeCounter
		sc.add(b)
		return sc.total()
	case interface {
		io.ReaderAt
		Len() int
		Size() int64
	}:
		n = int64(m.Len())
		off, ra = m.Size()-n, m
	case interface {
		io.ReaderAt
		io.Seeker
		Size() int64
	}:
		pos, err := m.Seek(0, io.SeekCurrent)
		if err != nil || pos > m.Size() {
			return 0
		}
		off, n, ra = pos, m.Size()-pos, m
	default:
		return 0
	}
	if binary || n == 0 {
		return n
	}
	if c.sbuf == nil {
		c.sbuf = make([]byte, 16<<10)
	}
	var sc sizeCounter
	for done := int64(0); done < n; {
		k, err := ra.ReadAt(c.sbuf[:min(int64(len(c.sbuf)), n-done)], off+done)
		sc.add(c.sbuf[:k])
		done += int64(k)
		if err != nil && done < n {
			return 0 // cannot be measured: declare nothing
		}
	}
	return sc.total()
}

// sizeCounter counts the octets wire.DataWriter produces for content,
// without dot-stuffing: every CR, LF or CRLF becomes CRLF, and content
// that does not end with a line break gets one.
type sizeCounter struct {
	n       int64
	partial bool // the last line has not ended
	skipLF  bool // the last octet was a CR, so an LF now belongs to it
}

func (s *sizeCounter) add(p []byte) {
	for len(p) > 0 {
		if s.skipLF {
			s.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.n += int64(len(p))
			s.partial = true
			return
		}
		s.n += int64(i) + 2
		s.partial = false
		s.skipLF = p[i] == '\r'
		p = p[i+1:]
	}
}

// total is the size once the content has ended.
func (s *sizeCounter) total() int64 {
	if s.partial {
		return s.n + 2
	}
	return s.n
}
