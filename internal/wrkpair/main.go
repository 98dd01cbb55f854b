// Command wrkpair measures the request path of httpmod against a bare
// net/http server with the same settings, as wrk sees it: both servers up
// side by side, each in its own process, wrk on each in turn (the order
// reversed every other round), the throughput and the server's CPU per
// request taken per round, and the ratio to the bare server paired round
// by round, so that the machine's drift between rounds cancels out.
//
//	go run ./internal/wrkpair -rounds 24 -d 3s
//
// "bare" is an [http.Server] with the routes of examples/minimal (GET /
// answers "ok") and httpmod's defaults: ReadHeaderTimeout, IdleTimeout and
// MaxHeaderBytes. "httpmod" is [httpmod.Server] on the same routes, serving
// under a [lifecycle.Coordinator]. -extra name=binary adds a service of
// its own (run with PORT and ADMIN_PORT in its environment), such as a
// build of examples/minimal. -pin runs the servers on CPU 1 and wrk on
// CPU 0 (taskset), so that the client does not take the servers' CPU; on
// a machine shared with other work it makes the rounds noisier, not
// quieter (the pinned servers wait for that CPU while the other is free).
//
// The summary gives, for each server against the bare one, the median of
// the paired ratios of the rounds with a 95% interval (a bootstrap of the
// rounds), for the throughput and for the CPU per request.
//
// It needs wrk on the PATH (and taskset for -pin).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "wrkpair serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wrkpair:", err)
		os.Exit(1)
	}
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// serveMain runs one server, "bare" or "httpmod", on ADDR until SIGTERM or
// SIGINT.
func serveMain(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: wrkpair serve bare|httpmod ADDR")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serve(ctx, args[0], args[1], nil)
}

// serve runs server kind on addr until ctx ends; up, if not nil, is told
// the address it listens on once it serves.
func serve(ctx context.Context, kind, addr string, up func(net.Addr)) error {
	if up == nil {
		up = func(net.Addr) {}
	}
	switch kind {
	case "bare":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		d := httpmod.Config{}.WithDefaults()
		srv := &http.Server{
			Handler:           routes(),
			ReadHeaderTimeout: d.ReadHeaderTimeout,
			IdleTimeout:       d.IdleTimeout,
			MaxHeaderBytes:    d.MaxHeaderBytes,
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		up(ln.Addr())
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "httpmod":
		c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
		if err != nil {
			return err
		}
		s, err := httpmod.New(httpmod.Config{Addr: addr}, c, routes())
		if err != nil {
			return err
		}
		if err := s.Start(context.Background()); err != nil {
			return err
		}
		c.MarkStarted()
		up(s.Addr())
		<-ctx.Done()
		// An ended context cuts the drain short; the second Stop waits for
		// the timeline's end.
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ended)
		return c.Stop(context.Background())
	}
	return fmt.Errorf("unknown server %q", kind)
}

type server struct {
	name string
	url  string
	cmd  *exec.Cmd
}

// cpu returns the process's user+system CPU time so far.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitUp(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	reqsPerSec = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	totalReqs  = regexp.MustCompile(`(?m)^\s+([0-9]+) requests in`)
)

type sample struct {
	rps    float64
	cpuReq time.Duration // server CPU per request
}

// parseWrk reads wrk's requests per second and request count; an answer
// other than 2xx or 3xx, or a socket error, is an error.
func parseWrk(out []byte) (rps, total float64, err error) {
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		return 0, 0, fmt.Errorf("wrk saw errors: %s", out)
	}
	m, n := reqsPerSec.FindSubmatch(out), totalReqs.FindSubmatch(out)
	if m == nil || n == nil {
		return 0, 0, fmt.Errorf("wrk said: %s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	total, _ = strconv.ParseFloat(string(n[1]), 64)
	if total == 0 {
		return 0, 0, fmt.Errorf("wrk sent no request: %s", out)
	}
	return rps, total, nil
}

func (s *server) wrk(pin []string, conns int, d time.Duration) (sample, error) {
	args := append(slices.Clone(pin), "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(), s.url)
	c0, err := s.cpu()
	if err != nil {
		return sample{}, err
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	c1, err := s.cpu()
	if err != nil {
		return sample{}, err
	}
	rps, total, err := parseWrk(out)
	if err != nil {
		return sample{}, err
	}
	return sample{rps: rps, cpuReq: time.Duration(float64(c1-c0) / total)}, nil
}

func run() error {
	rounds := flag.Int("rounds", 12, "rounds; each runs wrk once on every server")
	dur := flag.Duration("d", 4*time.Second, "wrk's duration per server and round")
	conns := flag.Int("c", 16, "wrk's connections")
	pin := flag.Bool("pin", false, "servers on CPU 1, wrk on CPU 0 (taskset)")
	var extras []string
	flag.Func("extra", "name=binary: a service of its own, run with PORT and ADMIN_PORT (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want name=binary")
		}
		extras = append(extras, v)
		return nil
	})
	flag.Parse()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	var serverPin, wrkPin []string
	if *pin {
		serverPin, wrkPin = []string{"taskset", "-c", "1"}, []string{"taskset", "-c", "0"}
	}
	var servers []*server
	start := func(name string, env []string, argv ...string) error {
		port, err := freePort()
		if err != nil {
			return err
		}
		argv = append(slices.Clone(serverPin), argv...)
		for i, a := range argv {
			argv[i] = strings.ReplaceAll(a, "PORT", strconv.Itoa(port))
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		for i, e := range cmd.Env {
			cmd.Env[i] = strings.ReplaceAll(e, "=PORT", "="+strconv.Itoa(port))
		}
		if name == "bare" || name == "httpmod" {
			cmd.Stderr = os.Stderr // a service of its own logs: not shown
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		s := &server{name: name, url: fmt.Sprintf("http://127.0.0.1:%d/", port), cmd: cmd}
		servers = append(servers, s)
		return waitUp(s.url)
	}
	defer func() {
		for _, s := range servers {
			// A second SIGTERM ends a drainfx service at once.
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			time.Sleep(100 * time.Millisecond)
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}
	}()
	if err := start("bare", nil, self, "serve", "bare", "127.0.0.1:PORT"); err != nil {
		return err
	}
	if err := start("httpmod", nil, self, "serve", "httpmod", "127.0.0.1:PORT"); err != nil {
		return err
	}
	for _, e := range extras {
		name, bin, _ := strings.Cut(e, "=")
		admin, err := freePort()
		if err != nil {
			return err
		}
		if err := start(name, []string{"PORT=PORT", "ADMIN_PORT=" + strconv.Itoa(admin)}, bin); err != nil {
			return err
		}
	}

	// A warm-up round, not counted.
	for _, s := range servers {
		if _, err := s.wrk(wrkPin, *conns, time.Second); err != nil {
			return err
		}
	}
	results := make(map[string][]sample)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "round")
	for _, s := range servers {
		fmt.Fprintf(w, "\t%s req/s\tµs CPU/req", s.name)
	}
	for _, s := range servers[1:] {
		fmt.Fprintf(w, "\t%s/bare", s.name)
	}
	fmt.Fprintln(w)
	for r := range *rounds {
		order := slices.Clone(servers)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			smp, err := s.wrk(wrkPin, *conns, *dur)
			if err != nil {
				return err
			}
			results[s.name] = append(results[s.name], smp)
		}
		fmt.Fprintf(w, "%d", r+1)
		for _, s := range servers {
			smp := results[s.name][r]
			fmt.Fprintf(w, "\t%.0f\t%.2f", smp.rps, float64(smp.cpuReq)/1e3)
		}
		for _, s := range servers[1:] {
			fmt.Fprintf(w, "\t%.3f", results[s.name][r].rps/results["bare"][r].rps)
		}
		fmt.Fprintln(w)
		w.Flush()
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "server\treq/s median (min–max)\tratio to bare per round: median [95% interval] (min–max)\tCPU per request: median, ratio to bare [95% interval]")
	bare := results["bare"]
	for _, s := range servers[1:] {
		rs := results[s.name]
		rps := make([]float64, len(rs))
		ratio := make([]float64, len(rs))
		cpu := make([]float64, len(rs))
		cpuRatio := make([]float64, len(rs))
		for i, x := range rs {
			rps[i] = x.rps
			ratio[i] = x.rps / bare[i].rps
			cpu[i] = float64(x.cpuReq) / 1e3
			cpuRatio[i] = float64(x.cpuReq) / float64(bare[i].cpuReq)
		}
		rLo, rHi := medianInterval(ratio)
		cLo, cHi := medianInterval(cpuRatio)
		fmt.Fprintf(w, "%s\t%.0f (%.0f–%.0f)\t%.3f [%.3f, %.3f] (%.3f–%.3f)\t%.2f µs, %.3f [%.3f, %.3f]\n", s.name,
			median(rps), slices.Min(rps), slices.Max(rps),
			median(ratio), rLo, rHi, slices.Min(ratio), slices.Max(ratio),
			median(cpu), median(cpuRatio), cLo, cHi)
	}
	rps := make([]float64, len(bare))
	cpu := make([]float64, len(bare))
	for i, x := range bare {
		rps[i], cpu[i] = x.rps, float64(x.cpuReq)/1e3
	}
	fmt.Fprintf(w, "bare\t%.0f (%.0f–%.0f)\t\t%.2f µs\n", median(rps), slices.Min(rps), slices.Max(rps), median(cpu))
	return nil
}

// medianInterval is a 95% interval of the median of xs: the 2.5th and
// 97.5th percentiles of the medians of 10,000 resamples (a bootstrap), with
// a fixed seed so that the same rounds print the same interval.
func medianInterval(xs []float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10000
	meds := make([]float64, n)
	re := make([]float64, len(xs))
	for i := range meds {
		for j := range re {
			re[j] = xs[rng.IntN(len(xs))]
		}
		meds[i] = median(re)
	}
	slices.Sort(meds)
	return meds[n*25/1000], meds[n*975/1000]
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
