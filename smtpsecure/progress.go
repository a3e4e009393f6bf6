package main

import (
	"fmt"
	"io"
	"sync"
)

// progress shows what check is doing on one line of a terminal, rewritten
// as it goes and cleared at the end. When standard error is not a
// terminal it prints nothing, so that logs and pipes stay clean.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	on     bool
	shown  bool
	closed bool
}

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, on: terminal} }

// say replaces the line with a new status.
func (p *progress) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.closed {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s…", fmt.Sprintf(format, args...))
	p.shown = true
}

// done clears the line; later calls to say print nothing.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown && !p.closed {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.closed = true
}
