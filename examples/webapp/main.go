// Command webapp shows how a Go web application sends mail through a
// smtpsecure.Pool: its handlers send from many goroutines at once over a
// few verified, reused sessions, and the pool closes them on shutdown.
//
// The application's code knows only a function value,
//
//	func(ctx context.Context, from string, to []string, msg io.Reader) error
//
// which is what mail adapters of web frameworks take; Pool.SendMail is one.
// It runs offline: a test SMTP server on loopback (package smtptest) stands in
// for the provider, and the program sends sign-up requests to its own HTTP
// server, then prints what the SMTP server received.
//
//	go run ./examples/webapp
//	go run ./examples/webapp -listen 127.0.0.1:8080   # and keep serving
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// SendFunc is the shape the application sends mail with.
type SendFunc func(ctx context.Context, from string, to []string, msg io.Reader) error

// App is the web application: its handlers and what they need.
type App struct {
	From     string
	SendMail SendFunc
}

// Routes returns the application's HTTP handler.
func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signup", a.signup)
	return mux
}

// signup sends a welcome message to the address in the form. The request's
// context bounds the send: a client that goes away cancels it, and a Send
// waiting for a free session gives up without a trace.
func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	addr, err := mail.ParseAddress(r.FormValue("email"))
	if err != nil {
		http.Error(w, "a valid email address is needed", http.StatusBadRequest)
		return
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Welcome\r\nDate: %s\r\n\r\nYour account is ready.\r\n",
		a.From, addr.Address, time.Now().Format(time.RFC1123Z))
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err = a.SendMail(ctx, a.From, []string{addr.Address}, strings.NewReader(msg))
	var uncertain *smtpsecure.UncertainDeliveryError
	switch {
	case errors.As(err, &uncertain):
		// The message went out but the answer did not come back: it may
		// have arrived. Say so rather than invite a duplicate.
		log.Printf("welcome mail to %s may or may not have been sent: %v", addr.Address, err)
		http.Error(w, "we could not confirm that the welcome mail was sent", http.StatusAccepted)
	case err != nil:
		log.Printf("welcome mail to %s not sent: %v", addr.Address, err)
		http.Error(w, "the welcome mail could not be sent; try again later", http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "welcome mail sent to %s\n", addr.Address)
	}
}

func main() {
	listen := flag.String("listen", "", "serve HTTP on this address until interrupted, instead of the built-in demo requests")
	flag.Parse()
	if err := run(*listen); err != nil {
		log.Fatal(err)
	}
}

func run(listen string) error {
	// The provider's server. In a real application this is
	//	&smtpsecure.Dialer{Host: "smtp.example.com", Auth: smtpsecure.PasswordAuth(user, os.Getenv("SMTP_PASSWORD"))}
	smtpSrv := smtptest.NewUnstartedServer()
	smtpSrv.Users = map[string]string{"app@example.test": "app password"}
	smtpSrv.Start()
	defer smtpSrv.Close()
	d := smtpSrv.Dialer()
	d.Auth = smtpsecure.PasswordAuth("app@example.test", "app password")

	// One pool for the whole program, shared by every handler.
	pool := &smtpsecure.Pool{Dialer: d, MaxSessions: 3}
	app := &App{From: "app@example.test", SendMail: pool.SendMail}

	serve := listen != ""
	if !serve {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: app.Routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	if serve {
		log.Printf("serving on %s; try: curl -d email=you@example.test %s/signup", url, url)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		<-ctx.Done()
		stop()
	} else if err := demo(url); err != nil {
		return err
	}

	// Shutdown order: stop taking requests (the ones under way finish and
	// their mail is sent), then close the pool, which says QUIT to every
	// session.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := pool.Close(ctx); err != nil {
		return err
	}
	fmt.Printf("the SMTP server received %d messages over %d sessions:\n", len(smtpSrv.Messages()), len(smtpSrv.Sessions()))
	for _, m := range smtpSrv.Messages() {
		fmt.Printf("  %s to %v, TLS %v, as %s\n", m.Header.Get("Subject"), m.To, m.TLS != nil, m.AuthUser)
	}
	return nil
}

// demo signs up ten users at once, as ten browsers would.
func demo(url string) error {
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(url+"/signup", map[string][]string{"email": {fmt.Sprintf("user%d@example.test", i)}})
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("signup %d: %s: %s", i, resp.Status, body)
				return
			}
			fmt.Print(string(body))
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
