package smtpsecure

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// TestPoolFaultsNoDuplicateNoLoss sends many messages from many goroutines
// through a server that fails at random: resets and hang-ups before and
// during the transaction, hang-ups before the final reply, refusals, 421
// to MAIL, a 421 after the reply (the session dies while idle), and
// sessions dropped from outside at random moments. Every message must be
// delivered exactly once and reported as sent, or reported with an error
// and delivered never (or at most once, for an uncertain delivery).
func TestPoolFaultsNoDuplicateNoLoss(t *testing.T) {
	for _, chunking := range []bool{true, false} {
		t.Run(fmt.Sprintf("CHUNKING=%v", chunking), func(t *testing.T) {
			testPoolFaults(t, chunking)
		})
	}
}

func testPoolFaults(t *testing.T, chunking bool) {
	seed := uint64(rand.Uint32())
	t.Logf("seed %d", seed)
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 11))
	roll := func() int {
		rmu.Lock()
		defer rmu.Unlock()
		return rng.IntN(100)
	}
	var faults atomic.Int32
	var dropper sync.WaitGroup
	var srv *smtptest.Server
	fault := func() { faults.Add(1) }
	srv = newServer(t, func(s *smtptest.Server) {
		s.Logf = nil
		if !chunking {
			s.Extensions = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}
		}
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if roll() < 1 {
				// Every session dropped from outside, at a moment that
				// races with this and the other sessions' traffic.
				fault()
				dropper.Add(1)
				go func() {
					defer dropper.Done()
					srv.CloseConnections()
				}()
			}
			r := roll()
			switch cmd.Verb {
			case "MAIL":
				switch {
				case r < 3:
					fault()
					c.Reset()
					return "", true
				case r < 5:
					fault()
					return "421 4.3.2 going away", true
				}
			case "RCPT":
				if r < 3 {
					fault()
					return "450 4.2.1 try later", true
				}
			case "DATA", "BDAT":
				if r < 3 {
					fault()
					c.Reset()
					return "", true
				}
			case "EOD":
				switch {
				case r < 3:
					fault()
					c.Close() // before the final reply: uncertain
					return "", true
				case r < 6:
					fault()
					return "451 4.3.0 queue trouble", true
				case r < 9:
					fault()
					return "250 2.0.0 OK\r\n421 4.4.2 closing\r\n", true
				}
			}
			return "", false
		}
	})
	p := newPool(t, dialerFor(t, srv), func(p *Pool) {
		p.MaxSessions = 4
		p.MaxMessages = 7
	})
	t.Cleanup(dropper.Wait)
	const senders, each = 12, 25
	type outcome struct {
		err error
	}
	outcomes := make([]outcome, senders*each)
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := g*each + i
				_, err := p.Send(ctxT(t), poolEnv(), strings.NewReader(poolMsg(n)))
				outcomes[n] = outcome{err}
			}
		}()
	}
	wg.Wait()
	dropper.Wait()

	got := subjects(srv)
	var sent, failed, uncertain int
	for n, o := range outcomes {
		c := got[fmt.Sprintf("m%d", n)]
		var ue *UncertainDeliveryError
		switch {
		case c > 1:
			t.Errorf("message %d delivered %d times", n, c)
		case o.err == nil:
			sent++
			if c != 1 {
				t.Errorf("message %d reported sent, delivered %d times", n, c)
			}
		case errors.As(o.err, &ue):
			uncertain++
		default:
			failed++
			if c != 0 {
				t.Errorf("message %d failed (%v) but was delivered", n, o.err)
			}
		}
	}
	st := p.Stats()
	t.Logf("%d faults; %d sent, %d failed, %d uncertain; %+v", faults.Load(), sent, failed, uncertain, st)
	if sent == 0 || faults.Load() == 0 {
		t.Errorf("the test proved nothing: %d sent, %d faults", sent, faults.Load())
	}
}
