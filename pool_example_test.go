package smtpsecure_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// A Pool shared by the goroutines of an application: each Send takes one of
// at most MaxSessions verified sessions, which are reused and closed with
// QUIT when the pool is closed.
func ExamplePool() {
	srv := smtptest.NewServer() // in a real program: &smtpsecure.Dialer{Host: "smtp.example.com", Auth: ...}
	defer srv.Close()

	pool := &smtpsecure.Pool{Dialer: srv.Dialer(), MaxSessions: 2}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 1; i <= 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("From: app@example.com\r\nTo: user%d@example.net\r\nSubject: report %d\r\n\r\nHello.\r\n", i, i)
			env := &smtpsecure.Envelope{From: "app@example.com", To: []string{fmt.Sprintf("user%d@example.net", i)}}
			if _, err := pool.Send(ctx, env, strings.NewReader(msg)); err != nil {
				log.Print(err)
			}
		}()
	}
	wg.Wait()
	if err := pool.Close(ctx); err != nil {
		log.Print(err)
	}
	fmt.Println("messages:", len(srv.Messages()))
	fmt.Println("sessions:", len(srv.Sessions()) <= 2)
	// Output:
	// messages: 6
	// sessions: true
}

// Mailer is how an application's code might want to send mail: a function
// value, which the pool's SendMail method is.
type Mailer struct {
	From string
	Send func(ctx context.Context, from string, to []string, msg io.Reader) error
}

// Welcome sends a welcome message to a new user.
func (m *Mailer) Welcome(ctx context.Context, to string) error {
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: Welcome\r\n\r\nYour account is ready.\r\n"
	return m.Send(ctx, m.From, []string{to}, strings.NewReader(msg))
}

// A framework's mail adapter plugs in Pool.SendMail: nil means every
// recipient got the message, an error that nobody did (or, for an
// *UncertainDeliveryError, that the connection failed after the whole
// message was sent).
func ExamplePool_SendMail() {
	srv := smtptest.NewServer()
	defer srv.Close()
	pool := &smtpsecure.Pool{Dialer: srv.Dialer()}
	defer pool.Close(context.Background())

	m := &Mailer{From: "app@example.com", Send: pool.SendMail}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Welcome(ctx, "new.user@example.net"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(srv.Messages()[0].Header.Get("Subject"), srv.Messages()[0].To)
	// Output: Welcome [new.user@example.net]
}
