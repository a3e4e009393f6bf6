package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

func ExampleReader_ReadReply() {
	conn := strings.NewReader("220 mx.example.com ESMTP ready\r\n" +
		"535 5.7.8 Authentication credentials invalid\r\n" +
		"250x this is not SMTP\r\n")
	r := wire.NewReader(conn)
	for {
		rep, err := r.ReadReply()
		if err != nil {
			fmt.Println("error:", errors.Is(err, wire.ErrMalformedReply))
			return
		}
		code, ok := rep.EnhancedCode()
		fmt.Println(rep.Code, code, ok, rep.Text())
	}
	// Output:
	// 220  false mx.example.com ESMTP ready
	// 535 5.7.8 true 5.7.8 Authentication credentials invalid
	// error: true
}

func ExampleParseEHLO() {
	r := wire.NewReader(strings.NewReader("250-mx.example.com at your service\r\n" +
		"250-SIZE 35882577\r\n" +
		"250-AUTH LOGIN PLAIN XOAUTH2\r\n" +
		"250-pipelining\r\n" +
		"250 STARTTLS\r\n"))
	rep, err := r.ReadReply()
	if err != nil {
		panic(err)
	}
	domain, ext := wire.ParseEHLO(rep)
	size, _ := ext.MaxSize()
	fmt.Println(domain)
	fmt.Println(ext.Keywords())
	fmt.Println(ext.Has("PIPELINING"), size, ext.AuthMechanisms())
	// Output:
	// mx.example.com
	// [AUTH PIPELINING SIZE STARTTLS]
	// true 35882577 [LOGIN PLAIN XOAUTH2]
}

func ExampleEnhancedCode_Normalized() {
	for _, text := range []string{"5.7.8 Bad credentials", "4.7.99 Site-specific code", "Hello"} {
		code, rest, ok := wire.ParseEnhancedCode(text)
		fmt.Printf("%q %v %q -> %v\n", code.String(), ok, rest, code.Normalized())
	}
	// Output:
	// "5.7.8" true "Bad credentials" -> 5.7.8
	// "4.7.99" true "Site-specific code" -> 4.0.0
	// "" false "Hello" ->
}

func ExampleDataWriter() {
	var conn bytes.Buffer
	d := wire.NewDataWriter(&conn, wire.DataOptions{DotStuff: true})
	// LF line endings, a line holding a single dot and a missing final
	// line break: all made safe.
	if _, err := io.WriteString(d, "Subject: test\n\nfirst\n.\nlast"); err != nil {
		panic(err) // drop the connection: never end the data after an error
	}
	if err := d.Close(); err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", conn.String())
	// Output:
	// "Subject: test\r\n\r\nfirst\r\n..\r\nlast\r\n.\r\n"
}

func ExampleChunkWriter() {
	c := wire.NewChunkWriter(8, wire.ChunkFunc(func(chunk []byte, last bool) error {
		if last {
			fmt.Printf("BDAT %d LAST %q\n", len(chunk), chunk)
		} else {
			fmt.Printf("BDAT %d %q\n", len(chunk), chunk)
		}
		return nil // a real send writes the command and chunk and reads the reply
	}))
	d := wire.NewDataWriter(c, wire.DataOptions{}) // BDAT: no dot-stuffing
	if _, err := io.WriteString(d, "Subject: hi\n\n.\n"); err != nil {
		panic(err)
	}
	if err := d.Close(); err != nil {
		panic(err)
	}
	if err := c.Close(); err != nil {
		panic(err)
	}
	// Output:
	// BDAT 8 "Subject:"
	// BDAT 8 " hi\r\n\r\n."
	// BDAT 2 LAST "\r\n"
}

func ExampleNewDotReader() {
	// What a strict server reads after 354: a smuggling attempt with bare
	// LFs stays content, and the next command stays unread.
	conn := bufio.NewReader(strings.NewReader("a\n.\nMAIL FROM:<evil@example>\r\n..b\r\n.\r\nQUIT\r\n"))
	content, err := io.ReadAll(wire.NewDotReader(conn))
	if err != nil {
		panic(err)
	}
	next, _ := conn.ReadString('\n')
	fmt.Printf("%q\n%q\n", content, next)
	// Output:
	// "a\n.\nMAIL FROM:<evil@example>\r\n.b\r\n"
	// "QUIT\r\n"
}

func ExampleXText() {
	fmt.Println(wire.XText("a+b=c@example.com"))
	fmt.Println(wire.UTF8AddrXText("j\u00f6rg@example.com"))
	// Output:
	// a+2Bb+3Dc@example.com
	// j\x{F6}rg@example.com
}
