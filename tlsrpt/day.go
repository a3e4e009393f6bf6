package tlsrpt

import (
	"fmt"
	"time"
)

// Day is a calendar day in UTC, the period one report covers (RFC 8460
// §4.1: "a full day, from 00:00-24:00 UTC"). Make one with DayOf or
// ParseDay; Days made that way compare with ==.
type Day struct {
	// Year is the year, such as 2024.
	Year int
	// Month is the month of the year.
	Month time.Month
	// Day is the day of the month, from 1.
	Day int
}

// DayOf returns the UTC day that t falls on.
func DayOf(t time.Time) Day {
	y, m, d := t.UTC().Date()
	return Day{Year: y, Month: m, Day: d}
}

// dayLayout is the text form of a Day.
const dayLayout = "2006-01-02"

// ParseDay parses a day written as YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(dayLayout, s)
	if err != nil {
		return Day{}, fmt.Errorf("tlsrpt: invalid day %q, want YYYY-MM-DD: %w", clip(s), err)
	}
	return DayOf(t), nil
}

// Start returns the first instant of the day, 00:00:00 UTC.
func (d Day) Start() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// End returns the last second of the day, 23:59:59 UTC: the end-datetime of
// the day's report, as in RFC 8460 Appendix B.
func (d Day) End() time.Time {
	return d.Start().AddDate(0, 0, 1).Add(-time.Second)
}

// AddDays returns the day n days later (earlier if n < 0).
func (d Day) AddDays(n int) Day { return DayOf(d.Start().AddDate(0, 0, n)) }

// Before reports whether d is an earlier day than e.
func (d Day) Before(e Day) bool { return d.Start().Before(e.Start()) }

// IsZero reports whether d is the zero Day.
func (d Day) IsZero() bool { return d == Day{} }

// String returns the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(dayLayout) }

// MarshalText returns the day as YYYY-MM-DD.
func (d Day) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a day written as YYYY-MM-DD.
func (d *Day) UnmarshalText(b []byte) error {
	v, err := ParseDay(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
