package mxworld

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// policyHosts serves the MTA-STS policies of every domain over HTTPS, on
// one loopback listener, choosing the certificate by SNI and the policy by
// Host.
type policyHosts struct {
	mu       sync.Mutex
	certs    map[string]*tls.Certificate // by policy host name
	policies map[string]string           // by policy host name; "" answers 404
	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
}

func newPolicyHosts() *policyHosts {
	return &policyHosts{certs: map[string]*tls.Certificate{}, policies: map[string]string{}}
}

func (p *policyHosts) add(host string, cert tls.Certificate, policy string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.certs[host] = &cert
	p.policies[host] = policy
}

func (p *policyHosts) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("MTA-STS policy hosts: %w", err)
	}
	p.ln = ln
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // handshakes that clients refuse are expected
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: p.certificate,
		},
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		// ServeTLS returns http.ErrServerClosed after close.
		p.srv.ServeTLS(ln, "", "")
	}()
	return nil
}

func (p *policyHosts) addr() string { return p.ln.Addr().String() }

func (p *policyHosts) close() {
	if p.srv == nil {
		return
	}
	p.srv.Close()
	<-p.done
}

func (p *policyHosts) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.certs[strings.ToLower(hello.ServerName)]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("mxworld: no policy host %q", hello.ServerName)
}

func (p *policyHosts) serve(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	p.mu.Lock()
	policy, ok := p.policies[host]
	p.mu.Unlock()
	if !ok || policy == "" || r.URL.Path != "/.well-known/mta-sts.txt" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(policy))
}
