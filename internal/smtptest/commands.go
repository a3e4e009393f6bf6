package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// extensions returns the EHLO extension lines for the current state.
func (c *Conn) extensions() []string {
	s := c.srv
	if c.TLS() {
		if s.TLSExtensions != nil {
			return s.TLSExtensions
		}
		out := make([]string, 0, len(s.Extensions))
		for _, e := range s.Extensions {
			if extKeyword(e) != "STARTTLS" {
				out = append(out, e)
			}
		}
		return out
	}
	if s.TLSConfig != nil && !s.ImplicitTLS && !hasExt(s.Extensions, "STARTTLS") {
		return append(append([]string(nil), s.Extensions...), "STARTTLS")
	}
	return s.Extensions
}

// offered reports whether keyword was advertised in the EHLO reply of the
// current state (false before EHLO and after HELO).
func (c *Conn) offered(keyword string) bool {
	return c.ehlo && hasExt(c.extensions(), keyword)
}

// reply writes a one-line reply, with the enhanced status code when
// ENHANCEDSTATUSCODES is in the current extension list.
func (c *Conn) reply(code int, enhanced, text string) error {
	var b strings.Builder
	b.WriteString(strconv.Itoa(code))
	b.WriteByte(' ')
	if enhanced != "" && hasExt(c.extensions(), "ENHANCEDSTATUSCODES") {
		b.WriteString(enhanced)
		b.WriteByte(' ')
	}
	b.WriteString(text)
	b.WriteString("\r\n")
	return c.Write(b.String())
}

// dispatch is the default handling of a command.
func (c *Conn) dispatch(cmd Command) (quit bool, err error) {
	switch cmd.Verb {
	case "EHLO", "HELO":
		return false, c.cmdHello(cmd)
	case "STARTTLS":
		return false, c.cmdStartTLS(cmd)
	case "AUTH":
		return false, c.cmdAuth(cmd)
	case "MAIL":
		return false, c.cmdMail(cmd)
	case "RCPT":
		return false, c.cmdRcpt(cmd)
	case "DATA":
		return false, c.cmdData(cmd)
	case "BDAT":
		return false, c.cmdBDAT(cmd)
	case "RSET":
		if len(cmd.Line) != len("RSET") {
			return false, c.reply(501, "5.5.4", "Syntax error: RSET takes no argument")
		}
		c.tx = nil
		return false, c.reply(250, "2.0.0", "OK")
	case "NOOP":
		return false, c.reply(250, "2.0.0", "OK")
	case "QUIT":
		if err := c.reply(221, "2.0.0", c.srv.hostname()+" closing connection"); err != nil {
			return false, err
		}
		return true, nil
	case "":
		return false, c.reply(500, "5.5.2", "Syntax error: empty command")
	default:
		return false, c.reply(502, "5.5.1", "Command not supported")
	}
}

func (c *Conn) cmdHello(cmd Command) error {
	if strings.TrimSpace(cmd.Arg) == "" {
		return c.reply(501, "5.5.4", "Syntax error: "+cmd.Verb+" needs a domain or address literal")
	}
	c.tx = nil
	c.greeted = true
	c.ehlo = cmd.Verb == "EHLO"
	host := c.srv.hostname()
	if !c.ehlo {
		return c.Write("250 " + host + "\r\n")
	}
	ext := c.extensions()
	var b strings.Builder
	sep := "-"
	if len(ext) == 0 {
		sep = " "
	}
	b.WriteString("250" + sep + host + " greets " + cmd.Arg + "\r\n")
	for i, e := range ext {
		sep = "-"
		if i == len(ext)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + e + "\r\n")
	}
	return c.Write(b.String())
}

func (c *Conn) cmdStartTLS(cmd Command) error {
	switch {
	case len(cmd.Line) != len("STARTTLS"):
		return c.reply(501, "5.5.4", "Syntax error: STARTTLS takes no argument")
	case c.TLS():
		return c.reply(503, "5.5.1", "TLS already active")
	case !c.greeted:
		return c.reply(503, "5.5.1", "Send EHLO first")
	case !c.offered("STARTTLS"):
		return c.reply(502, "5.5.1", "STARTTLS not offered")
	case c.srv.TLSConfig == nil:
		return c.reply(454, "4.7.0", "TLS not available")
	}
	if err := c.reply(220, "2.0.0", "Ready to start TLS"); err != nil {
		return err
	}
	return c.StartTLS()
}

// checkGreeted answers 503 to a command that needs EHLO or HELO first.
func (c *Conn) checkGreeted() (bool, error) {
	if !c.greeted {
		return false, c.reply(503, "5.5.1", "Send EHLO or HELO first")
	}
	return true, nil
}

func (c *Conn) cmdMail(cmd Command) error {
	if ok, err := c.checkGreeted(); !ok {
		return err
	}
	switch {
	case c.tx != nil:
		return c.reply(503, "5.5.1", "Nested MAIL command")
	case c.srv.RequireTLS && !c.TLS():
		return c.reply(530, "5.7.0", "Must issue a STARTTLS command first")
	case c.srv.RequireAuth && !c.authed:
		return c.reply(530, "5.7.0", "Authentication required")
	}
	from, params, err := parsePathArg(cmd.Arg, "FROM:")
	if err != nil {
		return c.reply(501, "5.5.4", "Syntax error in MAIL: "+err.Error())
	}
	if from != "" && !validMailbox(from) {
		return c.reply(553, "5.1.7", "Malformed sender address")
	}
	tx := &transaction{from: from, params: map[string]string{}}
	for _, p := range params {
		code, enh, msg := c.checkMailParam(p, tx)
		if code != 0 {
			return c.reply(code, enh, msg)
		}
		tx.params[p.Key] = p.Value
	}
	if !isASCII(from) && !tx.smtputf8 {
		return c.reply(553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8")
	}
	c.tx = tx
	return c.reply(250, "2.1.0", "Sender OK")
}

// checkMailParam validates one MAIL parameter; code 0 means accepted.
func (c *Conn) checkMailParam(p param, tx *transaction) (code int, enh, msg string) {
	notOffered := func(ext string) (int, string, string) {
		return 555, "5.5.4", p.Key + " parameter not supported (" + ext + " not offered)"
	}
	syntax := func(why string) (int, string, string) {
		return 501, "5.5.4", "Syntax error in parameter " + p.Key + ": " + why
	}
	switch p.Key {
	case "SIZE":
		if !c.offered("SIZE") {
			return notOffered("SIZE")
		}
		n, err := strconv.ParseInt(p.Value, 10, 64)
		if err != nil || n < 0 || p.Value == "" || p.Value[0] == '+' {
			return syntax("not a number")
		}
		if c.srv.MaxMessageSize > 0 && n > c.srv.MaxMessageSize {
			return 552, "5.3.4", "Message size exceeds fixed limit"
		}
	case "BODY":
		switch strings.ToUpper(p.Value) {
		case "7BIT":
			if !c.offered("8BITMIME") && !c.offered("BINARYMIME") {
				return notOffered("8BITMIME")
			}
		case "8BITMIME":
			if !c.offered("8BITMIME") {
				return notOffered("8BITMIME")
			}
		case "BINARYMIME":
			if !c.offered("BINARYMIME") {
				return notOffered("BINARYMIME")
			}
		default:
			return syntax("expected 7BIT, 8BITMIME or BINARYMIME")
		}
		tx.body = strings.ToUpper(p.Value)
	case "SMTPUTF8":
		if !c.offered("SMTPUTF8") {
			return notOffered("SMTPUTF8")
		}
		if p.HasValue {
			return syntax("takes no value")
		}
		tx.smtputf8 = true
	case "REQUIRETLS":
		if !c.offered("REQUIRETLS") {
			return notOffered("REQUIRETLS")
		}
		if p.HasValue {
			return syntax("takes no value")
		}
	case "RET":
		if !c.offered("DSN") {
			return notOffered("DSN")
		}
		if v := strings.ToUpper(p.Value); v != "FULL" && v != "HDRS" {
			return syntax("expected FULL or HDRS")
		}
	case "ENVID":
		if !c.offered("DSN") {
			return notOffered("DSN")
		}
		if !p.HasValue || !isXText(p.Value) || len(p.Value) > 100 {
			return syntax("expected xtext of at most 100 octets")
		}
	case "AUTH":
		if !c.offered("AUTH") {
			return notOffered("AUTH")
		}
		if !p.HasValue || (p.Value != "<>" && !isXText(p.Value)) {
			return syntax("expected xtext or <>")
		}
	default:
		return 555, "5.5.4", "Unsupported parameter " + p.Key
	}
	return 0, "", ""
}

// isXText reports whether s is valid RFC 3461 xtext.
func isXText(s string) bool {
	_, err := wire.DecodeXText(s)
	return err == nil
}

func (c *Conn) cmdRcpt(cmd Command) error {
	if ok, err := c.checkGreeted(); !ok {
		return err
	}
	switch {
	case c.tx == nil:
		return c.reply(503, "5.5.1", "Need MAIL before RCPT")
	case c.tx.bdat:
		return c.reply(503, "5.5.1", "RCPT after BDAT")
	case len(c.tx.to) >= MaxRecipients:
		return c.reply(452, "4.5.3", "Too many recipients")
	}
	to, params, err := parsePathArg(cmd.Arg, "TO:")
	if err != nil {
		return c.reply(501, "5.5.4", "Syntax error in RCPT: "+err.Error())
	}
	if !validMailbox(to) && !strings.EqualFold(to, "postmaster") {
		return c.reply(553, "5.1.3", "Malformed recipient address")
	}
	if !isASCII(to) && !c.tx.smtputf8 {
		return c.reply(553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8")
	}
	pm := map[string]string{}
	for _, p := range params {
		switch p.Key {
		case "NOTIFY":
			if !c.offered("DSN") {
				return c.reply(555, "5.5.4", "NOTIFY parameter not supported (DSN not offered)")
			}
			if !validNotify(p.Value) {
				return c.reply(501, "5.5.4", "Syntax error in parameter NOTIFY")
			}
		case "ORCPT":
			if !c.offered("DSN") {
				return c.reply(555, "5.5.4", "ORCPT parameter not supported (DSN not offered)")
			}
			typ, addr, ok := strings.Cut(p.Value, ";")
			if !ok || !validKeyword(typ) || addr == "" || !isXText(addr) {
				return c.reply(501, "5.5.4", "Syntax error in parameter ORCPT")
			}
		default:
			return c.reply(555, "5.5.4", "Unsupported parameter "+p.Key)
		}
		pm[p.Key] = p.Value
	}
	c.tx.to = append(c.tx.to, to)
	c.tx.rcptParams = append(c.tx.rcptParams, pm)
	return c.reply(250, "2.1.5", "Recipient OK")
}

// validNotify checks the NOTIFY value of RFC 3461 section 4.1: NEVER alone,
// or a list of SUCCESS, FAILURE and DELAY.
func validNotify(v string) bool {
	parts := strings.Split(strings.ToUpper(v), ",")
	seen := map[string]bool{}
	for _, p := range parts {
		switch p {
		case "NEVER":
			if len(parts) != 1 {
				return false
			}
		case "SUCCESS", "FAILURE", "DELAY":
		default:
			return false
		}
		if seen[p] {
			return false
		}
		seen[p] = true
	}
	return true
}

func (c *Conn) cmdData(cmd Command) error {
	if ok, err := c.checkGreeted(); !ok {
		return err
	}
	switch {
	case len(cmd.Line) != len("DATA"):
		return c.reply(501, "5.5.4", "Syntax error: DATA takes no argument")
	case c.tx == nil:
		return c.reply(503, "5.5.1", "Need MAIL before DATA")
	case c.tx.bdat:
		return c.reply(503, "5.5.1", "DATA after BDAT in the same transaction")
	case c.tx.body == "BINARYMIME":
		return c.reply(503, "5.5.1", "BODY=BINARYMIME needs BDAT")
	case len(c.tx.to) == 0:
		return c.reply(554, "5.5.1", "No valid recipients")
	}
	if err := c.Write("354 Start mail input; end with <CRLF>.<CRLF>\r\n"); err != nil {
		return err
	}
	return c.readData()
}

// limit is the largest message the server keeps.
func (c *Conn) limit() int64 {
	if c.srv.MaxMessageSize > 0 {
		return c.srv.MaxMessageSize
	}
	return maxDataCap
}

// readData reads the message content after a 354 reply, then finishes the
// transaction.
func (c *Conn) readData() error {
	limit := c.limit()
	var buf bytes.Buffer
	dr := wire.NewDotReader(c.r)
	n, err := io.Copy(&buf, io.LimitReader(dr, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		if _, err := io.Copy(io.Discard, dr); err != nil {
			return err
		}
		c.srv.logf("C: (message data over %d octets)", limit)
		c.tx = nil
		return c.reply(552, "5.3.4", "Message size exceeds fixed limit")
	}
	c.srv.logf("C: (%d octets of message data)", n)
	tx := c.tx
	if tx == nil {
		tx = &transaction{params: map[string]string{}}
	}
	tx.data = buf.Bytes()
	return c.endOfData(tx, 0)
}

// endOfData runs the EOD hook and sends the final reply for a complete
// message; the message is recorded when that reply is positive.
func (c *Conn) endOfData(tx *transaction, chunks int) error {
	c.tx = nil
	m := c.newMessage(tx, chunks)
	c.pending = m
	handled, reply := c.callHook(Command{Verb: "EOD", TLS: c.TLS()})
	c.pending = nil
	if handled {
		if c.closed() != nil {
			return nil
		}
		if strings.HasPrefix(reply, "2") {
			c.srv.addMessage(m)
		}
		return c.Write(reply)
	}
	c.srv.addMessage(m)
	return c.reply(250, "2.0.0", "Message accepted for delivery")
}

// newMessage is the record of the transaction whose data just ended.
func (c *Conn) newMessage(tx *transaction, chunks int) *Message {
	m := &Message{
		From:       tx.from,
		MailParams: tx.params,
		To:         tx.to,
		RcptParams: tx.rcptParams,
		Data:       tx.data,
		Chunks:     chunks,
		TLS:        c.TLS(),
		AuthUser:   c.authUser,
	}
	if m.Data == nil {
		m.Data = []byte{}
	}
	return m
}

func (c *Conn) cmdBDAT(cmd Command) error {
	size, last, perr := parseBDAT(cmd.Arg)
	if perr != nil {
		// Without a valid size the chunk cannot be skipped; the client's
		// stream is lost, as it would be with any server.
		if c.tx != nil {
			c.tx.bdatFailed = true
		}
		return c.reply(501, "5.5.4", "Syntax error in BDAT: "+perr.Error())
	}
	// fail consumes the chunk, then answers with an error; later BDATs of
	// the transaction get 503.
	fail := func(code int, enh, text string) error {
		if _, err := io.CopyN(io.Discard, c.r, size); err != nil {
			return err
		}
		if c.tx != nil {
			c.tx.bdatFailed = true
		}
		return c.reply(code, enh, text)
	}
	switch {
	case !c.greeted:
		return fail(503, "5.5.1", "Send EHLO first")
	case !c.offered("CHUNKING"):
		return fail(502, "5.5.1", "BDAT not offered (no CHUNKING)")
	case c.tx == nil:
		return fail(503, "5.5.1", "Need MAIL before BDAT")
	case c.tx.bdatFailed:
		return fail(503, "5.5.1", "BDAT after a failed BDAT; send RSET")
	case len(c.tx.to) == 0:
		return fail(554, "5.5.1", "No valid recipients")
	}
	tx := c.tx
	tx.bdat = true
	tx.chunks++
	limit := c.limit()
	if tx.size+size > limit {
		tx.size += size
		return fail(552, "5.3.4", "Message size exceeds fixed limit")
	}
	buf := bytes.NewBuffer(tx.data)
	if _, err := io.CopyN(buf, c.r, size); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	tx.data = buf.Bytes()
	tx.size += size
	c.srv.logf("C: (%d octets of BDAT chunk)", size)
	if !last {
		return c.reply(250, "2.0.0", fmt.Sprintf("%d octets received", size))
	}
	if tx.data == nil {
		tx.data = []byte{}
	}
	return c.endOfData(tx, tx.chunks)
}

// errAuthCancelled is returned by readAuthResponse for the "*" line.
var errAuthCancelled = errors.New("authentication cancelled")

// cmdAuth runs an AUTH exchange (RFC 4954).
func (c *Conn) cmdAuth(cmd Command) error {
	if ok, err := c.checkGreeted(); !ok {
		return err
	}
	mechs := authMechanisms(c.extensions())
	switch {
	case !c.ehlo || len(mechs) == 0:
		return c.reply(502, "5.5.1", "AUTH not offered")
	case c.authed:
		return c.reply(503, "5.5.1", "Already authenticated")
	case c.tx != nil:
		return c.reply(503, "5.5.1", "AUTH not permitted during a mail transaction")
	case c.srv.RequireTLS && !c.TLS():
		return c.reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
	}
	mech, ir, hasIR := strings.Cut(cmd.Arg, " ")
	if mech == "" {
		return c.reply(501, "5.5.4", "Syntax error: AUTH needs a mechanism")
	}
	mech = asciiUpper(mech)
	listed := false
	for _, m := range mechs {
		listed = listed || m == mech
	}
	factory := c.mechanism(mech)
	if !listed || factory == nil {
		return c.reply(504, "5.5.4", "Unrecognized authentication type")
	}
	var resp []byte
	if hasIR {
		switch ir {
		case "=":
			resp = []byte{}
		case "*":
			return c.reply(501, "5.7.0", "Authentication cancelled")
		default:
			b, err := base64.StdEncoding.Strict().DecodeString(ir)
			if err != nil || ir == "" {
				return c.reply(501, "5.5.2", "Cannot decode the initial response (base64)")
			}
			resp = b
		}
	}
	srv := factory(c)
	if srv == nil {
		return c.reply(504, "5.5.4", "Unrecognized authentication type")
	}
	for round := 0; ; round++ {
		if round > 16 {
			return c.reply(535, "5.7.8", "Authentication credentials invalid (too many rounds)")
		}
		chal, done, err := srv.Next(resp)
		if err != nil {
			c.srv.logf("smtptest: AUTH %s failed: %v", mech, err)
			return c.reply(535, "5.7.8", "Authentication credentials invalid")
		}
		if done && len(chal) == 0 {
			break
		}
		if err := c.Write("334 " + base64.StdEncoding.EncodeToString(chal) + "\r\n"); err != nil {
			return err
		}
		resp, err = c.readAuthResponse()
		switch {
		case errors.Is(err, errAuthCancelled):
			return c.reply(501, "5.7.0", "Authentication cancelled")
		case errors.Is(err, errLineTooLong), errors.Is(err, errBadLine):
			return c.reply(500, "5.5.6", "Authentication exchange line is too long or malformed")
		case isCorrupt(err):
			return c.reply(501, "5.5.2", "Cannot decode the response (base64)")
		case err != nil:
			return err
		}
		if done {
			if len(resp) != 0 {
				return c.reply(535, "5.7.8", "Authentication credentials invalid (expected an empty response)")
			}
			break
		}
	}
	user := ""
	if u, ok := srv.(interface{ Username() string }); ok {
		user = u.Username()
	}
	c.authed, c.authUser = true, user
	c.sess.setAuth(user, mech)
	return c.reply(235, "2.7.0", "Authentication successful")
}

func isCorrupt(err error) bool {
	var ce base64.CorruptInputError
	return errors.As(err, &ce)
}

// readAuthResponse reads one SASL response line and decodes it.
func (c *Conn) readAuthResponse() ([]byte, error) {
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	c.srv.logf("C: (SASL response, %d octets)", len(line))
	if line == "*" {
		return nil, errAuthCancelled
	}
	return base64.StdEncoding.Strict().DecodeString(line)
}

// mechanism returns the factory of a SASL mechanism, nil if unknown or
// disabled.
func (c *Conn) mechanism(name string) func(*Conn) SASLServer {
	if f, ok := c.srv.Mechanisms[name]; ok {
		return f
	}
	return builtinMechanisms[name]
}
