package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Err8Bit is returned by a [DataWriter] with Reject8Bit set when the content
// has an octet with the high bit set.
var Err8Bit = errors.New("message has 8-bit data")

// ErrWriterClosed is returned by Write on a [DataWriter] or [ChunkWriter]
// after Close.
var ErrWriterClosed = errors.New("write after Close")

// DataOptions says how a [DataWriter] encodes.
type DataOptions struct {
	// DotStuff selects the DATA encoding (RFC 5321 §4.5.2): a line that
	// starts with "." gets another "." in front, and Close writes the end
	// marker ".\r\n". false selects the BDAT encoding (RFC 3030), where
	// line endings are normalised and nothing else changes.
	DotStuff bool
	// Reject8Bit makes Write fail with Err8Bit before it passes on the
	// first octet >= 0x80, for servers that did not offer 8BITMIME.
	Reject8Bit bool
}

// dataBufSize is the size of the writes a DataWriter makes to its writer.
const dataBufSize = 16 << 10

// DataWriter encodes message content for the DATA or BDAT command. It streams:
// its memory use does not depend on the message size.
//
// Every bare CR and every bare LF becomes CRLF, and CRLF stays one CRLF
// ("\r\r\n" becomes "\r\n\r\n"), also when the CR and the LF arrive in
// different Writes. So the encoded stream has no bare CR or LF, and with
// DotStuff no line consisting of a single "." before the end marker: no
// server, however lenient its idea of a line ending, can find the end of the
// data anywhere but at the end (no SMTP smuggling). The same input gives the
// same content with DATA and with BDAT.
//
// Output goes to the underlying writer in writes of up to 16 KiB; Close (or
// Flush) writes what is left. A DataWriter is not safe for concurrent use.
type DataWriter struct {
	w         io.Writer
	opts      DataOptions
	buf       []byte // encoded output not yet written to w
	in        int64  // input octets accepted so far
	lineStart bool   // the next input octet starts a line
	skipLF    bool   // the last input octet was a CR, so an LF now is part of its CRLF
	closed    bool
	err       error // sticky
}

// NewDataWriter returns a DataWriter that writes the encoded content to w.
func NewDataWriter(w io.Writer, opts DataOptions) *DataWriter {
	d := &DataWriter{}
	d.Reset(w, opts)
	return d
}

// Reset discards the state of d and makes it encode a new message to w with
// opts, reusing its buffer.
func (d *DataWriter) Reset(w io.Writer, opts DataOptions) {
	buf := d.buf
	if buf == nil {
		buf = make([]byte, 0, dataBufSize)
	}
	*d = DataWriter{w: w, opts: opts, buf: buf[:0], lineStart: true}
}

var (
	crlf      = []byte("\r\n")
	dot       = []byte(".")
	endMarker = []byte(".\r\n")
)

// Write encodes p. It returns len(p) unless an error occurred: an error
// of the underlying writer, or [Err8Bit] (wrapped, with the octet's offset),
// in which case n counts the octets of p that were accepted. Errors are
// sticky: every later Write and Close returns the same error, and Close
// then writes nothing, so a failed message is never ended as if complete.
// After an error in the middle of DATA the caller must drop the connection.
func (d *DataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, ErrWriterClosed
	}
	i := 0
	for i < len(p) {
		if d.skipLF {
			d.skipLF = false
			if p[i] == '\n' {
				i++
				continue
			}
		}
		if d.lineStart {
			d.lineStart = false
			if p[i] == '.' && d.opts.DotStuff {
				d.out(dot)
			}
		}
		// The run up to the next CR or LF goes out unchanged.
		run := p[i:]
		if j := bytes.IndexByte(run, '\n'); j >= 0 {
			run = run[:j]
		}
		if j := bytes.IndexByte(run, '\r'); j >= 0 {
			run = run[:j]
		}
		if d.opts.Reject8Bit {
			if j := index8Bit(run); j >= 0 {
				d.out(run[:j])
				if d.err == nil {
					d.err = fmt.Errorf("%w: octet 0x%02X at offset %d, and the server did not offer 8BITMIME; encode the message as 7-bit (quoted-printable or base64) or send through a server that offers 8BITMIME", Err8Bit, run[j], d.in+int64(i+j))
				}
				d.in += int64(i + j)
				return i + j, d.err
			}
		}
		d.out(run)
		i += len(run)
		if i == len(p) {
			break
		}
		// p[i] is a CR or an LF: either way it ends the line with CRLF.
		d.skipLF = p[i] == '\r'
		d.out(crlf)
		d.lineStart = true
		i++
		if d.err != nil {
			break
		}
	}
	if d.err != nil {
		d.in += int64(i)
		return i, d.err
	}
	d.in += int64(len(p))
	return len(p), nil
}

// index8Bit returns the index of the first octet >= 0x80 in b, or -1.
func index8Bit(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return i
		}
	}
	return -1
}

// out appends b to the output, writing full buffers to d.w.
func (d *DataWriter) out(b []byte) {
	for len(b) > 0 && d.err == nil {
		if len(d.buf) == 0 && len(b) >= cap(d.buf) {
			// A long run without line breaks goes out without a copy.
			d.write(b)
			return
		}
		n := copy(d.buf[len(d.buf):cap(d.buf)], b)
		d.buf = d.buf[:len(d.buf)+n]
		b = b[n:]
		if len(d.buf) == cap(d.buf) {
			d.write(d.buf)
			d.buf = d.buf[:0]
		}
	}
}

func (d *DataWriter) write(b []byte) {
	if _, err := d.w.Write(b); err != nil {
		d.err = fmt.Errorf("writing message data: %w", err)
	}
}

// Flush writes the encoded content held in d's buffer to the underlying
// writer. The encoding state is kept, so Flush may be called at any point.
func (d *DataWriter) Flush() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) > 0 {
		d.write(d.buf)
		d.buf = d.buf[:0]
	}
	return d.err
}

// Close ends the content: it adds CRLF if the content does not end with a
// line break (also for BDAT, so that DATA and BDAT deliver the same octets),
// then with DotStuff writes the end marker ".\r\n", and writes out the
// buffer. Empty content stays empty: Close then writes only the end marker
// (or nothing for BDAT). Close does not close the underlying writer. After
// an earlier error it writes nothing and returns that error; calling it
// again returns the result of the first call.
func (d *DataWriter) Close() error { return d.CloseWith(nil) }

// CloseWith is Close, and then writes trailer, unencoded, after the end
// marker and in the same final write: the command a client pipelines after
// the message, such as QUIT (RFC 2920 §3.1). It is for the DATA encoding
// (DotStuff) only, where the end marker separates the two; with BDAT the
// trailer would become message content, so it is an error.
func (d *DataWriter) CloseWith(trailer []byte) error {
	if d.closed {
		return d.err
	}
	d.closed = true
	if d.err != nil {
		return d.err
	}
	if len(trailer) > 0 && !d.opts.DotStuff {
		d.err = errors.New("a trailer after the data needs the DATA encoding (DotStuff)")
		return d.err
	}
	if !d.lineStart {
		d.out(crlf)
	}
	if d.opts.DotStuff {
		d.out(endMarker)
	}
	d.out(trailer)
	return d.Flush()
}

// DefaultChunkSize is the chunk size a [ChunkWriter] uses when given a size
// below 1.
const DefaultChunkSize = 256 << 10

// A ChunkSender sends the chunks of a [ChunkWriter]: it writes
// "BDAT <len(chunk)>" (with LAST when last is set) and the chunk, and reads
// the reply. It must not keep chunk after it returns: the memory is reused.
type ChunkSender interface {
	SendChunk(chunk []byte, last bool) error
}

// ChunkFunc is a function used as a [ChunkSender].
type ChunkFunc func(chunk []byte, last bool) error

// SendChunk calls f.
func (f ChunkFunc) SendChunk(chunk []byte, last bool) error { return f(chunk, last) }

// ChunkWriter cuts a stream into chunks for BDAT (RFC 3030 §2): it collects
// bytes and hands each full chunk to a [ChunkSender]. It is not safe for
// concurrent use.
type ChunkWriter struct {
	size   int
	send   ChunkSender
	buf    []byte
	closed bool
	err    error
}

// NewChunkWriter returns a ChunkWriter that hands send chunks of size bytes
// (DefaultChunkSize if size < 1).
func NewChunkWriter(size int, send ChunkSender) *ChunkWriter {
	if size < 1 {
		size = DefaultChunkSize
	}
	return &ChunkWriter{size: size, send: send}
}

// Reset makes c start a new message with send, keeping its size and buffer.
// A sender that is a pointer (not a closure made for the call) makes a
// reset free of allocations.
func (c *ChunkWriter) Reset(send ChunkSender) {
	*c = ChunkWriter{size: c.size, send: send, buf: c.buf[:0]}
}

// Write collects p and calls SendChunk(chunk, false) each time size bytes
// are collected. An error from send is returned, with n counting the bytes up to
// the end of the chunk that failed, and from then on by every Write
// and by Close, which then sends nothing: after a failed BDAT the caller must
// not send more BDAT for that transaction (RFC 3030 §2).
func (c *ChunkWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, ErrWriterClosed
	}
	n := 0
	for len(p) > 0 {
		if len(c.buf) == 0 && len(p) >= c.size {
			// A whole chunk is at hand: send it without copying.
			err := c.send.SendChunk(p[:c.size], false)
			p, n = p[c.size:], n+c.size
			if err != nil {
				c.err = err
				return n, err
			}
			continue
		}
		// The buffer grows as needed, up to size: a short message never
		// costs a whole chunk of memory.
		k := min(len(p), c.size-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(c.buf) == c.size {
			err := c.send.SendChunk(c.buf, false)
			c.buf = c.buf[:0]
			if err != nil {
				c.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// Close sends the bytes collected since the last chunk with last set. There
// may be none: SendChunk is then called with an empty chunk, for
// "BDAT 0 LAST".
// After an error it sends nothing and returns the error; calling Close again
// returns the result of the first call.
func (c *ChunkWriter) Close() error {
	if c.closed {
		return c.err
	}
	c.closed = true
	if c.err != nil {
		return c.err
	}
	c.err = c.send.SendChunk(c.buf, true)
	c.buf = c.buf[:0]
	return c.err
}
