package wire

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// errOnce returns err from its first Read, then what r returns.
type errOnce struct {
	err error
	r   io.Reader
}

func (e *errOnce) Read(p []byte) (int, error) {
	if e.err != nil {
		err := e.err
		e.err = nil
		return 0, err
	}
	return e.r.Read(p)
}

func TestPoll(t *testing.T) {
	r := NewReader(&errOnce{err: os.ErrDeadlineExceeded, r: strings.NewReader("421 bye\r\n")})
	if n, err := r.Poll(); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Poll = %d, %v", n, err)
	}
	// The error is not kept: the next Poll reads again.
	if n, err := r.Poll(); n != 9 || err != nil {
		t.Fatalf("Poll = %d, %v", n, err)
	}
	rep, err := r.ReadReply()
	if err != nil || rep.Code != 421 {
		t.Fatalf("ReadReply = %v, %v", rep, err)
	}
	if n, err := r.Poll(); n != 0 || err != io.EOF {
		t.Fatalf("Poll at the end = %d, %v", n, err)
	}
}
