// Package tlsrpt is SMTP TLS Reporting (RFC 8460) for programs that deliver
// mail: it records the TLS outcome of every delivery attempt, turns a day of
// outcomes into the report a receiving domain asked for, and sends it.
//
// # What TLS-RPT is
//
// A domain that protects its inbound mail with DANE (RFC 7672) or MTA-STS
// (RFC 8461) cannot see the senders that fail to reach it securely: an
// expired certificate, a TLSA record that no longer matches, or an attacker
// stripping STARTTLS all happen on the sender's side. With TLS-RPT the
// domain publishes where it wants to hear about them, in a TXT record:
//
//	_smtp._tls.example.com. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://tlsrpt.example.com/v1"
//
// and every sender that delivers to it counts, per UTC day, its sessions
// under each policy (successful, and failed by result type and host) and
// sends the day's counts as a JSON report, gzipped, by mail or HTTPS POST.
// Reports count sessions; they never name messages or recipients.
//
// # Record the outcome of each session
//
// A Recorder counts Results into a Store. The root package's Deliver
// produces one Result per session attempt: the policy it was made under
// (PolicyTLSA, PolicySTS or PolicyNone, with the policy strings and MX
// host patterns), and either success or the result type of the failure
// (one of the Result… constants) with the addresses and names involved.
//
//	store, err := tlsrpt.NewFileStore("/var/lib/myapp/tlsrpt")
//	rec := tlsrpt.NewRecorder(store)
//	// for each session attempt, with the context of the delivery:
//	err = rec.Record(ctx, result)
//
// Record only adds to counts in memory, never waits for the disk, and is
// safe for concurrent use; Flush writes the counts to the Store (a
// Scheduler does that for you). The Store holds counts per policy domain
// and UTC day, per policy and per distinct failure, never per session, so
// it grows with the number of distinct failures, not with the number of
// messages; limits (MaxPolicies, MaxFailureDetails, field lengths) keep it
// small whatever servers say. MemoryStore keeps counts in memory,
// FileStore in a directory where they survive restarts.
//
// # Build a report
//
// A Submitter says who sends the reports. Build turns what the Store holds
// for one domain and day into the report of RFC 8460 §4; Gzip compresses it
// and FileName names it:
//
//	sub := tlsrpt.Submitter{OrganizationName: "Example Sender", Domain: "sender.example"}
//	agg, err := store.Load(ctx, tlsrpt.Key{Domain: "example.com", Day: tlsrpt.DayOf(yesterday)})
//	rep, err := sub.Build(agg, "")      // a new random report ID
//	gz, err := rep.Gzip()               // application/tlsrpt+gzip
//	msg, err := sub.Message(rep, []string{"tlsrpt@example.com"}, time.Now())
//
// ParseReport reads reports, JSON or gzip, including those of senders that
// write "mx-host" as a string rather than an array.
//
// # Send the reports
//
// A Scheduler does all of it once a day: for each policy domain with counts
// for a day before today, it looks up the domain's record (LookupRecord),
// builds the report and sends it once to each reporting URI, spread over a
// window after midnight UTC, retrying failures with backoff for up to a day
// and remembering in the Store what was sent, so that a restart sends
// nothing twice:
//
//	sched := &tlsrpt.Scheduler{
//		Store:     store,
//		Recorder:  rec,
//		Submitter: sub,
//		Mail:      sendMail, // a MailFunc, for mailto: URIs
//	}
//	go sched.Run(ctx)
//
// https: URIs get an HTTP POST over verified TLS (HTTPPoster). mailto: URIs
// get a multipart/report message handed to the MailFunc, whose contract
// its documentation spells out: deliver the report even when TLS to the
// reporting domain fails (RFC 8460 §5.3), have it DKIM-signed, and say when
// a failure is permanent.
//
// # Reports about reports
//
// Delivering a report is a delivery too, and must not produce reports of its
// own (RFC 8460 §5.3). The Scheduler sends under a context marked with
// WithReportDelivery; Recorder.Record drops every result recorded under such
// a context. A delivery function therefore only has to pass the context of
// the delivery to Record, and can use IsReportDelivery to know that a
// message is a report that must go out even without authenticated TLS.
//
// # Rules applied
//
//   - The record is looked up at _smtp._tls.<domain>. in A-labels. Records
//     not starting with v=TLSRPTv1 are ignored; if not exactly one is left,
//     or it breaks the grammar of RFC 8460 §3, the domain gets no report.
//     Several rua fields are allowed; unknown fields are ignored. Reporting
//     URIs must be RFC 3986 URIs with "," and "!" percent-encoded; URIs of
//     schemes other than mailto and https are kept but not sent to.
//   - A report covers one policy domain and one UTC day, 00:00:00Z to
//     23:59:59Z, with one entry per policy; "mx-host" and "policy-string"
//     are arrays (erratum 6241). Its file name is
//     submitter!policy-domain!begin!end!report-id.json.gz, with the times in
//     seconds since the epoch (RFC 8460 §5.1).
//   - The Result… constants are the one public list of RFC 8460 result
//     types; the ReportResultType methods of the errors of packages
//     smtpsecure, dane and mtasts return these strings.
//
// The package does not DKIM-sign mail (the MailFunc does), does not send
// reports as uncompressed JSON, and keeps no record per session.
package tlsrpt
