package tlsrpt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// Record two sessions to example.com under its MTA-STS policy, one that
// succeeded and one that met an expired certificate, then build the day's
// report.
func Example() {
	ctx := context.Background()
	store := &tlsrpt.MemoryStore{}
	rec := tlsrpt.NewRecorder(store)

	policy := tlsrpt.Policy{
		Type:    tlsrpt.PolicySTS,
		Domain:  "example.com",
		Strings: []string{"version: STSv1", "mode: enforce", "mx: *.mail.example.com", "max_age: 604800"},
		MXHosts: []string{"*.mail.example.com"},
	}
	at := time.Date(2024, 9, 3, 14, 0, 0, 0, time.UTC)
	// What the delivery of a message reports for each session attempt:
	rec.Record(ctx, tlsrpt.Result{
		Time:                at,
		Policy:              policy,
		SendingIP:           netip.MustParseAddr("192.0.2.25"),
		ReceivingMXHostname: "mx1.mail.example.com",
		ReceivingIP:         netip.MustParseAddr("198.51.100.1"),
	})
	rec.Record(ctx, tlsrpt.Result{
		Time:                at.Add(time.Minute),
		Policy:              policy,
		ResultType:          tlsrpt.ResultCertificateExpired,
		SendingIP:           netip.MustParseAddr("192.0.2.25"),
		ReceivingMXHostname: "mx2.mail.example.com",
		ReceivingMXHelo:     "mx2.mail.example.com",
		ReceivingIP:         netip.MustParseAddr("198.51.100.2"),
	})
	if err := rec.Flush(ctx); err != nil {
		log.Fatal(err)
	}

	agg, err := store.Load(ctx, tlsrpt.Key{Domain: "example.com", Day: tlsrpt.DayOf(at)})
	if err != nil {
		log.Fatal(err)
	}
	sub := tlsrpt.Submitter{
		OrganizationName: "Sender Example Ltd",
		Domain:           "sender.example",
		ContactInfo:      "tlsrpt@sender.example",
	}
	rep, err := sub.Build(agg, "5065427c23d347ca") // "" picks a random ID
	if err != nil {
		log.Fatal(err)
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	fmt.Println(tlsrpt.FileName(sub.Domain, rep.PolicyDomain(), rep.DateRange.Start, rep.DateRange.End, rep.ReportID))
	// Output:
	// {
	//   "organization-name": "Sender Example Ltd",
	//   "date-range": {
	//     "start-datetime": "2024-09-03T00:00:00Z",
	//     "end-datetime": "2024-09-03T23:59:59Z"
	//   },
	//   "contact-info": "tlsrpt@sender.example",
	//   "report-id": "5065427c23d347ca",
	//   "policies": [
	//     {
	//       "policy": {
	//         "policy-type": "sts",
	//         "policy-domain": "example.com",
	//         "policy-string": [
	//           "version: STSv1",
	//           "mode: enforce",
	//           "mx: *.mail.example.com",
	//           "max_age: 604800"
	//         ],
	//         "mx-host": [
	//           "*.mail.example.com"
	//         ]
	//       },
	//       "summary": {
	//         "total-successful-session-count": 1,
	//         "total-failure-session-count": 1
	//       },
	//       "failure-details": [
	//         {
	//           "result-type": "certificate-expired",
	//           "sending-mta-ip": "192.0.2.25",
	//           "receiving-mx-hostname": "mx2.mail.example.com",
	//           "receiving-mx-helo": "mx2.mail.example.com",
	//           "receiving-ip": "198.51.100.2",
	//           "failed-session-count": 1
	//         }
	//       ]
	//     }
	//   ]
	// }
	// sender.example!example.com!1725321600!1725407999!5065427c23d347ca.json.gz
}

// A program that delivers mail keeps its counts in a directory and runs a
// Scheduler next to its deliveries. The Scheduler looks up each domain's
// record, posts reports to https: URIs and hands mailto: ones to the
// MailFunc.
func ExampleScheduler() {
	store, err := tlsrpt.NewFileStore("/var/lib/example/tlsrpt")
	if err != nil {
		log.Fatal(err)
	}
	rec := tlsrpt.NewRecorder(store)
	// Give rec.Record to the delivery code: one Result per session attempt.

	sched := &tlsrpt.Scheduler{
		Store:     store,
		Recorder:  rec, // flushed before each pass
		Submitter: tlsrpt.Submitter{OrganizationName: "Example Ltd", Domain: "example.net"},
		Mail: func(ctx context.Context, from string, to []string, msg io.Reader) error {
			// Deliver msg, DKIM-signed, even if TLS to the domain of to[0]
			// fails (tlsrpt.IsReportDelivery(ctx) is true here).
			return nil
		},
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go sched.Run(ctx) // until the program stops
}

// Reports received from other senders parse whatever form of "mx-host"
// they use.
func ExampleParseReport() {
	const received = `{
	  "organization-name": "Company-X",
	  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
	  "contact-info": "sts-reporting@company-x.example",
	  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
	  "policies": [{
	    "policy": {"policy-type": "sts", "policy-domain": "company-y.example", "mx-host": "*.mail.company-y.example"},
	    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
	    "failure-details": [{"result-type": "certificate-expired", "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100}]
	  }]
	}`
	rep, err := tlsrpt.ParseReport(strings.NewReader(received))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range rep.Policies {
		fmt.Printf("%s %s %v: %d ok, %d failed\n", p.Policy.Type, p.Policy.Domain, p.Policy.MXHosts,
			p.Summary.TotalSuccessfulSessionCount, p.Summary.TotalFailureSessionCount)
		for _, d := range p.FailureDetails {
			fmt.Printf("  %s at %s: %d\n", d.ResultType, d.ReceivingMXHostname, d.FailedSessionCount)
		}
	}
	// Output:
	// sts company-y.example [*.mail.company-y.example]: 5326 ok, 303 failed
	//   certificate-expired at mx1.mail.company-y.example: 100
}

// Where does a domain want its reports?
func ExampleParseRecord() {
	rec, err := tlsrpt.ParseRecord("v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://tlsrpt.example.com/v1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, uri := range rec.RUAs {
		fmt.Println(uri)
	}
	// Output:
	// mailto:tlsrpt@example.com
	// https://tlsrpt.example.com/v1
}
