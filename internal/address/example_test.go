package address_test

import (
	"errors"
	"fmt"

	"github.com/smtpsecure/smtpsecure/internal/address"
)

func ExampleParse() {
	for _, s := range []string{
		"j\u00f6rg@b\u00fccher.example",
		"\"john smith\"@example.com",
		"alice@example.com>\r\nRCPT TO:<mallory@example.net",
	} {
		a, err := address.Parse(s)
		if err != nil {
			fmt.Println(errors.Is(err, address.ErrInvalid), err)
			continue
		}
		enc, err := a.Encode()
		if err != nil {
			panic(err)
		}
		fmt.Printf("MAIL FROM:<%s> SMTPUTF8 needed: %v\n", enc, a.NeedsSMTPUTF8())
	}
	// Output:
	// MAIL FROM:<jörg@xn--bcher-kva.example> SMTPUTF8 needed: true
	// MAIL FROM:<"john smith"@example.com> SMTPUTF8 needed: false
	// true invalid email address "alice@example.com>\r\nRCPT TO:<mallory@example.net": control character '\r' at offset 18
}
