// Command rollout replaces the pods of a service one by one behind HAProxy,
// under load, the way a Kubernetes rolling update does, and reports every
// request, WebSocket session and SSE stream lost, every pod SIGKILLed or
// exiting non-zero. It exits 0 if nothing was lost, 1 if something was, and
// 2 if the check could not run.
//
//	go build -o /tmp/myservice ./path/to/service
//	go run ./cmd/rollout -bin /tmp/myservice -replacements 5 -prestop http \
//	    -grace 10s -env SHUTDOWN_GRACE_PERIOD=10s -env SHUTDOWN_DRAIN_DELAY=3s
//
// The binary must serve the route contract of drainfx's DESIGN §4: on $PORT
// GET / ("ok"), POST /echo, GET /slow?ms=N, GET /ws (WebSocket echo) and GET
// /events (SSE); on $ADMIN_PORT /readyz and /prestop. It needs haproxy in
// PATH (Debian package haproxy).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/drainfx/drainfx/internal/rollout"
)

type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }
func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q: want NAME=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("rollout", flag.ContinueOnError)
	var (
		cfg      rollout.Config
		env      envFlag
		preStop  = fs.String("prestop", "http", "preStop hook: http (GET the admin -prestop-path), sleep=DURATION, or none")
		prop     = fs.String("propagation", "0.5s-2.5s", "endpoint propagation delay range, from the start of termination to the pod's removal from the proxy")
		entry    = fs.String("entry", "", "delay range from a new pod's first passing readiness probe to its entry in the proxy (default: -propagation)")
		slow     = fs.String("slow", "50ms-250ms", "range of N in GET /slow?ms=N")
		quiet    = fs.Bool("q", false, "print only the table, not the timeline")
		logDir   = fs.String("logs", "", "directory for the pods' logs (pod-N.log); default: a temporary one, removed")
		timeout  = fs.Duration("timeout", 30*time.Minute, "give up after this long")
		loadFlag = &cfg.Load
	)
	fs.StringVar(&cfg.Bin, "bin", "", "the service binary (required)")
	fs.Var(&env, "env", "NAME=VALUE added to every pod's environment (repeatable)")
	fs.IntVar(&cfg.Replicas, "replicas", 2, "pods serving")
	fs.IntVar(&cfg.Replacements, "replacements", 5, "pods replaced, one after the other")
	fs.DurationVar(&cfg.GracePeriod, "grace", 30*time.Second, "terminationGracePeriodSeconds: SIGKILL this long after termination began")
	fs.StringVar(&cfg.PreStopToken, "prestop-token", "", "sent in header X-Prestop-Token")
	fs.StringVar(&cfg.PortEnv, "port-env", "PORT", "variable that carries the public port")
	fs.StringVar(&cfg.AdminPortEnv, "admin-port-env", "ADMIN_PORT", "variable that carries the admin port")
	fs.StringVar(&cfg.ReadinessPath, "readiness-path", "/readyz", "readiness probe path on the admin port")
	fs.StringVar(&cfg.PreStopPath, "prestop-path", "/prestop", "preStop path on the admin port")
	fs.IntVar(&loadFlag.KeepAlive, "keepalive", 4, "keep-alive HTTP clients")
	fs.IntVar(&loadFlag.NewConn, "newconn", 4, "clients with a new connection per request, never retrying")
	fs.IntVar(&loadFlag.WebSocket, "ws", 4, "WebSocket echo clients")
	fs.IntVar(&loadFlag.SSE, "sse", 4, "SSE readers")
	fs.DurationVar(&loadFlag.Interval, "interval", 20*time.Millisecond, "pace of each HTTP client (a request per interval) and WebSocket client (a message per interval)")
	fs.StringVar(&loadFlag.FinalEvent, "final-event", "shutdown", "SSE event type that ends a stream cleanly")
	fs.BoolVar(&loadFlag.SSEIgnoreRetry, "sse-ignore-retry", false, "SSE readers reconnect at once instead of waiting the stream's retry: time (as EventSource does)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random delays (0: random, printed)")
	fs.StringVar(&cfg.HAProxy, "haproxy", "haproxy", "the haproxy binary")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: rollout -bin ./service [flags]\n\nPlays a Kubernetes rolling update of the service behind HAProxy under load and counts what is lost.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Env = env
	var err error
	ranges := []struct {
		name, v string
		dst     *rollout.Range
	}{{"-propagation", *prop, &cfg.Propagation}, {"-entry", *entry, &cfg.Entry}, {"-slow", *slow, &cfg.Load.Slow}}
	for _, r := range ranges {
		if r.v == "" {
			continue
		}
		if *r.dst, err = rollout.ParseRange(r.v); err != nil {
			fmt.Fprintf(os.Stderr, "rollout: %s: %v\n", r.name, err)
			return 2
		}
	}
	if cfg.PreStop, err = rollout.ParsePreStop(*preStop); err != nil {
		fmt.Fprintf(os.Stderr, "rollout: -prestop: %v\n", err)
		return 2
	}
	if cfg.Bin == "" {
		fmt.Fprintln(os.Stderr, "rollout: -bin is required")
		fs.Usage()
		return 2
	}
	cfg.Dir = *logDir
	if !*quiet {
		cfg.Logf = rollout.LogTo(os.Stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := rollout.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // ErrNoHAProxy names the package to install
		return 2
	}
	if err := res.WriteTable(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if !res.Pass() {
		return 1
	}
	return 0
}
