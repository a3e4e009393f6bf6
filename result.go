package smtpsecure

// SendResult says what the server did with a message it accepted.
type SendResult struct {
	// Accepted lists the recipients the message was delivered to, in the
	// order given; never empty.
	Accepted []string
	// Rejected lists the recipients the server refused: the message was
	// not delivered to them.
	Rejected []*RecipientError
	// Reply is the server's text after the end of the message (it often
	// carries the queue ID).
	Reply string
}
