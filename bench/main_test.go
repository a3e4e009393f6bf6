package bench

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// The servers run in a child process (this test binary, started again with
// sinkEnv set), so that the CPU time the benchmarks measure with getrusage
// is the clients' alone.
const sinkEnv = "SMTPSECURE_BENCH_SINK"

// sinkInfo is what the child tells the parent.
type sinkInfo struct {
	Chunking string // a sink offering PIPELINING and CHUNKING
	Data     string // a sink offering PIPELINING, not CHUNKING
	CA       string // PEM of the CA that issued the sinks' certificate
	// MX is a sink with the certificate of mxHost, the MX host of
	// mxDomain, and Resolver a DNS server answering as a validating
	// resolver for that domain: its MX record, the host's address
	// (mxAddr) and a DANE-EE TLSA record of the certificate.
	MX       string
	Resolver string
}

var (
	sinks  sinkInfo
	caPool *x509.CertPool
)

func TestMain(m *testing.M) {
	if os.Getenv(sinkEnv) == "1" {
		os.Exit(serveSinks())
	}
	os.Exit(runWithSinks(m))
}

// serveSinks runs in the child: it starts the sinks, prints where they
// are, and serves until the parent closes its standard input.
func serveSinks() int {
	ca, err := testpki.NewCA("bench CA")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mxLeaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{mxHost}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	chunking := &smtptest.Sink{TLSConfig: leaf.ServerConfig()}
	data := &smtptest.Sink{TLSConfig: leaf.ServerConfig(), NoChunking: true}
	mx := &smtptest.Sink{TLSConfig: mxLeaf.ServerConfig()}
	for _, s := range []*smtptest.Sink{chunking, data, mx} {
		if err := s.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer s.Close()
	}
	resolver, err := mxResolver(mxLeaf.Cert)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resolver.Close()
	info := sinkInfo{Chunking: chunking.Addr(), Data: data.Addr(), CA: string(ca.PEM()), MX: mx.Addr(), Resolver: resolver.Addr}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return 1
	}
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// runWithSinks starts the child, makes its CA a system root (for the
// drop-in SendMail functions, which trust only those), and runs the
// benchmarks.
func runWithSinks(m *testing.M) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sinkEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	if err := json.NewDecoder(stdout).Decode(&sinks); err != nil {
		fmt.Fprintln(os.Stderr, "starting the sinks:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "smtpsecure-bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, []byte(sinks.CA), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Setenv("SSL_CERT_DIR", dir)
	caPool = x509.NewCertPool()
	caPool.AppendCertsFromPEM([]byte(sinks.CA))
	return m.Run()
}

// tlsConfig trusts the sinks' CA.
func tlsConfig() *tls.Config {
	return &tls.Config{ServerName: "127.0.0.1", RootCAs: caPool}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter reports the CPU time and round trips per message of a benchmark.
type meter struct {
	b     *testing.B
	proxy *rttProxy
	cpu   time.Duration
	turns int64
}

// start resets the benchmark's timer and the meter.
func start(b *testing.B, proxy *rttProxy) *meter {
	b.ReportAllocs()
	b.SetBytes(int64(len(message)))
	m := &meter{b: b, proxy: proxy}
	b.ResetTimer()
	m.cpu = cpuTime()
	if proxy != nil {
		m.turns = proxy.Turns()
	}
	return m
}

// stop stops the timer and reports per message: CPU time, round trips
// (through a proxy) and messages per second.
func (m *meter) stop() {
	b := m.b
	cpu := cpuTime() - m.cpu
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/msg")
	if m.proxy != nil {
		b.ReportMetric(float64(m.proxy.Turns()-m.turns)/n, "RT/msg")
	}
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
}

// withProxy returns a proxy to addr with rtt, closed when b ends.
func withProxy(b *testing.B, addr string, rtt time.Duration) *rttProxy {
	p, err := newRTTProxy(addr, rtt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}
