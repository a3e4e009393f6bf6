package bench

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// rttProxy forwards TCP connections to a target and delays the data in
// each direction by half a round-trip time, so that a loopback benchmark
// sees the latency of a distant server. It also counts round trips: a
// round trip is a turn of the conversation, data from the server after the
// client has written (the connection itself counts as the client's move,
// so the greeting is the first turn). Data the client pipelines before an
// answer, or an answer in many segments, is one turn.
type rttProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
	turns  atomic.Int64
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newRTTProxy starts a proxy on loopback to target with the given
// round-trip time (0: no delay, only counting).
func newRTTProxy(target string, rtt time.Duration) (*rttProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &rttProxy{ln: ln, target: target, oneWay: rtt / 2, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to connect to instead of the target.
func (p *rttProxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *rttProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Turns returns the round trips counted so far, over all connections.
func (p *rttProxy) Turns() int64 { return p.turns.Load() }

// Close stops the proxy and every connection through it.
func (p *rttProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *rttProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *rttProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		// clientSpoke is whether the client wrote since the server last
		// did; true at first, for the connection.
		var mu sync.Mutex
		clientSpoke := true
		fromClient := func() {
			mu.Lock()
			clientSpoke = true
			mu.Unlock()
		}
		fromServer := func() {
			mu.Lock()
			if clientSpoke {
				p.turns.Add(1)
				clientSpoke = false
			}
			mu.Unlock()
		}
		var pair sync.WaitGroup
		pair.Add(2)
		p.wg.Add(3)
		go func() {
			defer p.wg.Done()
			pair.Wait()
			p.track(client, false)
			p.track(server, false)
			client.Close()
			server.Close()
		}()
		go p.pipe(&pair, server, client, fromClient)
		go p.pipe(&pair, client, server, fromServer)
	}
}

// segment is data read at one moment, due at the other side later.
type segment struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each read delayed by oneWay, telling seen about
// every read as it happens.
func (p *rttProxy) pipe(pair *sync.WaitGroup, dst, src net.Conn, seen func()) {
	defer p.wg.Done()
	defer pair.Done()
	queue := make(chan segment, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range queue {
			if d := time.Until(s.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(s.data); err != nil {
				src.Close()
				for range queue {
				}
				return
			}
		}
		// The source ended: pass the end on.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen()
			queue <- segment{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.oneWay)}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			break
		}
	}
	close(queue)
	<-done
}
