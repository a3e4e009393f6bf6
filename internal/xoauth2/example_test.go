package xoauth2_test

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/smtpsecure/smtpsecure/internal/xoauth2"
)

// The client side of a refused token, as an SMTP session sees it.
func Example() {
	c := xoauth2.NewClient("someuser@example.com", "ya29.expired-token")
	mech, ir, _ := c.Start()
	fmt.Printf("C: AUTH %s %s...\n", mech, base64.StdEncoding.EncodeToString(ir)[:24])

	// S: 334 eyJzdGF0dXMiOiI0MDEi... (the JSON error status, base64)
	challenge := []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`)
	resp, _ := c.Next(challenge)
	fmt.Printf("C: %q (empty response)\n", resp)

	// S: 535 5.7.8 Username and Password not accepted
	var e *xoauth2.Error
	if errors.As(c.(*xoauth2.Client).Err(), &e) {
		fmt.Println("status", e.Status, "scope", e.Scope)
	}
	// Output:
	// C: AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFt...
	// C: "" (empty response)
	// status 401 scope https://mail.google.com/
}
