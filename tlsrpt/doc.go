// Package tlsrpt is SMTP TLS Reporting (RFC 8460) for programs that
// deliver mail: the outcome of each delivery attempt under a domain's
// policy (DANE, MTA-STS or none), and the result types that name what went
// wrong.
//
// The Result… constants are the one public list of RFC 8460 result types;
// the ReportResultType methods of the errors of packages smtpsecure, dane
// and mtasts return these strings.
package tlsrpt
