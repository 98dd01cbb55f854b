package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/drainfx/drainfx/lifecycle"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/drainfx/drainfx/internal/loadclient"
	"github.com/drainfx/drainfx/internal/rollout"
)

func runRollout(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drainfx rollout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      rollout.Config
		env      envFlag
		requests listFlag
		headers  listFlag
		preStop  = fs.String("prestop", "http", "preStop hook: http (GET the admin -prestop-path), sleep=DURATION, or none")
		prop     = fs.String("propagation", "0.5s-2.5s", "endpoint propagation delay range, from the start of termination to the pod's removal from the proxy; with -dataplane kube, given: a load balancer in front that leaves this long after the endpoint is terminating (half the clients go through it)")
		entry    = fs.String("entry", "", "delay range from a new pod's first passing readiness probe to its entry in the proxy (default: -propagation); with -dataplane kube, the load balancer's, after the endpoint is ready")
		slow     = fs.String("slow", "50ms-250ms", "range of the milliseconds that replace {ms} in a request's path")
		quiet    = fs.Bool("q", false, "print only the table, not the timeline")
		logDir   = fs.String("logs", "", "directory for the pods' logs (pod-N.log) and, with -dataplane kube, the Kubernetes components' (kube/); default: a temporary one, removed")
		timeout  = fs.Duration("timeout", 30*time.Minute, "give up after this long")
		ld       = &cfg.Load
	)
	fs.StringVar(&cfg.Bin, "bin", "", "the service binary (required)")
	fs.Var(&env, "env", "NAME=VALUE added to every pod's environment (repeatable)")
	fs.Var(&requests, "request", "'METHOD PATH [@BODYFILE]' sent by the HTTP clients in turn, any 2xx answer right (repeatable; default: the example service's GET /, POST /echo, GET /slow?ms={ms}, with their answers checked)")
	fs.Var(&headers, "header", "'Name: value' sent with every request (repeatable)")
	fs.StringVar(&ld.WSPath, "ws-path", "/ws", "WebSocket echo route on the public port; empty for none")
	fs.StringVar(&ld.SSEPath, "sse-path", "/events", "event stream route on the public port; empty for none")
	fs.IntVar(&cfg.Replicas, "replicas", 2, "pods serving")
	fs.IntVar(&cfg.Replacements, "replacements", 5, "pods replaced, one after the other")
	fs.DurationVar(&cfg.GracePeriod, "grace", 30*time.Second, "terminationGracePeriodSeconds: SIGKILL this long after termination began")
	fs.StringVar(&cfg.PreStopToken, "prestop-token", "", "sent in header X-Prestop-Token")
	fs.StringVar(&cfg.PortEnv, "port-env", "PORT", "variable that carries the public port")
	fs.StringVar(&cfg.AdminPortEnv, "admin-port-env", "ADMIN_PORT", "variable that carries the admin port")
	fs.StringVar(&cfg.ReadinessPath, "readiness-path", "/readyz", "readiness probe path on the admin port")
	fs.StringVar(&cfg.PreStopPath, "prestop-path", "/prestop", "preStop path on the admin port")
	fs.IntVar(&ld.KeepAlive, "keepalive", 4, "keep-alive HTTP clients")
	fs.IntVar(&ld.NewConn, "newconn", 4, "clients with a new connection per request, never retrying")
	fs.IntVar(&ld.WebSocket, "ws", 4, "WebSocket echo clients (none with -ws-path '')")
	fs.IntVar(&ld.SSE, "sse", 4, "SSE readers (none with -sse-path '')")
	fs.IntVar(&ld.GRPC, "grpc", 0, "gRPC clients of drainfx.example.v1.Echo (examples/grpc) on the public port, a long-lived channel each: half call Echo, half read Ticks streams")
	fs.IntVar(&ld.GRPCNewConn, "grpc-newconn", 0, "gRPC clients that open a new channel per Echo call")
	fs.DurationVar(&ld.Interval, "interval", 20*time.Millisecond, "pace of each HTTP client (a request per interval), WebSocket client (a message per interval) and gRPC Echo client (a call per interval)")
	fs.StringVar(&ld.FinalEvent, "final-event", "shutdown", "SSE event type that ends a stream cleanly")
	fs.BoolVar(&ld.SSEIgnoreRetry, "sse-ignore-retry", false, "SSE readers reconnect at once instead of waiting the stream's retry: time (as EventSource does)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random delays (0: random, printed)")
	fs.StringVar(&cfg.HAProxy, "haproxy", "haproxy", "the haproxy binary")
	fs.StringVar(&cfg.DataPlane, "dataplane", rollout.DataPlaneHAProxy, "haproxy: HAProxy plays kube-proxy and -propagation is drawn; kube: a real kube-apiserver, EndpointSlice controller and kube-proxy on this machine, each pod in a network namespace (root, Linux, and the binaries of internal/ci/kube.sh)")
	fs.StringVar(&cfg.ProxyMode, "proxy-mode", "nftables", "kube-proxy's mode with -dataplane kube: nftables or iptables")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: drainfx rollout -bin ./service [flags]\n\nPlays a Kubernetes rolling update of the service behind HAProxy (Debian package haproxy) under load\nand counts what is lost; with -dataplane kube, behind a real kube-proxy. Exit 0: nothing lost;\n1: something lost; 2: the rehearsal could not run.\n\nflags:")
		fs.PrintDefaults()
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "drainfx rollout: "+format+"\n", args...)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if cfg.Bin == "" {
		fs.Usage()
		return fail("-bin is required")
	}
	cfg.Env = env
	for _, s := range requests {
		r, err := rollout.ParseRequest(s)
		if err != nil {
			return fail("-request: %v", err)
		}
		ld.Requests = append(ld.Requests, r)
	}
	for _, s := range headers {
		k, v, err := loadclient.ParseHeader(s)
		if err != nil {
			return fail("-header: %v", err)
		}
		if ld.Header == nil {
			ld.Header = http.Header{}
		}
		ld.Header.Add(k, v)
	}
	if ld.WSPath == "" {
		ld.WebSocket = 0
	}
	if ld.SSEPath == "" {
		ld.SSE = 0
	}
	if ld.KeepAlive+ld.NewConn+ld.WebSocket+ld.SSE+ld.GRPC+ld.GRPCNewConn == 0 {
		return fail("no client: every count is 0 or its route is empty")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.DataPlane == rollout.DataPlaneKube {
		// The real propagation is kube-proxy's; a -propagation given asks for
		// a slower layer in front, as a cloud load balancer is.
		cfg.LoadBalancer = set["propagation"]
		if set["entry"] && !set["propagation"] {
			return fail("-entry with -dataplane kube: the load balancer's, which -propagation adds")
		}
	} else if set["proxy-mode"] {
		return fail("-proxy-mode: only with -dataplane kube")
	}
	ranges := []struct {
		name, v string
		dst     *rollout.Range
	}{{"-propagation", *prop, &cfg.Propagation}, {"-entry", *entry, &cfg.Entry}, {"-slow", *slow, &ld.Slow}}
	for _, r := range ranges {
		if r.v == "" {
			continue
		}
		var err error
		if *r.dst, err = rollout.ParseRange(r.v); err != nil {
			return fail("%s: %v", r.name, err)
		}
	}
	var err error
	if cfg.PreStop, err = rollout.ParsePreStop(*preStop); err != nil {
		return fail("-prestop: %v", err)
	}
	if w := graceWarning(cfg.GracePeriod, cfg.PreStop, env); w != "" {
		fmt.Fprintln(stderr, "drainfx rollout: warning: "+w)
	}
	cfg.Dir = *logDir
	if !*quiet {
		cfg.Logf = rollout.LogTo(stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := rollout.Run(ctx, cfg)
	if err != nil {
		return fail("%v", err) // ErrNoHAProxy names the package to install
	}
	if err := res.WriteTable(stdout); err != nil {
		return fail("%v", err)
	}
	if !res.Pass() {
		return 1
	}
	return 0
}

// graceWarning says when -grace is not the grace period the service counts
// with: SHUTDOWN_GRACE_PERIOD given with -env (the service's default, 30s,
// if not), plus a preStop sleep, which the kubelet's grace includes. A
// shorter -grace rehearses a shortened grace period (kubectl delete
// --grace-period, an eviction) and is worth doing on purpose; either way
// the run does not rehearse the deployment as configured.
func graceWarning(grace time.Duration, ps rollout.PreStop, env []string) string {
	svc := lifecycle.Config{}.WithDefaults().GracePeriod
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SHUTDOWN_GRACE_PERIOD="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return "" // the service will say so itself
			}
			svc = d
		}
	}
	want := svc
	if ps.Kind == rollout.PreStopSleep {
		want += ps.Sleep
	}
	switch {
	case grace < want:
		return fmt.Sprintf("-grace %v is shorter than the service's grace period %v (SHUTDOWN_GRACE_PERIOD %v%s): this rehearses a grace period shortened by Kubernetes; give -grace %v to rehearse the deployment as configured",
			grace, want, svc, sleepNote(ps), want)
	case grace > want:
		return fmt.Sprintf("-grace %v is longer than the service's grace period %v (SHUTDOWN_GRACE_PERIOD %v%s): the service stops before the kubelet would SIGKILL it, so a budget too short for the load balancer goes unseen; give -grace %v, or -env SHUTDOWN_GRACE_PERIOD=%v",
			grace, want, svc, sleepNote(ps), want, grace-(want-svc))
	}
	return ""
}

func sleepNote(ps rollout.PreStop) string {
	if ps.Kind == rollout.PreStopSleep {
		return fmt.Sprintf(" + preStop sleep %v", ps.Sleep)
	}
	return ""
}
