package mxworld

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// TB is the part of testing.TB the world uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// World is the running world: a DNS server, the MX hosts and the MTA-STS
// policy hosts of Domains. Its methods are safe for concurrent use.
type World struct {
	tb    TB
	dns   *dnstest.Server
	pki   *pki
	https *policyHosts

	servers map[string]*smtptest.Server // by MX host name
	smtp    map[netip.Addr]string       // MX address -> listener
	refused map[netip.Addr]bool         // addresses of hosts that are down
	policy  map[netip.Addr]bool         // policy host addresses
	seeds   []*mtasts.Entry             // cached policies for MTASTSCacheDir

	next4, next6, nextPolicy int

	cacheOnce sync.Once
	cacheDir  string
}

// New starts the world for a test and stops it when the test ends.
func New(tb TB) *World {
	tb.Helper()
	w := &World{
		tb:      tb,
		https:   newPolicyHosts(),
		servers: map[string]*smtptest.Server{},
		smtp:    map[netip.Addr]string{},
		refused: map[netip.Addr]bool{},
		policy:  map[netip.Addr]bool{},
	}
	tb.Cleanup(w.close)
	if err := w.start(); err != nil {
		tb.Fatalf("mxworld: %v", err)
	}
	return w
}

func (w *World) start() error {
	var err error
	if w.pki, err = newPKI(); err != nil {
		return err
	}
	if w.dns, err = dnstest.Start(); err != nil {
		return err
	}
	for _, z := range HostingZones {
		w.dns.SetZone(z.Name, zoneRule(z.Signed))
	}
	for _, d := range Domains {
		if err := w.publish(d); err != nil {
			return fmt.Errorf("domain %s: %w", d.Name, err)
		}
	}
	return w.https.start()
}

func (w *World) close() {
	for _, s := range w.servers {
		s.Close()
	}
	w.https.close()
	if w.dns != nil {
		w.dns.Close()
	}
}

func zoneRule(signed bool) dnstest.Rule {
	if signed {
		return dnstest.Rule{Mode: dnstest.Secure}
	}
	return dnstest.Rule{Mode: dnstest.Insecure}
}

// ResolverAddr is the address ("127.0.0.1:port") of the world's DNS
// server, which answers as a validating resolver on loopback would: point
// a dane.Resolver's Servers at it.
func (w *World) ResolverAddr() string { return w.dns.Addr }

// RootCAs is the world's Web PKI: the root of the MX certificates that are
// meant to be valid and of the MTA-STS policy hosts.
func (w *World) RootCAs() *x509.CertPool { return w.pki.web.Pool() }

// DialContext connects to an address of the world, "ip:port": port 25 of
// an MX host, port 443 of an MTA-STS policy host. Addresses of hosts that
// are down, and any other address, refuse the connection. Names are not
// resolved: resolve them through ResolverAddr first.
func (w *World) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("mxworld dials addresses only, not %q: resolve names through the world's resolver", host)}
	}
	ip = ip.Unmap()
	var target string
	switch {
	case port == "25" && !w.refused[ip]:
		target = w.smtp[ip]
	case port == "443" && w.policy[ip]:
		target = w.https.addr()
	}
	if target == "" {
		return nil, &net.OpError{Op: "dial", Net: network,
			Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, parsePort(port))),
			Err:  os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func parsePort(s string) uint16 {
	var n uint16
	fmt.Sscan(s, &n)
	return n
}

// MTASTSCacheDir returns a directory holding an MTA-STS cache (a
// mtasts.FileStore) seeded with the cached policies of the table (see
// STS.CachedID). It is made on the first call and removed after the test.
func (w *World) MTASTSCacheDir() string {
	w.cacheOnce.Do(func() {
		dir := w.tb.TempDir()
		fs, err := mtasts.NewFileStore(dir)
		if err != nil {
			w.tb.Fatalf("mxworld: MTA-STS cache: %v", err)
		}
		for _, e := range w.seeds {
			e := *e
			e.FetchedAt = time.Now()
			if err := fs.Save(context.Background(), &e); err != nil {
				w.tb.Fatalf("mxworld: seeding the MTA-STS cache: %v", err)
			}
		}
		w.cacheDir = dir
	})
	return w.cacheDir
}

// MX returns the recording server of an MX host (its name in A-labels, as
// in the table): its sessions, with what was sent before and inside TLS,
// and the messages it accepted. It is nil for hosts that are down and for
// names that are not MX hosts of the world.
func (w *World) MX(name string) *smtptest.Server { return w.servers[name] }

// Hosts lists the MX hosts that have a server, sorted.
func (w *World) Hosts() []string {
	out := make([]string, 0, len(w.servers))
	for n := range w.servers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// transactionVerbs are the commands that carry credentials, envelope
// addresses or message content.
var transactionVerbs = []string{"AUTH", "MAIL", "RCPT", "DATA", "BDAT"}

// Leaks lists, for every MX host, the commands of a mail transaction
// (AUTH, MAIL, RCPT, DATA, BDAT) that arrived outside TLS, as "host:
// session n: command". It is empty when nothing reached any host in
// plaintext.
func (w *World) Leaks() []string {
	var out []string
	for _, name := range w.Hosts() {
		for i, s := range w.servers[name].Sessions() {
			for _, c := range s.Commands() {
				if !c.TLS && slices.Contains(transactionVerbs, c.Verb) {
					out = append(out, fmt.Sprintf("%s: session %d: %s", name, i+1, c.Line))
				}
			}
		}
	}
	return out
}

// aLabel converts a table name.
func aLabel(name string) (string, error) {
	if _, err := netip.ParseAddr(name); err == nil {
		return name, nil
	}
	return idn.ToASCII(strings.TrimSuffix(name, "."))
}
