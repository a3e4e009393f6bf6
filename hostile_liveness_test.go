package smtpsecure

// Issue 3 §3: exhaustion and liveness. A server that stalls, trickles,
// floods or hangs up can make the client fail, but never hang past its
// deadlines, allocate without bound, lose track of whether a message was
// delivered, or leave a goroutine behind. Related cases elsewhere:
// TestCommandTimeout (no greeting at all), TestOversizedReplies (endless
// and 100,000-line EHLO replies inside TLS), TestUncertainDelivery (closed
// after the end of data, every transfer mode), TestContextCancelInterrupts.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// liveCase is one hostile server behaviour for the liveness tables.
type liveCase struct {
	name string
	exts []string // TLSExtensions; nil means the matrix default
	hook func(t testing.TB, stop <-chan struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool)
	msg  string // "" means hostileMsg
	want expect
	// deliveredOK: the message may be recorded by the server (the client
	// failed after the end of the data).
	deliveredOK bool
}

// at returns a hook that runs fn at the command verb (before TLS, inside
// TLS or both as where says: 1 before, 2 inside, 0 both).
func at(verb string, where int, fn func(c *smtptest.Conn, stop <-chan struct{})) func(testing.TB, <-chan struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool) {
	return func(t testing.TB, stop <-chan struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool) {
		return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb != verb || where == 1 && cmd.TLS || where == 2 && !cmd.TLS {
				return "", false
			}
			fn(c, stop)
			return "", true
		}
	}
}

// stallAfter writes pre, then stalls until the client hangs up.
func stallAfter(pre string) func(c *smtptest.Conn, stop <-chan struct{}) {
	return func(c *smtptest.Conn, stop <-chan struct{}) {
		c.Write(pre)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		c.Stall(ctx)
	}
}

// trickleOf trickles data, one byte every 50 ms, after pre.
func trickleOf(pre, data string) func(c *smtptest.Conn, stop <-chan struct{}) {
	return func(c *smtptest.Conn, stop <-chan struct{}) {
		c.Write(pre)
		trickle(c, data, 50*time.Millisecond, stop)
	}
}

func runLiveCases(t *testing.T, cases []liveCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exts := tc.exts
			if exts == nil {
				exts = []string{"8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}
			}
			var hook func(*smtptest.Conn, smtptest.Command) (string, bool)
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = exts
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) { return hook(c, cmd) }
			})
			hook = tc.hook(t, stopChan(t))
			d := hostileDialer(t, s)
			d.GreetingTimeout, d.CommandTimeout, d.DataTimeout = stallTimeout, stallTimeout, stallTimeout
			msg := tc.msg
			if msg == "" {
				msg = hostileMsg
			}
			el, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(msg))
			})
			tc.want.check(t, err)
			// The deadline holds: one timeout, plus the QUIT on the way
			// out, plus slack for a busy machine; a client that let the
			// server keep it waiting would reach hostileTimeout.
			if limit := 2*stallTimeout + 3*time.Second; el > limit {
				t.Errorf("took %v, more than %v", el, limit)
			}
			checkSessions(t, s, true)
			if !tc.deliveredOK && len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}

// STD-26: a server that stops answering at any step costs the client one
// CommandTimeout (or DataTimeout after the data), never more.
func TestHostileStalls(t *testing.T) {
	timeout := expect{timeout: true, is: os.ErrDeadlineExceeded}
	runLiveCases(t, []liveCase{
		{name: "after the greeting", hook: at("EHLO", 1, stallAfter("")), want: timeout},
		{name: "instead of the reply to STARTTLS", hook: at("STARTTLS", 0, stallAfter("")), want: timeout},
		{name: "after the 220 to STARTTLS", hook: at("STARTTLS", 0, stallAfter("220 2.0.0 go ahead\r\n")), want: timeout},
		{name: "after the handshake", hook: at("EHLO", 2, stallAfter("")), want: timeout},
		{name: "in the middle of a reply", hook: at("EHLO", 2, stallAfter("250-"+testHost+"\r\n250-PIPELINING\r\n")), want: timeout},
		{name: "in the middle of a line", hook: at("EHLO", 2, stallAfter("25")), want: timeout},
		{name: "in the middle of the greeting", hook: at("CONNECT", 0, stallAfter("220-"+testHost+" ESMTP\r\n")), want: timeout},
		{name: "at AUTH", hook: at("AUTH", 0, stallAfter("")), want: timeout},
		{name: "at MAIL", hook: at("MAIL", 0, stallAfter("")), want: timeout},
		{name: "at RCPT", hook: at("RCPT", 0, stallAfter("")), want: timeout},
		{name: "at DATA", hook: at("DATA", 0, stallAfter("")), want: timeout},
		{name: "after the final dot", hook: at("EOD", 0, stallAfter("")),
			want: expect{uncertain: true, is: os.ErrDeadlineExceeded}, deliveredOK: true},
		{name: "after BDAT LAST", exts: []string{"CHUNKING", "AUTH PLAIN"}, hook: at("EOD", 0, stallAfter("")),
			want: expect{uncertain: true, is: os.ErrDeadlineExceeded}, deliveredOK: true},
		{name: "at a BDAT chunk before the last", exts: []string{"CHUNKING", "AUTH PLAIN"}, hook: at("BDAT", 0, stallAfter("")),
			msg: strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 4000), want: timeout},
		{name: "at QUIT, after delivery", hook: at("QUIT", 0, stallAfter("")),
			want: expect{delivered: true}, deliveredOK: true},
	})
}

// A server that sends one byte every 50 ms keeps every single read alive;
// the deadline covers the whole reply (and the whole handshake), so the
// client still gives up after one timeout.
func TestHostileTrickle(t *testing.T) {
	timeout := expect{timeout: true, is: os.ErrDeadlineExceeded}
	long := strings.Repeat("x", 200) + "\r\n" // 10 s at one byte per 50 ms
	var lines strings.Builder
	for i := 0; i < 200; i++ {
		lines.WriteString("250-line " + strconv.Itoa(i) + "\r\n")
	}
	runLiveCases(t, []liveCase{
		{name: "greeting", hook: at("CONNECT", 0, trickleOf("", "220 "+long)), want: timeout},
		{name: "EHLO reply inside TLS", hook: at("EHLO", 2, trickleOf("", "250 "+long)), want: timeout},
		{name: "multi-line reply, every line in time", hook: at("EHLO", 2, func(c *smtptest.Conn, stop <-chan struct{}) {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 200; i++ {
				if c.Write("250-line "+strconv.Itoa(i)+"\r\n") != nil {
					return
				}
				select {
				case <-tick.C:
				case <-stop:
					return
				}
			}
		}), want: timeout},
		{name: "final reply", hook: at("EOD", 0, trickleOf("", "250 "+long)),
			want: expect{uncertain: true, is: os.ErrDeadlineExceeded}, deliveredOK: true},
	})
}

// The reply reader's limits hold wherever the reply comes: a line without
// end, a million lines, a reply over 64 KiB, a huge EHLO.
func TestHostileOversizedReplies(t *testing.T) {
	tooLong := expect{protocol: true, is: ErrReplyTooLong}
	tooMany := expect{protocol: true, is: ErrReplyTooManyLines}
	endless := strings.Repeat("x", 1<<20)
	// 900 extensions of 50 octets: 45 KiB, within the limits.
	hugeEHLO := []string{"AUTH PLAIN"}
	for i := 0; i < 900; i++ {
		hugeEHLO = append(hugeEHLO, "X-EXTENSION-"+strconv.Itoa(1000+i)+" "+strings.Repeat("p", 30))
	}
	var tooBigEHLO strings.Builder
	tooBigEHLO.WriteString("250-" + testHost + "\r\n")
	for i := 0; i < 50; i++ {
		tooBigEHLO.WriteString("250-X-WIDE-" + strconv.Itoa(i) + " " + strings.Repeat("p", 3000) + "\r\n")
	}
	tooBigEHLO.WriteString("250 AUTH PLAIN\r\n")
	reply := func(r string) func(c *smtptest.Conn, stop <-chan struct{}) {
		return func(c *smtptest.Conn, stop <-chan struct{}) { c.Write(r) }
	}
	runLiveCases(t, []liveCase{
		{name: "endless greeting line", hook: at("CONNECT", 0, reply("220 "+endless)), want: tooLong},
		{name: "endless EHLO line before TLS", hook: at("EHLO", 1, reply("250-"+endless)), want: tooLong},
		{name: "endless challenge line", hook: at("AUTH", 0, reply("334 "+endless)), want: tooLong},
		{name: "endless final reply", hook: at("EOD", 0, reply("250 "+endless)), want: tooLong, deliveredOK: true},
		{name: "a million-line greeting", hook: at("CONNECT", 0, millionLines("220")), want: tooMany},
		{name: "a million-line reply to MAIL", hook: at("MAIL", 0, millionLines("250")), want: tooMany},
		{name: "reply over 64 KiB in few lines", hook: at("EHLO", 2, reply(tooBigEHLO.String())), want: tooMany},
		{name: "huge EHLO within the limits", exts: hugeEHLO, hook: at("NOOP", 0, reply("")), want: expect{delivered: true}, deliveredOK: true},
	})
}

// millionLines writes a reply of a million lines of 100 octets (100 MB),
// and fails the test if all of it could be written: the client must stop
// reading long before.
func millionLines(code string) func(c *smtptest.Conn, stop <-chan struct{}) {
	return func(c *smtptest.Conn, stop <-chan struct{}) {
		line := code + "-" + strings.Repeat("y", 94) + "\r\n"
		chunk := strings.Repeat(line, 1000)
		for i := 0; i < 1000; i++ {
			if c.Write(chunk) != nil {
				return
			}
		}
		c.Write(code + " done\r\n")
		panic("the client read a million-line reply to its end")
	}
}

// Issue 3 §3: a connection that ends during the data (before the end of
// the data was sent) is a *ConnError: nothing was delivered, and the caller
// may resend. TestUncertainDelivery covers the end after the final dot.
func TestHostileClosedDuringData(t *testing.T) {
	for _, tc := range []struct {
		name string
		exts []string
		hang func(c *smtptest.Conn)
		verb string
	}{
		{"closed after 354", []string{"AUTH PLAIN"}, func(c *smtptest.Conn) { c.Close() }, "DATA"},
		{"reset after 354", []string{"AUTH PLAIN"}, func(c *smtptest.Conn) { c.Reset() }, "DATA"},
		{"closed at the first BDAT chunk", []string{"CHUNKING", "AUTH PLAIN"}, func(c *smtptest.Conn) { c.Close() }, "BDAT"},
		{"reset at the first BDAT chunk, pipelined", []string{"CHUNKING", "PIPELINING", "AUTH PLAIN"}, func(c *smtptest.Conn) { c.Reset() }, "BDAT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = tc.exts
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb != tc.verb {
						return "", false
					}
					if tc.verb == "DATA" {
						c.Write("354 go ahead\r\n")
					}
					tc.hang(c)
					return "", true
				}
			})
			d := hostileDialer(t, s)
			// The message goes on only once the server has hung up, so
			// that the failure is certainly before the end of the data.
			// The first part fills a BDAT chunk, so that BDAT is sent.
			first := "Subject: x\r\n\r\n" + bodyMarker + "\r\n" + strings.Repeat("the first part of the message\r\n", 4000)
			msg := &afterSession{first: strings.NewReader(first), s: s,
				rest: strings.NewReader(strings.Repeat("more of the message\r\n", 100000))}
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, msg)
			})
			expect{conn: true}.check(t, err)
			checkSessions(t, s, true)
			if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}

// afterSession yields first, then waits until the server's first session
// has ended before it yields rest.
type afterSession struct {
	first, rest io.Reader
	s           *smtptest.Server
	waited      bool
}

func (a *afterSession) Read(p []byte) (int, error) {
	if n, err := a.first.Read(p); n > 0 || err != io.EOF {
		return n, err
	}
	if !a.waited {
		a.waited = true
		ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
		defer cancel()
		a.s.WaitSessions(ctx, 1)
	}
	return a.rest.Read(p)
}

// Issue 3 §3: the end of the data was sent and the connection ended
// before the final reply: *UncertainDeliveryError, whatever the way it
// ended (TestUncertainDelivery has the plain close in every transfer mode).
func TestHostileClosedAfterFinalDot(t *testing.T) {
	uncertain := expect{uncertain: true}
	for _, tc := range []struct {
		name string
		exts []string
		eod  func(c *smtptest.Conn)
	}{
		{"reset", []string{"AUTH PLAIN"}, func(c *smtptest.Conn) { c.Reset() }},
		{"half a reply line", []string{"AUTH PLAIN"}, func(c *smtptest.Conn) { c.Write("25"); c.Close() }},
		{"half a multi-line reply", []string{"AUTH PLAIN"}, func(c *smtptest.Conn) { c.Write("250-queued as 1234\r\n"); c.Close() }},
		{"reset after BDAT LAST", []string{"CHUNKING", "PIPELINING", "AUTH PLAIN"}, func(c *smtptest.Conn) { c.Reset() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = tc.exts
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "EOD" {
						tc.eod(c)
						return "", true
					}
					return "", false
				}
			})
			d := hostileDialer(t, s)
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
			})
			uncertain.check(t, err)
			checkSessions(t, s, true)
		})
	}
}

// A server may hold back the replies to a pipelined group (RFC 2920 §3.1).
// When the group carried the whole message (BDAT ... LAST) and the
// connection ends before any reply, the server may have taken the message:
// the outcome is uncertain, not a plain network failure that invites a
// resend.
func TestHostileClosedAfterPipelinedLastChunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
	}{
		{"envelope and the only chunk in one group", hostileMsg},
		{"several chunks in flight", strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 3000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := startRawServer(t, func(conn net.Conn, r *lineReader) {
				rawUntilSTARTTLS(conn, r)
				tconn, r, ok := rawTLS(t, conn)
				if !ok {
					return
				}
				r.line() // EHLO
				io.WriteString(tconn, "250-"+testHost+"\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
				// Answer the first group (when it does not end the
				// message), then read everything up to the end of the
				// last chunk, hold back the replies, and hang up.
				var held []string
				for {
					l := r.line()
					if l == "" {
						return
					}
					reply := "250 ok\r\n"
					if strings.HasPrefix(l, "BDAT ") {
						f := strings.Fields(l)
						n, _ := strconv.Atoi(f[1])
						r.skip(n)
						if len(f) == 3 && f[2] == "LAST" {
							break
						}
						if held == nil {
							io.WriteString(tconn, "250 ok\r\n250 ok\r\n"+reply)
							held = []string{}
							continue
						}
					}
					if held != nil {
						held = append(held, reply)
					}
				}
				tconn.Close()
			})
			d := dialerFor(t, rs)
			d.CommandTimeout, d.DataTimeout = stallTimeout, stallTimeout
			_, err := within(t, hostileTimeout, func() error {
				return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(tc.msg))
			})
			expect{uncertain: true}.check(t, err)
		})
	}
}

// Issue 3 §3, issue 2 §7: cancelling the context at any phase returns at
// once, with the context's error, and leaves no goroutine behind. The
// Dialer's timeouts are a minute, far beyond what the test waits after the
// cancellation (settleBound): only the cancellation can end the I/O in time.
func TestHostileCancelEveryPhase(t *testing.T) {
	noPipe := []string{"8BITMIME", "AUTH PLAIN LOGIN"}
	type phase struct {
		name string
		exts []string
		verb string // the command the server stalls at
		// stallNoRead: the server stops reading too (a full TCP window).
		stallNoRead bool
		pre         string // written before stalling
		// run is the call to cancel; nil means Dialer.SendMail.
		run  func(ctx context.Context, d *Dialer, reached chan<- string) error
		want func(t *testing.T, err error)
	}
	canceled := func(t *testing.T, err error) {
		t.Helper()
		var ce *ConnError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &ce) || ce.Timeout() {
			t.Fatalf("err = %v (%T), want a *ConnError with context.Canceled", err, err)
		}
	}
	phases := []phase{
		{name: "dial", run: func(ctx context.Context, d *Dialer, reached chan<- string) error {
			d.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				signal(reached, "dial")
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return sendMail(ctx, d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
		}, want: canceled},
		{name: "greeting", verb: "CONNECT", want: canceled},
		{name: "EHLO", verb: "EHLO", want: canceled},
		{name: "STARTTLS", verb: "STARTTLS", want: canceled},
		{name: "handshake", verb: "STARTTLS", pre: "220 2.0.0 go ahead\r\n", want: canceled},
		{name: "EHLO inside TLS", verb: "EHLO2", want: canceled},
		{name: "AUTH", verb: "AUTH", want: canceled},
		{name: "MAIL", verb: "MAIL", exts: noPipe, want: canceled},
		{name: "RCPT", verb: "RCPT", exts: noPipe, want: canceled},
		{name: "DATA", verb: "DATA", exts: noPipe, want: canceled},
		{name: "pipelined envelope", verb: "MAIL", exts: []string{"PIPELINING", "AUTH PLAIN"}, want: canceled},
		{name: "BDAT chunk", verb: "BDAT", exts: []string{"CHUNKING", "AUTH PLAIN"}, run: func(ctx context.Context, d *Dialer, _ chan<- string) error {
			return sendMail(ctx, d, "a@test.example", []string{"b@test.example"}, strings.NewReader(strings.Repeat("a line of the message body\r\n", 10000)))
		}, want: canceled},
		{name: "body streaming", verb: "DATA", exts: noPipe, pre: "354 go ahead\r\n", stallNoRead: true,
			run: func(ctx context.Context, d *Dialer, reached chan<- string) error {
				return sendMail(ctx, d, "a@test.example", []string{"b@test.example"}, &endlessBody{reached: reached})
			}, want: canceled},
		{name: "final reply", verb: "EOD", want: func(t *testing.T, err error) {
			if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDeliveryUncertain) {
				t.Fatalf("err = %v, want an uncertain delivery with context.Canceled", err)
			}
		}},
		// A Client resets a failed transaction for the next message
		// (Dialer.Send, which quits instead, does not).
		{name: "RSET after a refusal", verb: "RSET", exts: noPipe, run: func(ctx context.Context, d *Dialer, _ chan<- string) error {
			c, err := d.Dial(context.Background())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Send(ctx, &Envelope{From: "a@test.example", To: []string{"refused@test.example"}}, strings.NewReader(hostileMsg))
			return err
		}, want: func(t *testing.T, err error) {
			var re *RecipientsError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want the refusal", err)
			}
		}},
		{name: "QUIT after delivery", verb: "QUIT", want: func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("err = %v, want the delivery's nil", err)
			}
		}},
		{name: "Client.Quit", verb: "QUIT", run: func(ctx context.Context, d *Dialer, _ chan<- string) error {
			c, err := d.Dial(context.Background())
			if err != nil {
				return err
			}
			if _, err := c.Send(context.Background(), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(hostileMsg)); err != nil {
				return err
			}
			return c.Quit(ctx)
		}, want: canceled},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			reached := make(chan string, 1)
			release := make(chan struct{})
			exts := ph.exts
			if exts == nil {
				exts = []string{"ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}
			}
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = exts
				s.Logf = nil
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					verb := cmd.Verb
					if verb == "EHLO" && cmd.TLS {
						verb = "EHLO2"
					}
					switch {
					case verb == "RCPT" && strings.Contains(cmd.Arg, "refused"):
						return "550 5.1.1 no such user", true
					case verb != ph.verb:
						return "", false
					}
					c.Write(ph.pre)
					if ph.stallNoRead {
						<-release // neither read nor write: the client's writes block
						return "", true
					}
					signal(reached, ph.verb)
					ctx, cancel := context.WithCancel(context.Background())
					go func() { <-release; cancel() }()
					c.Stall(ctx)
					cancel()
					return "", true
				}
			})
			d := dialerFor(t, s)
			d.Auth = PlainAuth("", "alice", "secret")
			d.GreetingTimeout, d.CommandTimeout, d.DataTimeout = time.Minute, time.Minute, time.Minute
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			run := ph.run
			if run == nil {
				run = func(ctx context.Context, d *Dialer, _ chan<- string) error {
					return sendMail(ctx, d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
				}
			}
			done := make(chan error, 1)
			go func() { done <- run(ctx, d, reached) }()
			select {
			case <-reached:
			case err := <-done:
				t.Fatalf("returned before the phase was reached: %v", err)
			case <-time.After(hostileTimeout):
				t.Fatal("phase not reached")
			}
			if ph.stallNoRead {
				// Give the client time to fill the window and block in a
				// write. Not a bound: the cancellation must end the call
				// whether or not the write has blocked yet.
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(settleBound):
				t.Fatalf("did not return within %v after cancel (the Dialer's timeouts are a minute)", settleBound)
			}
			ph.want(t, err)
			close(release)
			s.Close()
			settleGoroutines(t, before)
		})
	}
}

// endlessBody is a message that never ends; it signals once it has been
// read from for a while.
type endlessBody struct {
	reached chan<- string
	n       atomic.Int64
}

func (b *endlessBody) Read(p []byte) (int, error) {
	line := "an endless message body line\r\n"
	n := 0
	for n+len(line) <= len(p) {
		n += copy(p[n:], line)
	}
	if b.n.Add(int64(n)) > 64<<10 {
		signal(b.reached, "body")
	}
	return n, nil
}

// The TLS handshake is bounded as a whole: a server that starts it and
// then sends a record one byte every 50 ms does not keep it alive.
func TestHostileTrickledHandshake(t *testing.T) {
	stop := make(chan struct{})
	rs := startRawServer(t, func(conn net.Conn, r *lineReader) {
		rawUntilSTARTTLS(conn, r)
		// Wait for the ClientHello, so that the client has started the
		// handshake, then answer with a record promising 16 KiB.
		one := make([]byte, 1)
		conn.Read(one)
		record := "\x16\x03\x03\x40\x00" + strings.Repeat("\x00", 200)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(record); i++ {
			if _, err := conn.Write([]byte{record[i]}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	})
	t.Cleanup(func() { close(stop) })
	d := dialerFor(t, rs)
	d.GreetingTimeout, d.CommandTimeout = stallTimeout, stallTimeout
	el, err := within(t, hostileTimeout, func() error {
		return sendMail(hctx(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(hostileMsg))
	})
	expect{timeout: true, is: os.ErrDeadlineExceeded}.check(t, err)
	if limit := stallTimeout + 3*time.Second; el > limit {
		t.Errorf("took %v, more than %v", el, limit)
	}
}
