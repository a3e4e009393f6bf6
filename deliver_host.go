package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// hostMode says how a session to an MX host treats the authentication its
// requirement asks for.
type hostMode int

const (
	// modeStrict: the Dialer enforces the host's requirement during the
	// handshake; a session that does not meet it carries nothing.
	modeStrict hostMode = iota
	// modeRelaxed: TLS is required where the plan requires it, but the
	// certificate is checked after the handshake, and a failure is
	// reported rather than refused. Only for a TLS report (RFC 8460 §5.3)
	// and for a message whose "TLS-Required: No" the Deliverer honours
	// (RFC 8689 §4.2.2).
	modeRelaxed
)

// DialHost connects to one MX host of a plan (see Planner) at one of its
// addresses, on port 25, and returns a session that meets the host's
// requirement: TLS (unless a local insecure-… rule says otherwise) and the
// certificate authenticated as the plan says, by DANE, the Web PKI (against
// RootCAs and the requirement's names), both, or not at all. A session that
// does not meet it is a *DowngradeError whose ReportResultType is the RFC
// 8460 result type, and nothing of a mail transaction was sent. The
// Client's ServerAuth says how the server was authenticated.
//
// It is the session Deliver makes for each host: EHLO with LocalName, the
// timeouts of RFC 5321 §4.5.3.2, the TLS-RPT result recorded in TLSReports
// and logged. A host the plan excludes, or an address that is not one of
// the host's, is refused with an error matching ErrInvalidOptions. The
// caller sends with the Client and ends it with Quit.
func (d *Deliverer) DialHost(ctx context.Context, h *policy.Host, addr netip.Addr) (*Client, error) {
	c, _, err := d.dialHost(ctx, h, addr, modeStrict, nil)
	return c, err
}

// dialHost makes one session attempt and returns the Client, or nil and
// the error, and in both cases what the attempt was, with its TLS-RPT
// result, which it records and logs. cache, if set, is the TLS session
// cache of the sessions made for the same host and requirement (MXPool).
func (d *Deliverer) dialHost(ctx context.Context, h *policy.Host, addr netip.Addr, mode hostMode, cache tls.ClientSessionCache) (*Client, *Attempt, error) {
	if err := d.init(); err != nil {
		return nil, nil, err
	}
	switch {
	case h == nil:
		return nil, nil, optionsErr("nil policy.Host")
	case !h.Usable():
		return nil, nil, optionsErr("MX host %s is excluded by its plan (%s): %s", h.Name, h.Excluded.Code, h.Excluded.Detail)
	case !slices.Contains(h.Addrs, addr):
		return nil, nil, optionsErr("%s is not an address of MX host %s in its plan", addr, h.Name)
	}
	rq := &h.Requirement
	att := &Attempt{Host: h.Name, Addr: addr, Source: h.Source, Requirement: rq.String()}
	conn, err := d.dialMX(ctx, h.Name, addr)
	if err != nil {
		att.Err = err
		d.logAttempt(ctx, att)
		return nil, att, err
	}
	local := localIP(conn)
	dl, err := d.dialerFor(h, mode, local, cache)
	var p *plan
	if err == nil {
		p, err = dl.prepare()
	}
	if err != nil {
		// The configuration, not the host: no attempt to speak of.
		conn.Close()
		return nil, nil, err
	}
	c, err := dl.open(ctx, conn, p)
	att.TLS = c.tlsState != nil
	att.ServerAuth = c.ServerAuth()
	att.DANEMatch = c.DANEMatch()
	att.Err = err

	// The TLS outcome of the session, for TLS-RPT (RFC 8460 §4.3): a
	// session that got as far as STARTTLS counts, as a success or with
	// the result type of its failure. One that failed before (refused
	// connection, 4xx greeting, timeout) is a network failure, which RFC
	// 8460 §4.3.4 leaves out.
	var dg *DowngradeError
	counted, resultType, reason := false, "", ""
	switch {
	case errors.As(err, &dg):
		dg.mx = true
		counted, resultType, reason = true, dg.ReportResultType(), reasonCode(dg)
	case ctx.Err() != nil:
	case c.tlsState != nil:
		counted = true
		if err == nil && mode == modeRelaxed && rq.Auth.Authenticated() {
			// The certificate was not checked during the handshake: check
			// it now, for the result and for the report.
			sa, m, verr := verifyAfter(rq, *c.tlsState)
			att.ServerAuth, att.DANEMatch = sa, m
			if verr != nil {
				resultType = resultTypeOf(verr)
				d.log(ctx, slog.LevelWarn, "smtp MX session authentication failed, delivering anyway",
					slog.String("mx", h.Name), slog.String("error", verr.Error()))
			}
		}
	case err == nil:
		// Plaintext under a local insecure-… rule: no TLS at all.
		counted, resultType = true, rfc8460.STARTTLSNotSupported
	}
	if counted && err == nil && resultType == "" && h.Testing != nil {
		// MTA-STS in mode testing: report what enforce would have refused,
		// and deliver (RFC 8461 §5).
		resultType, _ = h.Testing.Check(c.tlsState)
	}
	if counted && h.Report != nil {
		att.Report = &tlsrpt.Result{
			Time:                time.Now(),
			Policy:              *h.Report,
			ResultType:          resultType,
			SendingIP:           local,
			ReceivingMXHostname: h.Name,
			ReceivingMXHelo:     c.peerName,
			ReceivingIP:         addr,
			FailureReasonCode:   reason,
		}
		d.record(ctx, *att.Report)
	}
	d.logAttempt(ctx, att)
	if err != nil {
		return nil, att, err
	}
	return c, att, nil
}

// acquire is where a domain delivery gets the session of an attempt with
// h at addr: from Pool when there is one, else a new session that ends
// after the message. A delivery whose sessions check the certificate after
// the handshake (modeRelaxed) always makes its own. fresh asks for a new
// session; requireTLS says that the message asks for REQUIRETLS.
func (d *Deliverer) acquire(ctx context.Context, h *policy.Host, addr netip.Addr, mode hostMode, requireTLS, fresh bool) (mxLease, *Attempt, error) {
	if d.Pool == nil || mode != modeStrict {
		c, att, err := d.dialHost(ctx, h, addr, mode, nil)
		return mxLease{c: c}, att, err
	}
	return d.Pool.acquire(ctx, d, h, addr, requireTLS, fresh)
}

// release hands back the session of an attempt after its message, whose
// error was err: to the pool, or it says QUIT. It reports whether the
// message must be sent again on a new session, because a reused session
// turned out to be closed before anything of it was written.
func (d *Deliverer) release(ctx context.Context, l mxLease, err error) (retry bool) {
	if l.pooled {
		return d.Pool.release(ctx, l.c, err)
	}
	l.c.quitQuietly(ctx)
	l.c.releaseBuffers()
	return false
}

// dialMX opens the TCP connection to addr on port 25, with
// DefaultConnectTimeout.
func (d *Deliverer) dialMX(ctx context.Context, host string, addr netip.Addr) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
	defer cancel()
	target := netip.AddrPortFrom(addr, policy.Port).String()
	var conn net.Conn
	var err error
	if d.DialContext != nil {
		conn, err = d.DialContext(dctx, "tcp", target)
	} else {
		var nd net.Dialer
		conn, err = nd.DialContext(dctx, "tcp", target)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &ConnError{Host: net.JoinHostPort(host, strconv.Itoa(policy.Port)), Op: "connecting to " + target, Err: err}
	}
	return conn, nil
}

// dialerFor returns the Dialer that enforces the host's requirement, as
// the policy package documents the mapping, with cache (if set) as its TLS
// session cache.
func (d *Deliverer) dialerFor(h *policy.Host, mode hostMode, local netip.Addr, cache tls.ClientSessionCache) (*Dialer, error) {
	dl, err := d.dialerForRequirement(h, mode, local)
	if err != nil || cache == nil || dl.InsecurePlaintext {
		return dl, err
	}
	if dl.TLSConfig == nil {
		dl.TLSConfig = &tls.Config{}
	}
	// dialerForRequirement made this TLSConfig: it is the Dialer's own.
	dl.TLSConfig.ClientSessionCache = cache
	return dl, nil
}

// dialerForRequirement is dialerFor without the session cache.
func (d *Deliverer) dialerForRequirement(h *policy.Host, mode hostMode, local netip.Addr) (*Dialer, error) {
	rq := &h.Requirement
	dl := &Dialer{
		Host:            h.Name,
		Port:            policy.Port,
		LocalName:       d.localName(local),
		GreetingTimeout: mxGreetingTimeout,
		CommandTimeout:  mxCommandTimeout,
		DataTimeout:     mxDataTimeout,
		Logger:          d.Logger,
	}
	sni := rq.ServerName
	if sni == "" {
		sni = h.Name
	}
	switch rq.TLS {
	case policy.TLSInsecurePlaintext:
		dl.InsecurePlaintext = true
		return dl, nil
	case policy.TLSInsecureOpportunistic:
		dl.InsecureOpportunisticTLS, dl.InsecureSkipVerify = true, true
		dl.TLSConfig = &tls.Config{ServerName: sni}
		return dl, nil
	case policy.TLSRequired:
	default:
		return nil, optionsErr("MX host %s: unknown TLS requirement %s", h.Name, rq.TLS)
	}
	if rq.Auth == policy.AuthNone || mode == modeRelaxed {
		// TLS required, the certificate not checked during the handshake
		// (RFC 7672 §1.3, or relaxed: checked after it).
		dl.InsecureSkipVerify = true
		dl.TLSConfig = &tls.Config{ServerName: sni}
		return dl, nil
	}
	switch rq.Auth {
	case policy.AuthWebPKI:
		dl.TLSConfig = &tls.Config{RootCAs: d.RootCAs, ServerName: sni}
		if len(rq.WebPKINames) > 1 || len(rq.WebPKINames) == 1 && !idn.Equal(rq.WebPKINames[0], sni) {
			dl.webPKINames = rq.WebPKINames
		}
	case policy.AuthDANE, policy.AuthDANEAndWebPKI:
		if rq.DANE == nil {
			return nil, optionsErr("MX host %s requires DANE but its plan has no verifier", h.Name)
		}
		dl.DANE = rq.DANE
		if rq.Auth == policy.AuthDANEAndWebPKI {
			dl.VerifyConnection = rq.VerifyWebPKI
		}
	default:
		return nil, optionsErr("MX host %s: unknown authentication %s", h.Name, rq.Auth)
	}
	return dl, nil
}

// localName returns the EHLO name for a connection from local: LocalName,
// else the host's FQDN, else the address literal of local.
func (d *Deliverer) localName(local netip.Addr) string {
	switch {
	case d.LocalName != "":
		return d.LocalName
	case d.fqdn != "":
		return d.fqdn
	case local.IsValid():
		return local.String() // sent as an address literal
	}
	// A connection without an IP address (a test's pipe): nothing better.
	return "localhost"
}

// localIP returns the local IP address of conn, if it has one.
func localIP(conn net.Conn) netip.Addr {
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// verifyAfter checks a completed session against its requirement's
// authentication, for a relaxed session, and says how it authenticated the
// server.
func verifyAfter(rq *policy.Requirement, cs tls.ConnectionState) (ServerAuth, *dane.Match, error) {
	switch rq.Auth {
	case policy.AuthWebPKI:
		if err := rq.VerifyWebPKI(cs); err != nil {
			return ServerAuthNone, nil, err
		}
		return ServerAuthWebPKI, nil, nil
	case policy.AuthDANE, policy.AuthDANEAndWebPKI:
		if rq.DANE == nil {
			return ServerAuthNone, nil, rq.VerifyConnection(cs) // says what is missing
		}
		m, err := rq.DANE.Verify(cs.PeerCertificates)
		if err != nil {
			return ServerAuthNone, nil, err
		}
		if rq.Auth == policy.AuthDANEAndWebPKI {
			if err := rq.VerifyWebPKI(cs); err != nil {
				return ServerAuthNone, nil, err
			}
		}
		if m.Record.Usage == dane.DANETA {
			return ServerAuthDANETA, m, nil
		}
		return ServerAuthDANEEE, m, nil
	}
	return ServerAuthNone, nil, nil
}

// resultTypeOf returns the RFC 8460 result type of a verification error.
func resultTypeOf(err error) string {
	var r interface{ ReportResultType() string }
	if errors.As(err, &r) && rfc8460.Known(r.ReportResultType()) {
		return r.ReportResultType()
	}
	return rfc8460.ValidationFailure
}

// reasonCode is the failure-reason-code of a downgrade (RFC 8460 §4.4):
// the server's reply code to EHLO or STARTTLS, or the TLS alert the server
// sent.
func reasonCode(dg *DowngradeError) string {
	var se *SMTPError
	if errors.As(dg.Err, &se) {
		return strconv.Itoa(se.Code)
	}
	var oe *net.OpError
	if errors.As(dg.Err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		return oe.Err.Error() // "tls: handshake failure"
	}
	return ""
}

// record gives a TLS-RPT result to TLSReports, unless the work is the
// delivery of a report (tlsrpt.WithReportDelivery), which must not be
// counted (RFC 8460 §5.3).
func (d *Deliverer) record(ctx context.Context, r tlsrpt.Result) {
	if d.TLSReports == nil || tlsrpt.IsReportDelivery(ctx) {
		return
	}
	// A delivery cut short by its context still counts what it did.
	if err := d.TLSReports.Record(context.WithoutCancel(ctx), r); err != nil {
		d.log(ctx, slog.LevelWarn, "smtp TLS report result not recorded", slog.String("error", err.Error()))
	}
}

// logAttempt logs one session attempt and its TLS-RPT result.
func (d *Deliverer) logAttempt(ctx context.Context, a *Attempt) {
	if d.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("mx", a.Host),
		slog.String("ip", a.Addr.String()),
		slog.String("rule", a.Source.String()),
		slog.String("requirement", a.Requirement),
		slog.Bool("tls", a.TLS),
		slog.String("server_auth", a.ServerAuth.String()),
	}
	if a.Reused {
		attrs = append(attrs, slog.Bool("reused", true))
	}
	if r := a.Report; r != nil {
		result := r.ResultType
		if result == "" {
			result = "success"
		}
		attrs = append(attrs,
			slog.String("tlsrpt_policy", r.Policy.Type),
			slog.String("tlsrpt_result", result),
			slog.String("sending_ip", addrString(r.SendingIP)),
			slog.String("receiving_mx_helo", r.ReceivingMXHelo),
		)
		if r.FailureReasonCode != "" {
			attrs = append(attrs, slog.String("failure_reason_code", r.FailureReasonCode))
		}
	}
	level := slog.LevelInfo
	if a.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", a.Err.Error()))
	}
	d.Logger.LogAttrs(ctx, level, "smtp MX session", attrs...)
}

// logResult logs what became of one recipient.
func (d *Deliverer) logResult(ctx context.Context, r *RecipientResult) {
	if d.Logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("recipient", r.Recipient), slog.String("outcome", r.Outcome.String())}
	if r.Host != "" {
		attrs = append(attrs, slog.String("mx", r.Host), slog.String("ip", addrString(r.Addr)), slog.String("rule", r.Source.String()))
	}
	level := slog.LevelInfo
	if r.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	} else {
		attrs = append(attrs, slog.String("server_auth", r.ServerAuth.String()), slog.String("reply", r.Reply))
	}
	d.Logger.LogAttrs(ctx, level, "smtp delivery", attrs...)
}

func (d *Deliverer) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if d.Logger != nil {
		d.Logger.LogAttrs(ctx, level, msg, attrs...)
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
