package smtpsecure

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// maxHostsFile bounds what is read of /etc/hosts.
const maxHostsFile = 1 << 20

// hostFQDN returns the host's fully qualified domain name in A-labels, or ""
// when it has none: the host name when it has a dot, else the name that
// /etc/hosts gives it (as the resolver library does for "hostname -f").
// It asks no DNS server.
func hostFQDN() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	var hosts []byte
	if f, err := os.Open("/etc/hosts"); err == nil {
		hosts, _ = io.ReadAll(io.LimitReader(f, maxHostsFile))
		f.Close()
	}
	return fqdnFrom(name, hosts)
}

// fqdnFrom picks the FQDN of hostname: hostname itself when it is one, else
// the first name with a dot on an /etc/hosts line (hosts) that lists
// hostname.
func fqdnFrom(hostname string, hosts []byte) string {
	if n, ok := fqdn(hostname); ok {
		return n
	}
	sc := bufio.NewScanner(bytes.NewReader(hosts))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		listed := false
		for _, n := range f[1:] {
			if strings.EqualFold(strings.TrimSuffix(n, "."), hostname) {
				listed = true
			}
		}
		if !listed {
			continue
		}
		for _, n := range f[1:] {
			if a, ok := fqdn(n); ok {
				return a
			}
		}
	}
	return ""
}

// fqdn returns name in A-labels if it is a fully qualified domain name
// that a receiving MTA may accept in EHLO: at least two labels, not a
// localhost name, not an IP address.
func fqdn(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if !strings.Contains(name, ".") {
		return "", false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", false
	}
	a, err := idn.ToASCII(name)
	if err != nil || a == "localhost" || strings.HasPrefix(a, "localhost.") || strings.HasSuffix(a, ".localhost") {
		return "", false
	}
	return a, true
}
