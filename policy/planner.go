package policy

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// MaxHosts is the number of MX hosts a plan looks up, in order; later
// hosts are listed as excluded (ExcludedOverLimit). It bounds the DNS work
// a domain can cause.
const MaxHosts = 10

// lookupParallelism bounds the hosts looked up at the same time.
const lookupParallelism = 4

// Planner makes delivery plans. Its zero value works on a normal host: the
// resolvers of /etc/resolv.conf (DANE applies only if one of them is a
// trusted, validating resolver; see package dane), the system roots, an
// in-memory MTA-STS cache, direct TCP connections and LevelDANE for every
// domain.
//
// Every DNS question of a plan, the MTA-STS TXT record and the policy
// host's addresses included, goes to Resolver, so that a caller who points
// it at a resolver gets consistent answers. A test world needs to set only
// Resolver (its upstream address), RootCAs, MTASTSCacheDir and
// DialContext.
//
// Set the fields before the first Plan and do not change or copy the
// Planner afterwards; it is safe for concurrent use.
type Planner struct {
	// Resolver answers every DNS lookup; nil means a zero dane.Resolver
	// (the upstreams of /etc/resolv.conf).
	Resolver *dane.Resolver
	// RootCAs are the Web PKI roots for MX certificates under MTA-STS or a
	// verify rule, and for MTA-STS policy hosts; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// DialContext opens TCP connections to an address ("ip:port"): to
	// MTA-STS policy hosts, whose names are resolved through Resolver
	// first, and, in the SMTP client that follows the plan, to MX hosts.
	// nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MTASTSCacheDir is the directory of the MTA-STS policy cache (a
	// mtasts.FileStore, created if needed), so that policies survive
	// restarts; empty means a cache in memory.
	MTASTSCacheDir string
	// MTASTS, if set, is the MTA-STS client to use instead of the one the
	// Planner builds from the fields above; MTASTSCacheDir is then ignored.
	// Give it this Planner's Resolver and a DialContext that resolves
	// through it, or its answers may disagree with the plan's.
	MTASTS *mtasts.Client

	// Rules is the local policy; nil means LevelDANE for every domain.
	Rules *Rules
	// RequireDANEAndMTASTS makes a host that has usable TLSA records and
	// falls under an MTA-STS policy in mode enforce satisfy both: it must
	// be listed in the policy, and its certificate must match the TLSA
	// records and be valid under the Web PKI. By default DANE alone decides
	// for such a host (RFC 8461 §2).
	RequireDANEAndMTASTS bool
	// Rand shuffles MX hosts of equal preference (RFC 5321 §5.1); nil
	// means a random source. Tests set a fixed one. Calls are serialised.
	Rand rand.Source
	// Logger receives MTA-STS cache and refresh problems; nil discards
	// them.
	Logger *slog.Logger
	// Time returns the current time; nil means time.Now.
	Time func() time.Time

	once    sync.Once
	initErr error
	res     *dane.Resolver
	sts     *mtasts.Client
	rules   *compiledRules
	randMu  sync.Mutex
	rnd     *rand.Rand

	// canValidate overrides Resolver.CanValidate in tests of the
	// "DANE not checked" path, which needs an untrusted resolver.
	canValidate func() bool
}

func (p *Planner) init() error {
	p.once.Do(func() {
		p.res = p.Resolver
		if p.res == nil {
			p.res = &dane.Resolver{}
		}
		rules, err := p.Rules.compile()
		if err != nil {
			p.initErr = err
			return
		}
		p.rules = rules
		src := p.Rand
		if src == nil {
			src = rand.NewPCG(rand.Uint64(), rand.Uint64())
		}
		p.rnd = rand.New(src)
		p.sts = p.MTASTS
		if p.sts == nil {
			c := &mtasts.Client{
				Resolver:    p.res,
				RootCAs:     p.RootCAs,
				DialContext: p.dialViaResolver,
				Logger:      p.Logger,
				Time:        p.Time,
			}
			if p.MTASTSCacheDir != "" {
				fs, err := mtasts.NewFileStore(p.MTASTSCacheDir)
				if err != nil {
					p.initErr = fmt.Errorf("policy: MTA-STS cache directory: %w", err)
					return
				}
				c.Store = fs
			}
			p.sts = c
		}
	})
	return p.initErr
}

func (p *Planner) now() time.Time {
	if p.Time != nil {
		return p.Time()
	}
	return time.Now()
}

// dial opens a connection with DialContext or a net.Dialer.
func (p *Planner) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.DialContext != nil {
		return p.DialContext(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// MTASTSClient returns the MTA-STS client plans use, so that a long-running
// program can renew cached policies with its Refresh method.
func (p *Planner) MTASTSClient() (*mtasts.Client, error) {
	if err := p.init(); err != nil {
		return nil, err
	}
	return p.sts, nil
}

// Plan looks up the MX hosts of domain (U-labels or A-labels), their
// addresses and TLSA records and the domain's MTA-STS policy, applies the
// local rules and the precedence of the package documentation, and returns
// the plan.
//
// A domain that cannot receive mail now or ever (null MX, failed MX
// lookup, every host excluded) still gives a plan, with Err set to an
// *Error that says whether the failure is temporary; the plan explains it.
// The returned error is non-nil only when domain is not a valid domain name
// (an *Error matching ErrInvalidDomain), the Planner's configuration is
// invalid, or ctx ended.
func (p *Planner) Plan(ctx context.Context, domain string) (*Plan, error) {
	if err := p.init(); err != nil {
		return nil, err
	}
	d, err := idn.ToASCII(domain)
	if err != nil {
		return nil, &Error{Domain: domain, Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)}
	}
	rule, matched := p.rules.lookup(d)
	pl := &Plan{Domain: d, Rule: rule, Created: p.now()}
	if domain != d {
		pl.Input = domain
	}
	pl.DANEChecked = p.canValidateDNSSEC()
	pl.explainRule(matched)

	var sts *mtasts.Result
	var stsErr error
	var stsDone chan struct{}
	stsCtx, cancelSTS := context.WithCancel(ctx)
	defer cancelSTS()
	if rule.Level.usesPublished() {
		stsDone = make(chan struct{})
		go func() {
			defer close(stsDone)
			sts, stsErr = p.sts.Get(stsCtx, d)
		}()
	}

	targets := p.resolveMX(ctx, pl)
	for _, t := range targets {
		pl.Hosts = append(pl.Hosts, t.h)
	}
	if pl.Err != nil || len(targets) == 0 {
		cancelSTS() // the MTA-STS outcome cannot change the failure
	}
	if stsDone != nil {
		<-stsDone
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: planning delivery to %s: %w", d, err)
	}
	if pl.Err != nil {
		return pl, nil
	}
	if rule.Level.usesPublished() {
		if stsErr != nil {
			// Get fails only for an invalid domain (checked above) or an
			// ended context; treat anything else as no policy.
			sts = &mtasts.Result{Domain: d, Err: stsErr}
		}
		pl.sts = sts
		pl.MTASTS = stsInfo(sts)
		pl.explainSTS(sts)
	}

	p.lookupHosts(ctx, pl, targets)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: planning delivery to %s: %w", d, err)
	}
	for _, t := range targets {
		p.decide(pl, t)
	}
	pl.summarize()
	return pl, nil
}

func (p *Planner) canValidateDNSSEC() bool {
	if p.canValidate != nil {
		return p.canValidate()
	}
	return p.res.CanValidate()
}

// shuffle puts the hosts of each run of equal preference in random order.
func (p *Planner) shuffle(hosts []*Host) {
	p.randMu.Lock()
	defer p.randMu.Unlock()
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Preference == hosts[i].Preference {
			j++
		}
		run := hosts[i:j]
		p.rnd.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		i = j
	}
}
