package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Listener serves DNS on one port of 127.0.0.1, over UDP and TCP: the
// plumbing of this package's Server, shared with other test servers.
type Listener struct {
	// Addr is the address, such as "127.0.0.1:53535".
	Addr string

	udp, tcp *dns.Server
}

// Listen starts handler(network) on a free port of 127.0.0.1 for both UDP
// and TCP ("udp", "tcp"), and returns once both serve.
func Listen(handler func(network string) dns.Handler) (*Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listening on UDP: %w", err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			lastErr = err
			continue // the TCP port was taken; try another
		}
		l := &Listener{
			Addr: addr,
			udp:  &dns.Server{PacketConn: pc, Handler: handler("udp")},
			tcp:  &dns.Server{Listener: ln, Handler: handler("tcp")},
		}
		if err := start(l.udp); err != nil {
			pc.Close()
			ln.Close()
			return nil, err
		}
		if err := start(l.tcp); err != nil {
			l.udp.Shutdown()
			ln.Close()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("no free port for both UDP and TCP on 127.0.0.1: %w", lastErr)
}

func start(srv *dns.Server) error {
	started := make(chan struct{})
	failed := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
		}
	}()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return fmt.Errorf("starting the DNS server: %w", err)
	}
}

// Close stops both servers and waits for them to finish (at most 5 s).
func (l *Listener) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(l.udp.ShutdownContext(ctx), l.tcp.ShutdownContext(ctx))
}
