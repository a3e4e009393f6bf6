package main

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The exit code of a run, from its recipients' codes, as sendmail sets its
// exit status: any code but 75 beats 75, the first such code wins.
func TestCombineExitCodes(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{nil, 0},
		{[]int{0, 0}, 0},
		{[]int{0, 75}, 75},
		{[]int{75, 75}, 75},
		{[]int{75, 67}, 67},
		{[]int{67, 75}, 67},
		{[]int{68, 67}, 68},
		{[]int{0, 67, 68}, 67},
		{[]int{75, 77, 67}, 77},
		{[]int{69, 77}, 69},
	} {
		if got := combineExitCodes(tc.codes); got != tc.want {
			t.Errorf("combineExitCodes(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}

// deliver's flags go with sendmail's options in any order, with one dash
// or two, and are never read as a group of short options.
func TestParseMailArgsExtra(t *testing.T) {
	type got struct {
		Resolvers  []string
		RequireTLS bool
		Store      string
		Timeout    time.Duration
		From       string
		Rcpts      []string
		ReadRcpts  bool
	}
	for _, tc := range []struct {
		args string
		want got
	}{
		{"-t --resolver 127.0.0.1 -fme@example.org a@example.net", got{Resolvers: []string{"127.0.0.1"}, From: "me@example.org", Rcpts: []string{"a@example.net"}, ReadRcpts: true}},
		{"-requiretls -resolver=::1 --resolver 192.0.2.1,192.0.2.2 a@example.net", got{Resolvers: []string{"::1", "192.0.2.1", "192.0.2.2"}, RequireTLS: true, Rcpts: []string{"a@example.net"}}},
		{"--requiretls=false --tlsrpt-store dir --dns-timeout=2s -- -odd@example.net", got{Store: "dir", Timeout: 2 * time.Second, Rcpts: []string{"-odd@example.net"}}},
		{"-rme@example.org", got{From: "me@example.org"}},
	} {
		t.Run(tc.args, func(t *testing.T) {
			fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
			var df deliverFlags
			df.register(fs)
			o, err := parseMailArgs(strings.Fields(tc.args), fs)
			if err != nil {
				t.Fatal(err)
			}
			g := got{Resolvers: df.net.resolvers, RequireTLS: df.requireTLS, Store: df.tlsrptStore, Timeout: df.net.dnsTimeout,
				From: o.From, Rcpts: o.Recipients, ReadRcpts: o.ReadRecipients}
			if !reflect.DeepEqual(g, tc.want) {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}
