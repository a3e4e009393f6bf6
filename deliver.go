package smtpsecure

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/address"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// Timeouts of MX delivery, per RFC 5321 §4.5.3.2: 5 minutes for the
// greeting (§4.5.3.2.1), for the replies to MAIL and RCPT (§4.5.3.2.2-3),
// and, as one bound at or above the RFC's minimums, for the reply to DATA
// (2 minutes, §4.5.3.2.4), each write of message data (3 minutes,
// §4.5.3.2.5), the TLS handshake and the other commands; 10 minutes for the
// reply after the end of the message (§4.5.3.2.6). A connection attempt is
// bounded by DefaultConnectTimeout. The context of a call caps them all.
const (
	mxGreetingTimeout = 5 * time.Minute
	mxCommandTimeout  = 5 * time.Minute
	mxDataTimeout     = 10 * time.Minute
)

// maxParallelDomains bounds the recipient domains one Deliver call works
// on at the same time.
const maxParallelDomains = 4

// MessageSource is a message that Deliver can read from the start as often
// as it needs: once to measure it, and once per session that sends it,
// never held in memory by Deliver. *bytes.Reader and *strings.Reader are
// MessageSources; so is a file, as io.NewSectionReader(f, 0, size).
type MessageSource interface {
	io.ReaderAt
	// Size returns the length of the message in octets.
	Size() int64
}

// TLSReportRecorder receives the TLS-RPT result (RFC 8460) of every session
// attempt, and of each plan, that Deliver and DialHost make. A
// *tlsrpt.Recorder is one. Nothing is recorded under a context marked with
// tlsrpt.WithReportDelivery: delivering a report never produces a report.
type TLSReportRecorder interface {
	Record(ctx context.Context, r tlsrpt.Result) error
}

// A Deliverer delivers mail straight to the MX hosts of the recipients'
// domains, under each domain's published policy (DANE, MTA-STS) and the
// local rules: see the package documentation, "Delivering to MX hosts".
//
// Its zero value works on a normal host: the resolvers of /etc/resolv.conf
// (DANE applies when one of them is a trusted, validating resolver; see
// package dane), the system roots, MTA-STS policies cached in memory,
// direct TCP connections, the published policy of every domain, and the
// host's FQDN in EHLO. Four fields point it at another world, as a test
// does: Resolver, RootCAs, MTASTSCacheDir and DialContext.
//
// Set the fields before the first call and do not change or copy the
// Deliverer afterwards; it is safe for concurrent use.
type Deliverer struct {
	// Resolver answers every DNS question: MX, addresses, TLSA, the
	// MTA-STS TXT record and policy host. Nil means a zero dane.Resolver,
	// the upstreams of /etc/resolv.conf; a test sets Servers to its own
	// DNS server's address.
	Resolver *dane.Resolver
	// RootCAs are the Web PKI roots for MX certificates (under MTA-STS
	// or a local verify rule) and for MTA-STS policy hosts. Nil means the
	// system roots.
	RootCAs *x509.CertPool
	// MTASTSCacheDir keeps MTA-STS policies in a directory, so that they
	// survive restarts (RFC 8461 §5.1); empty means a cache in memory.
	MTASTSCacheDir string
	// DialContext opens the TCP connections, to "ip:port" addresses: MX
	// hosts on port 25 and MTA-STS policy hosts on 443. Nil means a
	// net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Rules is the local policy, above every published one; nil follows
	// the published policies everywhere (see policy.Rules).
	Rules *policy.Rules
	// RequireDANEAndMTASTS makes a host with usable TLSA records that an
	// MTA-STS policy in mode enforce also covers satisfy both (see
	// policy.Planner). By default DANE alone decides for it (RFC 8461 §2).
	RequireDANEAndMTASTS bool
	// LocalName is the name sent with EHLO. Empty means the host's fully
	// qualified domain name (from its host name or /etc/hosts); when it
	// has none, the address literal of the connection's local address
	// (RFC 5321 §4.1.4), never "localhost", which receiving MTAs hold
	// against a sender.
	LocalName string
	// Logger receives a record of each session attempt, with its TLS-RPT
	// result, and of each recipient's outcome (Info, Warn for failures),
	// and of each plan and each SMTP command and reply (Debug). Nil means
	// no logging.
	Logger *slog.Logger
	// TLSReports, when set, receives one TLS-RPT result per session
	// attempt and the results of each plan: set it to a *tlsrpt.Recorder
	// to send TLS reports about your deliveries (see package tlsrpt).
	TLSReports TLSReportRecorder
	// Pool, when set, keeps MX sessions open after a delivery and reuses
	// each for later messages to the same host, but only for a message
	// whose requirement the session met (see MXPool for the rule). Nil
	// means a new session for every attempt, closed after its message.
	Pool *MXPool

	// Signer, when set, signs every message Deliver sends (a *DKIMSigner
	// adds a DKIM signature, which most receivers now expect of mail
	// delivered to their MX hosts): once per call, before the first
	// session, so that every MX host gets the same signed octets. The
	// message is read once more for it and is not held in memory; the
	// fields it returns are sent before the message. A message that
	// cannot be signed is not sent (Deliver returns a *SignError). TLS
	// reports sent with MailTLSReport are signed too.
	Signer MessageSigner

	// InsecureHonorTLSRequiredNo honours the header field "TLS-Required:
	// No" (RFC 8689 §4.2.2) of a message sent without REQUIRETLS: TLS is
	// still required where the plan requires it, but a failure of DANE or
	// MTA-STS authentication no longer stops the delivery (the failure is
	// still reported). Senders can set the field on any message, so a
	// relay that honours it lets its users opt out of their recipients'
	// policies; by default the field is ignored.
	InsecureHonorTLSRequiredNo bool

	once    sync.Once
	planner *policy.Planner
	fqdn    string // the default LocalName, "" for the address literal
	initErr error  // why the configuration is invalid
}

// init builds the planner and checks the configuration, once.
func (d *Deliverer) init() error {
	d.once.Do(func() {
		d.planner = &policy.Planner{
			Resolver:             d.Resolver,
			RootCAs:              d.RootCAs,
			DialContext:          d.DialContext,
			MTASTSCacheDir:       d.MTASTSCacheDir,
			Rules:                d.Rules,
			RequireDANEAndMTASTS: d.RequireDANEAndMTASTS,
			Logger:               d.Logger,
		}
		// The planner checks its configuration (the local rules, the
		// MTA-STS cache directory) when it builds its MTA-STS client.
		if _, err := d.planner.MTASTSClient(); err != nil {
			d.initErr = err
			return
		}
		if d.Pool != nil {
			if d.initErr = d.Pool.bind(d); d.initErr != nil {
				return
			}
		}
		if d.LocalName != "" {
			_, d.initErr = (&Dialer{LocalName: d.LocalName}).ehloName()
			return
		}
		d.fqdn = hostFQDN()
	})
	return d.initErr
}

// Planner returns the policy.Planner the Deliverer plans with, built from
// its fields on first use: to print a domain's plan (Planner.Plan) before
// probing its hosts with DialHost, or to renew cached MTA-STS policies
// (Planner.MTASTSClient). Do not change its fields. The planner reports an
// invalid configuration from each of its calls.
func (d *Deliverer) Planner() *policy.Planner {
	d.init()
	return d.planner
}

// defaultDeliverer serves the package-level Deliver.
var defaultDeliverer Deliverer

// Deliver delivers msg with a zero Deliverer, shared by every call: the
// system's resolvers and roots, MTA-STS policies cached in memory, the
// published policy of every domain. See Deliverer.Deliver.
func Deliver(ctx context.Context, env *Envelope, msg MessageSource) ([]RecipientResult, error) {
	return defaultDeliverer.Deliver(ctx, env, msg)
}

// Deliver delivers msg to every recipient of env at the MX hosts of the
// recipient's domain, and returns one result per recipient, in the order
// of env.To: delivered, or a temporary or permanent failure, with the
// server's reply, the host and address that gave it, how TLS was
// authenticated there and the rule that decided it.
//
// Recipients are grouped by domain: each domain gets one plan (package
// policy) and its recipients travel together, one transaction per session.
// Hosts are tried in the plan's order, and each of a host's addresses, never
// a host the plan excludes; a session must meet the host's requirement
// (TLS, and DANE or Web PKI authentication) before anything of the
// transaction is sent, or it is a *DowngradeError and the next address or
// host is tried. A connection failure, a 4xx greeting and a 4xx reply to
// MAIL or to the message also move on to the next address or host; a 5xx
// reply to a recipient ends that recipient, a 5xx reply to MAIL or to the
// message ends the recipients of the transaction. A connection lost after
// the whole message was sent leaves its recipients temporary without
// trying another host, so that they never get it twice. When the hosts run
// out, what failed is temporary. A domain's failures that no host can cure
// (a null MX, a domain that does not exist, an MTA-STS policy that lists
// none of its hosts even after a fresh look) are permanent at once.
//
// A message with env.RequireTLS (RFC 8689) goes only to hosts the plan
// allows for it (found through DNSSEC or listed by an MTA-STS policy in mode
// enforce, and authenticated) that advertise REQUIRETLS after STARTTLS;
// without one it fails permanently with 5.7.30 (ErrRequireTLS).
//
// msg is read from the start for each session that sends it, and once
// before to declare its size (SIZE, RFC 1870); with a Signer, once more
// before that, to sign it. env.AllOrNothing is not supported: the message
// goes to several domains and hosts independently.
//
// With a Pool, a session that met a host's requirement before carries the
// message instead of a new one (see MXPool).
//
// The error is non-nil only when nothing was attempted: an invalid
// envelope (an *AddressError, or an error matching ErrInvalidOptions), an
// invalid Deliverer (LocalName, Rules: policy.ErrRulesSyntax,
// MTASTSCacheDir, a Pool that serves another Deliverer), or a message the
// Signer did not sign (a *SignError, also when the context ended while it
// signed). A context that ends stops the delivery: the recipients not yet
// settled are temporary failures whose errors match the context's error.
func (d *Deliverer) Deliver(ctx context.Context, env *Envelope, msg MessageSource) ([]RecipientResult, error) {
	return d.deliver(ctx, env, msg, modeStrict)
}

// deliver is Deliver, with the mode of the sessions: strict, or relaxed
// for a TLS report (MailTLSReport).
func (d *Deliverer) deliver(ctx context.Context, env *Envelope, msg MessageSource, mode hostMode) ([]RecipientResult, error) {
	if err := d.init(); err != nil {
		return nil, err
	}
	m, err := d.prepare(ctx, env, msg, mode)
	if err != nil {
		return nil, err
	}
	groups := groupByDomain(env.To)
	results := make([]RecipientResult, len(env.To))
	sem := make(chan struct{}, maxParallelDomains)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dd := &domainDelivery{d: d, m: m, domain: g.domain, rcpts: g.rcpts}
			dd.run(ctx)
			for _, i := range g.index {
				results[i] = *dd.results[env.To[i]]
			}
		}()
	}
	wg.Wait()
	return results, nil
}

// domainGroup is the recipients of one domain, each once, in the order of
// Envelope.To.
type domainGroup struct {
	domain string
	rcpts  []string
	index  []int // positions in Envelope.To, duplicates included
}

// groupByDomain groups the recipients (already validated) by domain in
// A-labels, in the order they first appear.
func groupByDomain(to []string) []*domainGroup {
	var out []*domainGroup
	byName := map[string]*domainGroup{}
	seen := map[string]bool{}
	for i, r := range to {
		a, _ := address.Parse(r)
		dom, err := a.ASCIIDomain()
		if err != nil || dom == "" {
			dom = a.Domain // an address literal: the planner refuses it
		}
		g := byName[dom]
		if g == nil {
			g = &domainGroup{domain: dom}
			byName[dom] = g
			out = append(out, g)
		}
		g.index = append(g.index, i)
		if !seen[r] {
			seen[r] = true
			g.rcpts = append(g.rcpts, r)
		}
	}
	return out
}
