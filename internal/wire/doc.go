// Package wire reads and writes the SMTP wire format for a client that must
// not be confused by a hostile or broken server.
//
// The package has no notion of a session or of TLS; it only turns bytes into
// values and values into bytes, with hard limits on everything it reads:
//
//   - [Reader] reads replies (RFC 5321 §4.2). Every line is checked against
//     the reply-line grammar and every reply against [MaxLineLength],
//     [MaxReplyLines] and [MaxReplyBytes], so a server cannot make the client
//     allocate without bound or accept "250x" as a success. [Reader.Buffered]
//     tells a STARTTLS implementation whether the server sent bytes ahead of
//     the TLS handshake (the STARTTLS command-injection attack).
//   - [ParseEHLO] turns an EHLO reply into [Extensions]: the keyword table that
//     decides whether STARTTLS, AUTH, PIPELINING, CHUNKING, SMTPUTF8 and the
//     rest may be used.
//   - [ParseEnhancedCode] and [Reply.EnhancedCode] read RFC 3463 enhanced
//     status codes such as "5.7.8"; [EnhancedCode.Normalized] applies the
//     fallback rule for codes outside the IANA registry.
//   - [DataWriter] encodes message content for DATA (dot-stuffing and the end
//     marker) or BDAT (line-ending normalisation only). Bare CR and bare LF
//     become CRLF, so the encoded stream never contains a sequence that a
//     lenient server could read as an early end of data (SMTP smuggling).
//   - [ChunkWriter] cuts a stream into BDAT chunks (RFC 3030).
//   - [CheckArg], [XText] and [UTF8AddrXText] keep command arguments on one
//     line and encode ESMTP parameter values (RFC 3461, RFC 6533).
//
// For test servers and fuzzing the package also has the server's side of
// DATA: [NewDotReader] reads dot-stuffed content strictly (only CRLF "." CRLF
// ends it) and [DecodeXText] reverses [XText].
//
// A client reads a reply like this:
//
//	r := wire.NewReader(conn)
//	rep, err := r.ReadReply()
//	if err != nil {
//		return err // io.EOF, a *wire.ReplyError, or the I/O error
//	}
//	if rep.Code/100 != 2 {
//		return fmt.Errorf("server said %d %s", rep.Code, rep.Text())
//	}
//
// and sends a message with DATA like this:
//
//	dw := wire.NewDataWriter(bw, wire.DataOptions{DotStuff: true})
//	if _, err := io.Copy(dw, msg); err != nil {
//		return err // do not end the data: drop the connection
//	}
//	if err := dw.Close(); err != nil { // writes the final CRLF and ".\r\n"
//		return err
//	}
//	err := bw.Flush()
package wire
