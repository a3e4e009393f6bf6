package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// maxMessage is the largest message the command reads from standard input:
// 64 MiB, more than any submission server accepts (Gmail 35 MB, Microsoft
// 365 150 MB after encoding is the exception). The whole message is read
// first, for -t and DKIM.
const maxMessage = 64 << 20

// maxHeaderFields bounds the header fields the command parses.
const maxHeaderFields = 10000

// headerField is one field of a message header, as written: Raw holds its
// lines, folded continuation lines included, each ending in CRLF.
type headerField struct {
	Name string // as written
	Raw  []byte
}

// value returns the field's value, unfolded, without the name.
func (f headerField) value() string {
	_, v, _ := strings.Cut(string(f.Raw), ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.TrimSpace(v)
}

// message is a message read from standard input: its header fields and its
// body, with CRLF line ends.
type message struct {
	Fields []headerField
	Body   []byte // after the empty line that ends the header
}

// readMessage reads a message from r, up to maxMessage octets. Without
// ignoreDots a line with a single "." ends it, as in sendmail; line ends are
// normalised to CRLF.
func readMessage(r io.Reader, ignoreDots bool) (*message, error) {
	br := bufio.NewReader(io.LimitReader(r, maxMessage+1))
	var buf bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			buf.Write(line)
			if buf.Len() > maxMessage {
				return nil, codef(exitDataErr, "the message is larger than %d MiB", maxMessage>>20)
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, codef(exitIOErr, "reading the message: %v", err)
		}
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		atLineStart := buf.Len() == 0 || buf.Bytes()[buf.Len()-1] == '\n'
		if !ignoreDots && atLineStart && string(content) == "." && (len(line) > len(content) || errors.Is(err, io.EOF)) {
			break
		}
		buf.Write(content)
		if len(line) > len(content) {
			buf.WriteString("\r\n")
		}
		if buf.Len() > maxMessage {
			return nil, codef(exitDataErr, "the message is larger than %d MiB", maxMessage>>20)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return splitMessage(buf.Bytes())
}

// splitMessage splits a CRLF message into header fields and body. The
// header ends at the first empty line, or at the first line that is
// neither a field nor a continuation (the rest is then body).
func splitMessage(data []byte) (*message, error) {
	m := &message{}
	rest := data
	for len(rest) > 0 {
		end := bytes.Index(rest, []byte("\r\n"))
		var line []byte
		if end < 0 {
			line, end = rest, len(rest)
		} else {
			line = rest[:end+2]
			end += 2
		}
		switch {
		case bytes.Equal(line, []byte("\r\n")):
			m.Body = rest[end:]
			return m, nil
		case (line[0] == ' ' || line[0] == '\t') && len(m.Fields) > 0:
			last := &m.Fields[len(m.Fields)-1]
			last.Raw = append(last.Raw, line...)
			if !bytes.HasSuffix(last.Raw, []byte("\r\n")) {
				last.Raw = append(last.Raw, "\r\n"...)
			}
		default:
			name, ok := fieldName(line)
			if !ok {
				m.Body = rest
				return m, nil
			}
			if len(m.Fields) >= maxHeaderFields {
				return nil, codef(exitDataErr, "the message header has more than %d fields", maxHeaderFields)
			}
			raw := append([]byte(nil), line...)
			if !bytes.HasSuffix(raw, []byte("\r\n")) {
				raw = append(raw, "\r\n"...)
			}
			m.Fields = append(m.Fields, headerField{Name: name, Raw: raw})
		}
		rest = rest[end:]
	}
	return m, nil
}

// fieldName returns the name of a header field line: printable ASCII other
// than ":" up to the first ":" (RFC 5322 §2.2).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	for _, c := range line[:i] {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(line[:i]), true
}

// get returns the values of the fields named name, in order.
func (m *message) get(name string) []string {
	var out []string
	for _, f := range m.Fields {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.value())
		}
	}
	return out
}

// has reports whether the header has a field named name.
func (m *message) has(name string) bool { return len(m.get(name)) > 0 }

// remove deletes every field named name.
func (m *message) remove(name string) {
	m.Fields = slices.DeleteFunc(m.Fields, func(f headerField) bool { return strings.EqualFold(f.Name, name) })
}

// add appends a field at the end of the header.
func (m *message) add(name, value string) {
	m.Fields = append(m.Fields, headerField{Name: name, Raw: []byte(name + ": " + value + "\r\n")})
}

// bytes returns the message with CRLF line ends.
func (m *message) bytes() []byte {
	var b bytes.Buffer
	for _, f := range m.Fields {
		b.Write(f.Raw)
	}
	b.WriteString("\r\n")
	b.Write(m.Body)
	return b.Bytes()
}

// headerIs8Bit reports whether the header holds octets above 127 (UTF-8
// fields under RFC 6532), which need SMTPUTF8.
func (m *message) headerIs8Bit() bool {
	for _, f := range m.Fields {
		for _, c := range f.Raw {
			if c >= 0x80 {
				return true
			}
		}
	}
	return false
}

// headerRecipients returns the addresses of the To, Cc and Bcc fields
// (for -t), or those of the first block of Resent-To, Resent-Cc and
// Resent-Bcc fields when the message has Resent- fields (a resent message,
// RFC 5322 §3.6.6).
func (m *message) headerRecipients() ([]string, error) {
	names := []string{"To", "Cc", "Bcc"}
	fields := m.Fields
	if first := m.resentBlock(); first >= 0 {
		names = []string{"Resent-To", "Resent-Cc", "Resent-Bcc"}
		end := first
		for end < len(fields) && strings.HasPrefix(strings.ToLower(fields[end].Name), "resent-") {
			end++
		}
		fields = fields[first:end]
	}
	var out []string
	for _, f := range fields {
		if !containsFold(names, f.Name) {
			continue
		}
		v := f.value()
		if v == "" {
			continue
		}
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return nil, codef(exitDataErr, "reading the recipients of the %s field: %v", f.Name, err)
		}
		for _, a := range list {
			out = append(out, a.Address)
		}
	}
	return out, nil
}

// resentBlock returns the index of the first Resent- field, or -1.
func (m *message) resentBlock() int {
	for i, f := range m.Fields {
		if strings.HasPrefix(strings.ToLower(f.Name), "resent-") {
			return i
		}
	}
	return -1
}

// fromAddress returns the address of the From field, for
// --read-envelope-from.
func (m *message) fromAddress() (string, error) {
	v := m.get("From")
	if len(v) == 0 {
		return "", codef(exitDataErr, "--read-envelope-from: the message has no From field")
	}
	list, err := mail.ParseAddressList(v[0])
	if err != nil || len(list) == 0 {
		return "", codef(exitDataErr, "--read-envelope-from: reading the From field: %v", err)
	}
	return list[0].Address, nil
}

// completeHeader adds or changes the fields msmtp's set_from_header,
// set_date_header, set_msgid_header, undisclosed_recipients and
// remove_bcc_headers ask for: From (name from -F) when there is none (or
// always, with "on"), Date and Message-ID when there are none.
func (m *message) completeHeader(c *submitConfig, from, fullName string, now time.Time) {
	if c.RemoveBcc {
		m.remove("Bcc")
		m.remove("Resent-Bcc")
	}
	if c.Undisclosed {
		m.remove("To")
		m.remove("Cc")
		m.remove("Bcc")
		m.add("To", "undisclosed-recipients:;")
	}
	setFrom := c.SetFromHeader == "on" || (c.SetFromHeader == "auto" && !m.has("From"))
	if setFrom && from != "" {
		m.remove("From")
		if fullName == "" {
			m.add("From", from)
		} else {
			m.add("From", (&mail.Address{Name: fullName, Address: from}).String())
		}
	}
	if c.SetDateHeader == "auto" && !m.has("Date") {
		m.add("Date", now.Format(time.RFC1123Z))
	}
	if c.SetMsgIDHeader == "auto" && !m.has("Message-ID") {
		m.add("Message-ID", newMessageID(from, now))
	}
}

// newMessageID returns a unique Message-ID in the domain of from.
func newMessageID(from string, now time.Time) string {
	var b [12]byte
	rand.Read(b[:])
	domain := "localhost"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	return fmt.Sprintf("<%d.%s@%s>", now.Unix(), hex.EncodeToString(b[:]), domain)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
