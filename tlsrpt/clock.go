package tlsrpt

import "time"

// Clock tells the time and waits. Where a Clock field is nil, the system
// clock is used; tests supply their own.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// now returns c.Now(), or time.Now() when c is nil.
func now(c Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}
