// Package mitm is a man-in-the-middle proxy for SMTP tests: it sits between
// a client and an upstream server (usually an smtptest.Server) and does to
// the plaintext part of the session what an active attacker on the network
// can do: strip STARTTLS from the EHLO reply, answer STARTTLS itself, inject
// bytes after the greeting or right after the 220 to STARTTLS (the STARTTLS
// command injection of CVE-2011-0411 in reverse), or reset the connection
// at a chosen moment. It also records what a passive eavesdropper reads:
// every byte the client sent before TLS began.
//
// Until a 220 reply to STARTTLS has been relayed the proxy works line by
// line in both directions; from then on it relays bytes blindly, so the TLS
// handshake runs end to end between the client and the upstream server and
// the proxy cannot read or change what follows.
//
//	p := &mitm.Proxy{Upstream: srv.Addr(), StripSTARTTLS: true}
//	if err := p.Start(); err != nil { t.Fatal(err) }
//	t.Cleanup(func() { p.Close() })
//	// point the client at p.Addr(); it must refuse to continue without TLS,
//	// and p.ClientPlaintext() must hold no credential and no envelope.
//
// The proxy counts one reply per command line to know which reply answers
// STARTTLS and whether DATA was accepted; an upstream that sends replies
// nobody asked for confuses it.
package mitm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxLineLength is the longest line the proxy inspects. Longer client lines
// are relayed in pieces without inspection; longer reply lines are relayed
// unchanged.
const MaxLineLength = 64 << 10

// maxInspect is how much of a client line is kept for inspection: enough
// for STARTTLS, DATA, BDAT and the end-of-data line.
const maxInspect = 1024

// maxReplyBytes bounds a reply held back for rewriting; a longer one is
// relayed unchanged.
const maxReplyBytes = 64 << 10

// DefaultTimeout is the read and write deadline of a Proxy whose Timeout is
// zero.
const DefaultTimeout = 30 * time.Second

// Proxy is a man-in-the-middle SMTP proxy. Set the fields, then call Start;
// do not change them afterwards. The zero value (with Upstream) relays
// faithfully.
type Proxy struct {
	// Upstream is the host:port of the real server.
	Upstream string
	// StripSTARTTLS removes the STARTTLS line from every EHLO reply before
	// TLS (and makes the new last line end the reply with "250 ").
	StripSTARTTLS bool
	// STARTTLSReply, if set, is written to the client instead of forwarding
	// its STARTTLS command (a CRLF is added when it does not end in a line
	// feed). When it starts with "220" the proxy then relays blindly, and
	// the client's handshake goes to an upstream that never saw STARTTLS.
	STARTTLSReply string
	// InjectAfterSTARTTLS is written right after a 220 reply to STARTTLS,
	// in the same write (so the same TCP segment): bytes a client must not
	// read as the first reply inside TLS.
	InjectAfterSTARTTLS string
	// InjectAfterGreeting is written right after the greeting, in the same
	// write.
	InjectAfterGreeting string
	// ResetAfterClientBytes > 0 resets both connections (TCP RST) once the
	// client has sent this many bytes in total; the read that crosses the
	// limit is not relayed.
	ResetAfterClientBytes int
	// ResetOnSTARTTLS resets both connections in the middle of the TLS
	// handshake: when the client sends its first bytes after a 220 reply to
	// STARTTLS was relayed.
	ResetOnSTARTTLS bool
	// Timeout is the deadline of every read and write; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Logf, if set, logs connections, rewrites and resets. Typically
	// t.Logf; call Close before the test returns.
	Logf func(format string, args ...any)

	mu          sync.Mutex
	started     bool
	closed      bool
	ln          net.Listener
	ctx         context.Context
	cancel      context.CancelFunc
	sessions    map[*session]struct{}
	plaintext   []byte
	connections int
	wg          sync.WaitGroup
}

// Start listens on 127.0.0.1 with a port chosen by the system and relays
// each connection to Upstream in the background until Close.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("mitm: Start called twice")
	}
	if p.Upstream == "" {
		return errors.New("mitm: Upstream is empty")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("mitm: listen on 127.0.0.1: %w", err)
	}
	p.started = true
	p.ln = ln
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.sessions = make(map[*session]struct{})
	p.wg.Add(1)
	go p.acceptLoop()
	return nil
}

// Addr returns the address clients connect to ("" before Start).
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops listening, closes every relayed connection on both sides and
// waits for all goroutines of the proxy. It may be called more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.started || p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.cancel()
	var list []*session
	for s := range p.sessions {
		list = append(list, s)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, s := range list {
		s.closeBoth()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mitm: close listener: %w", err)
	}
	return nil
}

// ClientPlaintext returns every byte any client sent through the proxy
// while its stream was still plaintext, that is before a 220 reply to
// STARTTLS was relayed: what an eavesdropper reads. Connections are
// appended in the order their bytes arrived.
func (p *Proxy) ClientPlaintext() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.plaintext...)
}

// Connections returns the number of client connections accepted.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connections
}

func (p *Proxy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

func (p *Proxy) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}

func (p *Proxy) recordPlaintext(b []byte) {
	p.mu.Lock()
	p.plaintext = append(p.plaintext, b...)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			p.logf("mitm: accept: %v", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			cc.Close()
			return
		}
		p.connections++
		s := newSession(p, cc)
		p.sessions[s] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			s.run()
			p.mu.Lock()
			delete(p.sessions, s)
			p.mu.Unlock()
		}()
	}
}

// deadlineConn sets a fresh deadline before every read and write.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// session is one relayed connection.
type session struct {
	p      *Proxy
	client *deadlineConn
	server *deadlineConn // nil until dialled

	clientW sync.Mutex // serialises writes to the client

	mu          sync.Mutex
	cond        *sync.Cond
	ended       bool
	switched    bool // a 220 to STARTTLS was relayed: blind relay from now on
	startTLSCmd int  // number of the forwarded STARTTLS command, 0 if none
	dataCmd     int  // number of the last DATA command
	dataCode    int  // reply code to dataCmd once relayed
	relayed     int  // complete replies relayed, greeting included
	clientBytes int
	reset       bool
}

func newSession(p *Proxy, cc net.Conn) *session {
	s := &session{p: p, client: &deadlineConn{Conn: cc, timeout: p.timeout()}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *session) run() {
	d := net.Dialer{Timeout: s.p.timeout()}
	sc, err := d.DialContext(s.p.ctx, "tcp", s.p.Upstream)
	if err != nil {
		s.p.logf("mitm: dial upstream %s: %v", s.p.Upstream, err)
		s.client.Close()
		return
	}
	s.mu.Lock()
	s.server = &deadlineConn{Conn: sc, timeout: s.p.timeout()}
	ended := s.ended
	s.mu.Unlock()
	if ended { // Close raced with the dial
		sc.Close()
		s.client.Close()
		return
	}
	s.p.logf("mitm: relaying %v <-> %s", s.client.RemoteAddr(), s.p.Upstream)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := s.clientToServer()
		s.finish("client->server", err)
	}()
	go func() {
		defer wg.Done()
		err := s.serverToClient()
		s.finish("server->client", err)
	}()
	wg.Wait()
}

// finish ends the session when one direction stops.
func (s *session) finish(dir string, err error) {
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.p.logf("mitm: %s: %v", dir, err)
	}
	s.closeBoth()
}

func (s *session) closeBoth() {
	s.mu.Lock()
	s.ended = true
	server := s.server
	s.cond.Broadcast()
	s.mu.Unlock()
	s.client.Close()
	if server != nil {
		server.Close()
	}
}

// resetBoth aborts both connections with a TCP RST.
func (s *session) resetBoth(why string) {
	s.mu.Lock()
	if s.reset {
		s.mu.Unlock()
		return
	}
	s.reset = true
	s.ended = true
	server := s.server
	s.cond.Broadcast()
	s.mu.Unlock()
	s.p.logf("mitm: resetting both connections: %s", why)
	for _, c := range []*deadlineConn{s.client, server} {
		if c == nil {
			continue
		}
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
		c.Close()
	}
}

func (s *session) isSwitched() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switched
}

// writeClient writes to the client under the write lock.
func (s *session) writeClient(b []byte) error {
	s.clientW.Lock()
	defer s.clientW.Unlock()
	_, err := s.client.Write(b)
	return err
}

// waitRelayed waits until the replies to the first n commands (and the
// greeting) have been relayed, and returns the reply code of the last DATA.
func (s *session) waitRelayed(n int) (dataCode int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.relayed < n+1 && !s.ended {
		s.cond.Wait()
	}
	return s.dataCode, !s.ended
}

// clientReader records plaintext, counts the client's bytes and applies
// the reset rules.
type clientReader struct {
	s *session
}

func (r clientReader) Read(b []byte) (int, error) {
	s := r.s
	n, err := s.client.Read(b)
	if n == 0 {
		return n, err
	}
	s.mu.Lock()
	switched := s.switched
	s.clientBytes += n
	total := s.clientBytes
	s.mu.Unlock()
	if !switched {
		s.p.recordPlaintext(b[:n])
	}
	if lim := s.p.ResetAfterClientBytes; lim > 0 && total >= lim {
		s.resetBoth(fmt.Sprintf("the client has sent %d bytes (limit %d)", total, lim))
		return 0, errReset
	}
	if switched && s.p.ResetOnSTARTTLS {
		s.resetBoth("the client started the TLS handshake")
		return 0, errReset
	}
	return n, err
}

var errReset = errors.New("mitm: connection reset by the proxy")

// client-to-server modes before TLS.
const (
	modeCmd       = iota // command lines
	modeAfterDATA        // the line after DATA: data if DATA got 354
	modeData             // message data until CRLF "." CRLF
	modeChunk            // BDAT payload
)

// c2s is the state of the client-to-server direction.
type c2s struct {
	s         *session
	mode      int
	line      []byte // the start of the current line (up to maxInspect)
	lineLen   int
	held      []byte // bytes held back while the line may be STARTTLS
	chunkLeft int64
	cmds      int  // command lines forwarded
	prevCRLF  bool // in data: the previous line ended with CRLF
}

func (s *session) clientToServer() error {
	st := &c2s{s: s}
	buf := make([]byte, 32<<10)
	cr := clientReader{s: s}
	for {
		n, err := cr.Read(buf)
		if n > 0 {
			if perr := st.process(buf[:n]); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
	}
}

func (st *c2s) forward(b ...[]byte) error {
	for _, p := range b {
		if len(p) == 0 {
			continue
		}
		if _, err := st.s.server.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// process relays one chunk read from the client.
func (st *c2s) process(b []byte) error {
	s := st.s
	intercept := s.p.STARTTLSReply != ""
	for len(b) > 0 {
		if s.isSwitched() {
			err := st.forward(st.held, b)
			st.held = nil
			return err
		}
		if st.mode == modeChunk {
			k := min(int64(len(b)), st.chunkLeft)
			if err := st.forward(b[:k]); err != nil {
				return err
			}
			st.chunkLeft -= k
			b = b[k:]
			if st.chunkLeft == 0 {
				st.mode = modeCmd
			}
			continue
		}
		part := b
		i := bytes.IndexByte(b, '\n')
		if i >= 0 {
			part = b[:i+1]
		}
		b = b[len(part):]
		if room := maxInspect - len(st.line); room > 0 {
			st.line = append(st.line, part[:min(room, len(part))]...)
		}
		st.lineLen += len(part)
		if i < 0 {
			if intercept && st.mode != modeData && couldBeSTARTTLS(st.line, st.lineLen) {
				st.held = append(st.held, part...)
				continue
			}
			err := st.forward(st.held, part)
			st.held = nil
			if err != nil {
				return err
			}
			continue
		}
		drop, err := st.endLine()
		if err != nil {
			return err
		}
		if !drop {
			err = st.forward(st.held, part)
		}
		st.held, st.line, st.lineLen = nil, st.line[:0], 0
		if err != nil {
			return err
		}
	}
	return nil
}

// couldBeSTARTTLS reports whether an incomplete line may still become a
// STARTTLS command.
func couldBeSTARTTLS(line []byte, n int) bool {
	if n > 64 {
		return false
	}
	t := strings.ToUpper(string(line))
	if len(t) <= len("STARTTLS") {
		return strings.HasPrefix("STARTTLS", t)
	}
	return strings.HasPrefix(t, "STARTTLS") && strings.Trim(t[len("STARTTLS"):], " \t\r") == ""
}

// endLine classifies a complete line (in st.line) before it is forwarded;
// drop=true means it must not be forwarded.
func (st *c2s) endLine() (drop bool, err error) {
	s := st.s
	line := st.line
	if st.mode == modeAfterDATA {
		code, ok := s.waitRelayed(st.cmds)
		if !ok {
			return true, net.ErrClosed
		}
		st.mode = modeCmd
		if code == 354 {
			st.mode, st.prevCRLF = modeData, true
		}
	}
	if st.mode == modeData {
		if st.prevCRLF && st.lineLen == 3 && string(line) == ".\r\n" {
			st.cmds++ // the end of data gets a reply
			st.mode = modeCmd
			return false, nil
		}
		st.prevCRLF = bytes.HasSuffix(line, []byte("\r\n"))
		return false, nil
	}
	text := strings.TrimRight(string(line), "\r\n")
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)
	if st.lineLen > maxInspect {
		verb = ""
	}
	switch {
	case verb == "STARTTLS" && strings.TrimSpace(arg) == "":
		if reply := s.p.STARTTLSReply; reply != "" {
			return true, st.fakeSTARTTLS(reply)
		}
		st.cmds++
		s.mu.Lock()
		s.startTLSCmd = st.cmds
		s.mu.Unlock()
	case verb == "DATA" && strings.TrimSpace(arg) == "":
		st.cmds++
		s.mu.Lock()
		s.dataCmd, s.dataCode = st.cmds, 0
		s.mu.Unlock()
		st.mode = modeAfterDATA
	case verb == "BDAT":
		st.cmds++
		sz, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
		if n, err := strconv.ParseInt(sz, 10, 64); err == nil && n > 0 {
			st.chunkLeft, st.mode = n, modeChunk
		}
	default:
		st.cmds++
	}
	return false, nil
}

// fakeSTARTTLS answers the client's STARTTLS in place of the server, after
// the replies to every earlier command.
func (st *c2s) fakeSTARTTLS(reply string) error {
	s := st.s
	if _, ok := s.waitRelayed(st.cmds); !ok {
		return net.ErrClosed
	}
	if !strings.HasSuffix(reply, "\n") {
		reply += "\r\n"
	}
	out := []byte(reply)
	if strings.HasPrefix(reply, "220") {
		out = append(out, s.p.InjectAfterSTARTTLS...)
		s.mu.Lock()
		s.switched = true
		s.mu.Unlock()
		s.p.logf("mitm: answered STARTTLS with %q; relaying blindly", reply)
	} else {
		s.p.logf("mitm: answered STARTTLS with %q", reply)
	}
	return s.writeClient(out)
}

// serverToClient relays replies, line by line until the switch, then
// blindly.
func (s *session) serverToClient() error {
	r := bufio.NewReaderSize(s.server, MaxLineLength)
	var pending [][]byte // lines of the reply being collected
	pendingBytes := 0
	flush := func(extra []byte) error {
		var out []byte
		for _, l := range pending {
			out = append(out, l...)
		}
		out = append(out, extra...)
		pending, pendingBytes = nil, 0
		if len(out) == 0 {
			return nil
		}
		return s.writeClient(out)
	}
	longLine := false    // inside a line longer than MaxLineLength
	passthrough := false // inside a reply too long to hold back
	for {
		if s.isSwitched() {
			return s.blindToClient(r, flush)
		}
		line, err := r.ReadSlice('\n')
		if s.isSwitched() {
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return err
			}
			return s.blindToClient(r, flush)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// An overlong line is relayed unchanged, in pieces, and not
			// counted as a reply.
			longLine = true
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			continue
		case err != nil:
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			return err
		case longLine:
			longLine = false
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			continue
		}
		code, final, ok := parseReplyLine(line)
		if !ok {
			// Not a reply line (injected garbage): relay it as it is.
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			continue
		}
		if passthrough {
			if ferr := flush(line); ferr != nil {
				return ferr
			}
			if final {
				passthrough = false
				s.replyDone(code)
			}
			continue
		}
		pending = append(pending, append([]byte(nil), line...))
		pendingBytes += len(line)
		if !final {
			if pendingBytes > maxReplyBytes {
				passthrough = true
				if ferr := flush(nil); ferr != nil {
					return ferr
				}
			}
			continue
		}
		if err := s.relayReply(code, pending); err != nil {
			return err
		}
		pending, pendingBytes = nil, 0
	}
}

// blindToClient relays everything from the server, starting with what is
// buffered.
func (s *session) blindToClient(r *bufio.Reader, flush func([]byte) error) error {
	if err := flush(nil); err != nil {
		return err
	}
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		if err := s.writeClient(b); err != nil {
			return err
		}
		r.Discard(n)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := s.server.Read(buf)
		if n > 0 {
			if werr := s.writeClient(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// relayReply rewrites and relays one complete reply.
func (s *session) relayReply(code int, lines [][]byte) error {
	s.mu.Lock()
	num := s.relayed // 0: the greeting; n: the reply to command n
	isSTARTTLS := num != 0 && num == s.startTLSCmd
	s.mu.Unlock()

	if s.p.StripSTARTTLS && code == 250 && len(lines) > 1 {
		lines = stripSTARTTLS(lines, s.p.logf)
	}
	var out []byte
	for _, l := range lines {
		out = append(out, l...)
	}
	if num == 0 && s.p.InjectAfterGreeting != "" {
		out = append(out, s.p.InjectAfterGreeting...)
		s.p.logf("mitm: injecting %q after the greeting", s.p.InjectAfterGreeting)
	}
	if isSTARTTLS && code == 220 {
		out = append(out, s.p.InjectAfterSTARTTLS...)
		if s.p.InjectAfterSTARTTLS != "" {
			s.p.logf("mitm: injecting %q after the 220 to STARTTLS", s.p.InjectAfterSTARTTLS)
		}
		s.mu.Lock()
		s.switched = true
		s.mu.Unlock()
		s.p.logf("mitm: STARTTLS accepted; relaying blindly")
	}
	err := s.writeClient(out)
	s.replyDone(code)
	return err
}

// replyDone counts a relayed reply and wakes the client side.
func (s *session) replyDone(code int) {
	s.mu.Lock()
	if s.relayed == s.dataCmd && s.dataCmd != 0 {
		s.dataCode = code
	}
	s.relayed++
	s.cond.Broadcast()
	s.mu.Unlock()
}

// parseReplyLine recognises "NNN-text", "NNN text" and "NNN" (with CRLF or
// LF): the code and whether the line ends the reply.
func parseReplyLine(line []byte) (code int, final, ok bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 {
		return 0, false, false
	}
	for _, c := range l[:3] {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	code = int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0')
	switch {
	case len(l) == 3:
		return code, true, true
	case l[3] == ' ':
		return code, true, true
	case l[3] == '-':
		return code, false, true
	}
	return 0, false, false
}

// stripSTARTTLS removes the STARTTLS lines (never the first) from an EHLO
// reply and makes the last remaining line the final one.
func stripSTARTTLS(lines [][]byte, logf func(string, ...any)) [][]byte {
	out := [][]byte{lines[0]}
	for _, l := range lines[1:] {
		text := strings.TrimSpace(strings.TrimRight(string(l[min(4, len(l)):]), "\r\n"))
		if strings.EqualFold(text, "STARTTLS") {
			logf("mitm: stripping %q from the EHLO reply", strings.TrimRight(string(l), "\r\n"))
			continue
		}
		out = append(out, l)
	}
	for i, l := range out {
		body := bytes.TrimRight(l, "\r\n")
		ending := l[len(body):]
		marker := byte('-')
		if i == len(out)-1 {
			marker = ' '
		}
		switch {
		case len(body) == 3 && marker == ' ':
			// "250" alone ends a reply as it is.
		case len(body) == 3:
			out[i] = append(append(append([]byte(nil), body...), '-'), ending...)
		case body[3] != marker:
			c := append([]byte(nil), l...)
			c[3] = marker
			out[i] = c
		}
	}
	return out
}
