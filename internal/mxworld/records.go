package mxworld

// AddRecord publishes one more DNS record, in zone file form ("name. TTL
// IN TYPE data"), under the rules of its zone: a TLS-RPT record for a
// domain of the table, say. It is for tests that need a record the table
// does not describe.
func (w *World) AddRecord(rr string) error { return w.dns.Add(rr) }
