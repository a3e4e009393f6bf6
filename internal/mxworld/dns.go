package mxworld

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// publish adds a domain's records, servers and policy host.
func (w *World) publish(d Domain) error {
	name, err := aLabel(d.Name)
	if err != nil {
		return err
	}
	w.dns.SetZone(name, zoneRule(d.Signed))
	if d.MXBogus {
		w.dns.SetName(name, dnstest.Rule{Mode: dnstest.Bogus, EDEText: "validation failure <" + name + ". MX IN>"})
	}
	if d.NullMX {
		if err := w.dns.Add(name + ". 300 IN MX 0 ."); err != nil {
			return err
		}
	}
	for _, h := range d.MX {
		if err := w.dns.Add(fmt.Sprintf("%s. 300 IN MX %d %s.", name, h.Pref, h.Name)); err != nil {
			return err
		}
		if err := w.addHost(name, h); err != nil {
			return err
		}
	}
	if d.Implicit != nil {
		h := *d.Implicit
		h.Name = name
		if err := w.addHost(name, h); err != nil {
			return err
		}
	}
	if d.STS != nil {
		return w.addSTS(name, d.STS)
	}
	return nil
}

// addHost publishes an MX host's records and starts its server.
func (w *World) addHost(domain string, h Host) error {
	if _, err := netip.ParseAddr(h.Name); err == nil {
		return nil // an IP-literal MX target has no records and no server
	}
	owner := h.Name
	if h.Alias != "" {
		owner = h.Alias
		if err := w.dns.Add(fmt.Sprintf("%s. 300 IN CNAME %s.", h.Name, h.Alias)); err != nil {
			return err
		}
	}
	w.next4++
	addrs := []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(w.next4)})}
	if h.IPv6 {
		w.next6++
		a16 := netip.MustParseAddr("2001:db8::").As16()
		a16[15] = byte(w.next6)
		addrs = append(addrs, netip.AddrFrom16(a16))
	}
	for _, a := range addrs {
		typ := "A"
		if a.Is6() {
			typ = "AAAA"
		}
		if err := w.dns.Add(fmt.Sprintf("%s. 300 IN %s %s", owner, typ, a)); err != nil {
			return err
		}
	}
	if h.Do&AddressBogus != 0 {
		w.dns.SetName(owner, dnstest.Rule{Mode: dnstest.Bogus})
	}
	names := []string{owner}
	if owner != h.Name {
		names = append(names, h.Name)
	}
	leaf, err := w.pki.leaf(h.Cert, names, domain)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	rec, ok, err := w.pki.tlsa(h.TLSA, leaf)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if ok {
		tlsaOwner := "_25._tcp." + owner
		if err := w.dns.Add(fmt.Sprintf("%s. 300 IN TLSA %s", tlsaOwner, rec.String())); err != nil {
			return err
		}
		if h.TLSA == TLSABogus {
			w.dns.SetName(tlsaOwner, dnstest.Rule{Mode: dnstest.Bogus, EDEText: "signature expired"})
		}
	}
	if h.Do&Down != 0 {
		for _, a := range addrs {
			w.refused[a] = true
		}
		return nil
	}
	srv, err := startMX(owner, h, leaf)
	if err != nil {
		return err
	}
	w.servers[h.Name] = srv
	for _, a := range addrs {
		w.smtp[a] = srv.Addr()
	}
	return nil
}

// addSTS publishes a domain's MTA-STS record and policy.
func (w *World) addSTS(domain string, s *STS) error {
	id := s.ID
	if id == "" {
		id = "1"
	}
	if err := w.dns.Add(fmt.Sprintf("_mta-sts.%s. 300 IN TXT \"v=STSv1; id=%s\"", domain, id)); err != nil {
		return err
	}
	w.nextPolicy++
	addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(w.nextPolicy)})
	host := "mta-sts." + domain
	if err := w.dns.Add(fmt.Sprintf("%s. 300 IN A %s", host, addr)); err != nil {
		return err
	}
	w.policy[addr] = true
	leaf, err := w.pki.web.Issue(pkiLeaf(host))
	if err != nil {
		return err
	}
	text := policyText(s)
	served := text
	if s.Fetch404 {
		served = ""
	}
	w.https.add(host, leaf.TLSCertificate(), served)
	if s.CachedID != "" {
		p, err := mtasts.ParsePolicy([]byte(text))
		if err != nil {
			return fmt.Errorf("cached policy: %w", err)
		}
		w.seeds = append(w.seeds, &mtasts.Entry{Domain: domain, ID: s.CachedID, Policy: p})
	}
	return nil
}

func policyText(s *STS) string {
	var b strings.Builder
	b.WriteString("version: STSv1\r\nmode: " + s.Mode + "\r\n")
	for _, m := range s.MX {
		b.WriteString("mx: " + m + "\r\n")
	}
	b.WriteString("max_age: 86400\r\n")
	return b.String()
}
