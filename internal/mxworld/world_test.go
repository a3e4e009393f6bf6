package mxworld

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// The table is consistent: unique domain and host names, expected hosts
// that exist, names that convert to A-labels.
func TestTable(t *testing.T) {
	domains := map[string]bool{}
	hosts := map[string]bool{}
	for _, d := range Domains {
		a, err := idn.ToASCII(d.Name)
		if err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if domains[a] {
			t.Errorf("%s: listed twice", d.Name)
		}
		domains[a] = true
		if d.About == "" {
			t.Errorf("%s: no About", d.Name)
		}
		var names []string
		for _, h := range d.MX {
			if hosts[h.Name] {
				t.Errorf("%s: host %s listed twice", d.Name, h.Name)
			}
			hosts[h.Name] = true
			names = append(names, h.Name)
		}
		if d.Implicit != nil {
			names = append(names, a)
		}
		e := d.Expect
		if e.Outcome == Delivered && !slices.Contains(names, e.Host) {
			t.Errorf("%s: expected host %q is not an MX host of the domain", d.Name, e.Host)
		}
		if e.Outcome == Delivered && e.Auth == "" {
			t.Errorf("%s: delivered without saying how it was authenticated", d.Name)
		}
		for _, u := range e.Untouched {
			if !slices.Contains(names, u) {
				t.Errorf("%s: untouched host %q is not an MX host of the domain", d.Name, u)
			}
		}
	}
}

func TestWorld(t *testing.T) {
	w := New(t)
	r := &dane.Resolver{Servers: []string{w.ResolverAddr()}, Timeout: 5 * time.Second}
	ctx := context.Background()

	// Every reachable MX host answers on the address DNS gives, through
	// the dial hook, with its own name.
	for _, d := range Domains {
		for _, h := range append(slices.Clone(d.MX), implicit(d)...) {
			if _, err := netip.ParseAddr(h.Name); err == nil || h.Do&(Down|AddressBogus) != 0 {
				continue
			}
			ip, err := r.LookupIP(ctx, h.Name)
			if err != nil || len(ip.Addrs) == 0 {
				t.Errorf("%s: %v %v", h.Name, ip, err)
				continue
			}
			for _, a := range ip.Addrs {
				c, err := w.DialContext(ctx, "tcp", netip.AddrPortFrom(a, 25).String())
				if err != nil {
					t.Errorf("%s at %s: %v", h.Name, a, err)
					continue
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 512)
				n, _ := c.Read(buf)
				c.Close()
				greeting := string(buf[:n])
				want := "220 " + serverName(h)
				if h.Do&Greeting421 != 0 {
					want = "421 "
				}
				if !strings.HasPrefix(greeting, want) {
					t.Errorf("%s: greeting %q, want %q…", h.Name, greeting, want)
				}
			}
		}
	}

	// Hosts that are down, and unknown addresses, refuse connections.
	down, _ := r.LookupIP(ctx, "mx1.alldown.example")
	for _, addr := range []string{netip.AddrPortFrom(down.Addrs[0], 25).String(), "192.0.2.254:25", "203.0.113.1:443"} {
		if _, err := w.DialContext(ctx, "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s: %v, want connection refused", addr, err)
		}
	}
	if _, err := w.DialContext(ctx, "tcp", "mx.dane-ee.example:25"); err == nil {
		t.Error("dialling a name succeeded; the hook takes addresses only")
	}

	// DNSSEC status and the bogus names, as a validating resolver gives them.
	if mx, err := r.LookupMX(ctx, "dane-ee.example"); err != nil || !mx.Secure() {
		t.Errorf("dane-ee.example MX: %+v %v, want secure", mx, err)
	}
	if mx, err := r.LookupMX(ctx, "sts-enforce.example"); err != nil || mx.Secure() {
		t.Errorf("sts-enforce.example MX: %+v %v, want insecure", mx, err)
	}
	if _, err := r.LookupMX(ctx, "mx-bogus.example"); !errors.Is(err, dane.ErrBogus) {
		t.Errorf("mx-bogus.example MX: %v, want bogus", err)
	}
	if mx, err := r.LookupMX(ctx, "nullmx.example"); err != nil || !mx.NullMX {
		t.Errorf("nullmx.example: %+v %v", mx, err)
	}
	if mx, err := r.LookupMX(ctx, "nxdomain.example"); err != nil || !mx.NXDomain {
		t.Errorf("nxdomain.example: %+v %v", mx, err)
	}
	ip, _ := r.LookupIP(ctx, "mail.cname-mx.example")
	if tl, err := r.LookupHostTLSA(ctx, ip, 25); err != nil || tl.Decision != dane.DANERequired || tl.BaseDomain != "mx.cname-target.example" {
		t.Errorf("mail.cname-mx.example TLSA: %+v %v", tl, err)
	}
	if a, err := r.Lookup(ctx, "_25._tcp.mx.tlsa-bogus.example", dns.TypeTLSA); !errors.Is(err, dane.ErrBogus) {
		t.Errorf("TLSA of mx.tlsa-bogus.example: %+v %v, want bogus", a, err)
	}

	// Policy hosts serve their policies over HTTPS under the world's roots.
	c := &mtasts.Client{Resolver: r, RootCAs: w.RootCAs(), DialContext: viaResolver(r, w)}
	for _, d := range Domains {
		if d.STS == nil {
			continue
		}
		res, err := c.Get(ctx, d.Name)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if d.STS.Fetch404 {
			if res.Policy != nil || !errors.Is(res.Err, mtasts.ErrPolicyNotFound) {
				t.Errorf("%s: %+v, want a 404", d.Name, res)
			}
			continue
		}
		if res.Policy == nil || string(res.Policy.Mode) != d.STS.Mode || !slices.Equal(res.Policy.MX, d.STS.MX) {
			t.Errorf("%s: policy %+v (err %v), want mode %s mx %v", d.Name, res.Policy, res.Err, d.STS.Mode, d.STS.MX)
		}
	}

	// The cache directory holds the seeded policies.
	fs, err := mtasts.NewFileStore(w.MTASTSCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := fs.Load(ctx, "sts-cached.example")
	if err != nil || e.ID != "1" || e.Policy.Mode != mtasts.ModeEnforce || !e.Valid(time.Now()) {
		t.Errorf("cached policy: %+v %v", e, err)
	}
	if w.MTASTSCacheDir() != fs.Dir() {
		t.Error("MTASTSCacheDir changed between calls")
	}
}

// Leaks reports a mail transaction in plaintext, and only that.
func TestLeaks(t *testing.T) {
	w := New(t)
	ctx := context.Background()
	r := &dane.Resolver{Servers: []string{w.ResolverAddr()}}
	session := func(host string, starttls bool) {
		ip, err := r.LookupIP(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := w.DialContext(ctx, "tcp", netip.AddrPortFrom(ip.Addrs[0], 25).String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		rw := struct {
			io.Reader
			io.Writer
		}{conn, conn}
		expect := func(code string) {
			t.Helper()
			buf := make([]byte, 4096)
			n, err := rw.Read(buf)
			if err != nil || !strings.Contains(string(buf[:n]), code) {
				t.Fatalf("%s: %q %v, want %s", host, buf[:n], err, code)
			}
		}
		expect("220")
		io.WriteString(rw, "EHLO client.example\r\n")
		expect("250 ")
		if starttls {
			io.WriteString(rw, "STARTTLS\r\n")
			expect("220")
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
			rw.Reader, rw.Writer = tc, tc
			io.WriteString(rw, "EHLO client.example\r\n")
			expect("250 ")
		}
		io.WriteString(rw, "MAIL FROM:<a@client.example>\r\n")
		expect("250")
		io.WriteString(rw, "QUIT\r\n")
		expect("221")
	}
	session("mx.nopolicy.example", true)
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("leaks after a TLS session: %q", l)
	}
	session("mx.nopolicy-nostarttls.example", false)
	l := w.Leaks()
	if len(l) != 1 || !strings.HasPrefix(l[0], "mx.nopolicy-nostarttls.example: session 1: MAIL FROM:") {
		t.Errorf("leaks = %q", l)
	}
}

func implicit(d Domain) []Host {
	if d.Implicit == nil {
		return nil
	}
	h := *d.Implicit
	h.Name, _ = idn.ToASCII(d.Name)
	return []Host{h}
}

func serverName(h Host) string {
	if h.Alias != "" {
		return h.Alias
	}
	return h.Name
}

// viaResolver resolves policy host names through r and dials with the
// world's hook, as the policy package does.
func viaResolver(r *dane.Resolver, w *World) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		ip, err := r.LookupIP(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(ip.Addrs) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return w.DialContext(ctx, network, net.JoinHostPort(ip.Addrs[0].String(), port))
	}
}
