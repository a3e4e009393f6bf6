module github.com/smtpsecure/smtpsecure/bench

go 1.26.0

require (
	github.com/emersion/go-smtp v0.25.1
	github.com/smtpsecure/smtpsecure v0.0.0
	github.com/wneessen/go-mail v0.8.1
)

require (
	github.com/emersion/go-msgauth v0.7.0 // indirect
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace github.com/smtpsecure/smtpsecure => ../
