package smtpsecure

import (
	"bytes"
	"io"
	"sync"
)

// sizeBufs holds the buffers messageSize reads messages into, shared by
// all Clients: a session that sends one message should not carry one.
var sizeBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// messageSize returns the size to declare with SIZE (RFC 1870) for msg, or
// 0 to declare none. SIZE must never be less than what is sent, so a size
// is given only for readers that can be measured without being consumed:
// *bytes.Buffer, and io.ReaderAt implementations that tell their size and
// position (*bytes.Reader, *strings.Reader, *io.SectionReader). The count
// is the content as it goes on the wire after LF→CRLF normalisation and
// the final CRLF, without dot-stuffing (RFC 1870 §3); BINARYMIME content is
// sent as it is.
func messageSize(msg io.Reader, binary bool) int64 {
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
	bp := sizeBufs.Get().(*[]byte)
	defer sizeBufs.Put(bp)
	buf := *bp
	var sc sizeCounter
	for done := int64(0); done < n; {
		k, err := ra.ReadAt(buf[:min(int64(len(buf)), n-done)], off+done)
		sc.add(buf[:k])
		done += int64(k)
		if err != nil && done < n {
			return 0 // cannot be measured: declare nothing
		}
	}
	return sc.total()
}

// sizeCounter counts the octets wire.DataWriter produces for content,
// without dot-stuffing: every CR, LF or CRLF becomes CRLF, and content
// that does not end with a line break gets one. A CRLF stays two octets
// and a bare CR or LF becomes two, so the output is the input plus one
// octet for each CR and each LF, less two for each CRLF: three counts that
// run at memory speed.
type sizeCounter struct {
	n       int64
	partial bool // the content so far does not end with a line break
	lastCR  bool // the last octet was a CR
}

var (
	lfByte = []byte{'\n'}
	crByte = []byte{'\r'}
	crlf   = []byte("\r\n")
)

func (s *sizeCounter) add(p []byte) {
	if len(p) == 0 {
		return
	}
	n := int64(len(p)) + int64(bytes.Count(p, lfByte)) + int64(bytes.Count(p, crByte)) - 2*int64(bytes.Count(p, crlf))
	if s.lastCR && p[0] == '\n' {
		n -= 2 // a CRLF across two pieces
	}
	s.n += n
	last := p[len(p)-1]
	s.lastCR = last == '\r'
	s.partial = last != '\r' && last != '\n'
}

// total is the size once the content has ended.
func (s *sizeCounter) total() int64 {
	if s.partial {
		return s.n + 2
	}
	return s.n
}
