package rollout_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/rollout"
)

// The rollout tests run one at a time (no t.Parallel): each measures exit
// times to a few hundred milliseconds, which other rollouts on the same two
// cores would distort.

const (
	servicePkg   = "../../examples/service"
	nethttpPkg   = "../../examples/nethttp"
	grpcPkg      = "../../examples/grpc"
	minimalPkg   = "../../examples/minimal"
	naivePkg     = "./testdata/naive"
	naiveGRPCPkg = "./testdata/naivegrpc"
)

// needRollout skips under -short and without haproxy (with CI=true, a
// missing haproxy fails instead).
func needRollout(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("rollout check: skipped in -short mode")
	}
	if _, err := rollout.FindHAProxy(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rollout check: haproxy not found; CI must install the Debian package haproxy")
		}
		t.Skip("rollout check: haproxy not found; install the Debian package haproxy")
	}
}

// check runs one rollout and logs its timeline and table.
func check(t *testing.T, cfg rollout.Config) *rollout.Result {
	t.Helper()
	cfg.Dir = t.TempDir()
	cfg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := rollout.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	return res
}

// logPods shows the output of the pods that failed (or all, if the load lost
// something and no pod did).
func logPods(t *testing.T, res *rollout.Result) {
	t.Helper()
	for _, p := range res.Terminated() {
		if p.Failed() == "" && res.LoadLost() == 0 {
			continue
		}
		b, err := os.ReadFile(p.Log)
		if err != nil {
			t.Log(err)
			continue
		}
		s := string(b)
		if len(s) > 6000 {
			s = "…" + s[len(s)-6000:]
		}
		t.Logf("output of %s:\n%s", p.Name, s)
	}
}

func serviceEnv(t *testing.T, env ...string) []string {
	// The pods share one SQLite file, as the pods of a Deployment share
	// their database.
	return append([]string{"DATA_DIR=" + filepath.Join(t.TempDir(), "data")}, env...)
}

// TestServiceZeroLoss is the rollout check against
// examples/service: 2 replicas, 5 replacements, propagation 0.5–2.5 s, a
// fixed 3 s drain, with the preStop hook and with SIGTERM only. Nothing may
// be lost.
func TestServiceZeroLoss(t *testing.T) {
	needRollout(t)
	bin := binary(t, servicePkg)
	fixed3s := []string{"SHUTDOWN_GRACE_PERIOD=10s", "SHUTDOWN_DRAIN_DELAY=3s", "SHUTDOWN_DRAIN_QUIET=0s"}
	tests := []struct {
		name    string
		preStop rollout.PreStop
		env     []string
	}{
		{"prestop http", rollout.PreStop{Kind: rollout.PreStopHTTP}, fixed3s},
		{"sigterm only", rollout.PreStop{Kind: rollout.PreStopNone}, fixed3s},
		// The shell-free hook of k8s/prestop-sleep: the kubelet sleeps, then
		// sends SIGTERM, which begins the drain. The grace period includes
		// the sleep, so the service's budget is what is left after it.
		{"prestop sleep", rollout.PreStop{Kind: rollout.PreStopSleep, Sleep: 3 * time.Second},
			[]string{"SHUTDOWN_GRACE_PERIOD=7s", "SHUTDOWN_DRAIN_DELAY=2s", "SHUTDOWN_DRAIN_QUIET=0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := check(t, rollout.Config{
				Bin:          bin,
				Env:          serviceEnv(t, tt.env...),
				Replicas:     2,
				Replacements: 5,
				PreStop:      tt.preStop,
				GracePeriod:  10 * time.Second,
				Propagation:  rollout.Range{Min: 500 * time.Millisecond, Max: 2500 * time.Millisecond},
				// Readers reconnect at once, not after the stream's retry:
				// the harder case (a stream ended at the stop phase must
				// close its keep-alive connection, or the reconnect reaches
				// the stopping pod and gets 503).
				Load: rollout.Load{SSEIgnoreRetry: true},
			})
			if !res.Pass() {
				logPods(t, res)
				t.Errorf("%d lost, want none", res.Lost())
			}
			checkSessionReport(t, res)
		})
	}
}

// checkSessionReport checks what the result says of the sessions' ends:
// every reconnection placed on a pod through the proxy's connection log
// (HAProxy's log format works), and the window a pod's sessions were
// closed over read from its log (wsmod's "sessions closed" line).
func checkSessionReport(t *testing.T, res *rollout.Result) {
	t.Helper()
	if res.SessionOpens == 0 || res.SessionOpensUnplaced != 0 || res.SessionOpensPeak == 0 || res.SessionOpensPeakClient == 0 {
		t.Errorf("session opens on the survivors: %d, peak %d (clients' %d), %d not placed; want some, all placed",
			res.SessionOpens, res.SessionOpensPeak, res.SessionOpensPeakClient, res.SessionOpensUnplaced)
	}
	logged := 0
	for _, p := range res.Terminated() {
		if p.SessionsLogged {
			logged++
		}
	}
	if logged == 0 {
		t.Error("no terminated pod's log says over what window its sessions were closed")
	}
}

// TestNaiveServerLoses shows that the check can fail: the textbook echo
// shutdown (Shutdown on SIGTERM, no drain, sessions left to the exit) loses
// requests, WebSocket sessions and SSE streams.
func TestNaiveServerLoses(t *testing.T) {
	needRollout(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, naivePkg),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  10 * time.Second,
		Propagation:  rollout.Range{Min: 500 * time.Millisecond, Max: 2500 * time.Millisecond},
	})
	if res.Pass() || res.LoadLost() == 0 {
		t.Errorf("the naive server lost %d (load %d): the check did not see its losses", res.Lost(), res.LoadLost())
	}
}

// TestAdaptiveDrain is issue 7: with the adaptive drain (DrainDelay 2s,
// DrainQuiet 1s, MaxDrainDelay 15s) nothing is lost, and every pod leaves
// as soon as the proxy has stopped sending it connections:
//
//	T0→exit ≤ max(DrainDelay, propagation + DrainQuiet) + 0.3s
//
// where T0 is the start of the pod's termination (the preStop request, or
// SIGTERM without a hook — D0 of the drain follows it within a millisecond)
// and propagation is the measured T0 → the proxy stopped routing to it. For
// propagation 4–6 s the bound is propagation + DrainQuiet + 0.3s. And no pod
// may leave while the proxy still sends: T0→exit ≥ propagation.
func TestAdaptiveDrain(t *testing.T) {
	needRollout(t)
	bin := binary(t, servicePkg)
	const (
		drainDelay = 2 * time.Second
		quiet      = time.Second
		slack      = 300 * time.Millisecond
	)
	tests := []struct {
		name        string
		propagation rollout.Range
		preStop     rollout.PreStop
	}{
		{"propagation 4-6s, prestop http", rollout.Range{Min: 4 * time.Second, Max: 6 * time.Second}, rollout.PreStop{Kind: rollout.PreStopHTTP}},
		{"propagation 0.5-2.5s, sigterm only", rollout.Range{Min: 500 * time.Millisecond, Max: 2500 * time.Millisecond}, rollout.PreStop{Kind: rollout.PreStopNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := check(t, rollout.Config{
				Bin: bin,
				Env: serviceEnv(t,
					"SHUTDOWN_GRACE_PERIOD=20s", "SHUTDOWN_DRAIN_DELAY=2s", "SHUTDOWN_DRAIN_QUIET=1s",
					"SHUTDOWN_MAX_DRAIN_DELAY=15s"),
				Replicas:     2,
				Replacements: 5,
				PreStop:      tt.preStop,
				GracePeriod:  20 * time.Second,
				Propagation:  tt.propagation,
			})
			if !res.Pass() {
				logPods(t, res)
				t.Errorf("%d lost, want none", res.Lost())
			}
			for _, p := range res.Terminated() {
				bound := max(drainDelay, p.Propagation+quiet) + slack
				t.Logf("%s: propagation %.3fs, T0→exit %.3fs, bound %.3fs", p.Name, p.Propagation.Seconds(), p.StopTime().Seconds(), bound.Seconds())
				if p.StopTime() > bound {
					t.Errorf("%s: T0→exit %v, want ≤ max(DrainDelay, propagation %v + DrainQuiet) + %v = %v",
						p.Name, p.StopTime(), p.Propagation, slack, bound)
				}
				if p.StopTime() < p.Propagation {
					t.Errorf("%s: T0→exit %v, before the propagation %v: it left while the proxy still sent it connections",
						p.Name, p.StopTime(), p.Propagation)
				}
			}
		})
	}
}

// TestSparseTraffic: a pod whose traffic is sparse cannot tell "the proxies
// stopped" from "nobody called" after DrainQuiet. Two clients, each a POST
// on a new connection every 1.5 s, a load balancer that drops the pod 6–9 s
// after its termination began, the service's defaults (drain 5s, quiet 1s,
// grace period 30s): the quiet period follows the pod's own rate (≈ 0.67/s
// → ≈ 10 s), and nothing is lost. With a quiet period of a fixed 1 s every
// pod left at 5 s and about one request in ten was lost.
func TestSparseTraffic(t *testing.T) {
	needRollout(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, servicePkg),
		Env:          serviceEnv(t),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  30 * time.Second,
		Propagation:  rollout.Range{Min: 6 * time.Second, Max: 9 * time.Second},
		Entry:        rollout.Range{Min: 500 * time.Millisecond, Max: time.Second},
		Load:         rollout.Load{NewConn: 2, Interval: 1500 * time.Millisecond},
	})
	if !res.Pass() {
		logPods(t, res)
		t.Errorf("%d lost, want none", res.Lost())
	}
	for _, p := range res.Terminated() {
		t.Logf("%s: propagation %.3fs, T0→exit %.3fs", p.Name, p.Propagation.Seconds(), p.StopTime().Seconds())
		if p.StopTime() < p.Propagation {
			t.Errorf("%s: left %v after T0, before the propagation %v", p.Name, p.StopTime(), p.Propagation)
		}
	}
}

// TestShortDrainDelay: a short SHUTDOWN_DRAIN_DELAY (1s) with a load
// balancer slower than it (4–6 s). The default MaxDrainDelay is all the
// room the budget gives (here 20s − 3s − 1s − 5s = 11s), so a busy pod
// still leaves at propagation + DrainQuiet, and nothing is lost.
func TestShortDrainDelay(t *testing.T) {
	needRollout(t)
	const quiet, slack = time.Second, 300 * time.Millisecond
	res := check(t, rollout.Config{
		Bin:          binary(t, servicePkg),
		Env:          serviceEnv(t, "SHUTDOWN_GRACE_PERIOD=20s", "SHUTDOWN_DRAIN_DELAY=1s"),
		Replicas:     2,
		Replacements: 4,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  20 * time.Second,
		Propagation:  rollout.Range{Min: 4 * time.Second, Max: 6 * time.Second},
		Entry:        rollout.Range{Min: 500 * time.Millisecond, Max: time.Second},
	})
	if !res.Pass() {
		logPods(t, res)
		t.Errorf("%d lost, want none", res.Lost())
	}
	for _, p := range res.Terminated() {
		bound := p.Propagation + quiet + slack
		t.Logf("%s: propagation %.3fs, T0→exit %.3fs, bound %.3fs", p.Name, p.Propagation.Seconds(), p.StopTime().Seconds(), bound.Seconds())
		if p.StopTime() > bound || p.StopTime() < p.Propagation {
			t.Errorf("%s: T0→exit %v, want between the propagation %v and propagation + DrainQuiet + %v", p.Name, p.StopTime(), p.Propagation, slack)
		}
	}
}

// TestNetHTTPZeroLoss: the same route contract on the standard library's
// ServeMux alone (examples/nethttp, no echo) loses nothing either, with the
// preStop hook and with SIGTERM only.
func TestNetHTTPZeroLoss(t *testing.T) {
	needRollout(t)
	bin := binary(t, nethttpPkg)
	for _, preStop := range []rollout.PreStop{{Kind: rollout.PreStopHTTP}, {Kind: rollout.PreStopNone}} {
		t.Run(preStop.String(), func(t *testing.T) {
			res := check(t, rollout.Config{
				Bin:          bin,
				Env:          []string{"SHUTDOWN_GRACE_PERIOD=10s", "SHUTDOWN_DRAIN_DELAY=3s", "SHUTDOWN_DRAIN_QUIET=0s"},
				Replicas:     2,
				Replacements: 4,
				PreStop:      preStop,
				GracePeriod:  10 * time.Second,
				Propagation:  rollout.Range{Min: 500 * time.Millisecond, Max: 2500 * time.Millisecond},
				Load:         rollout.Load{SSEIgnoreRetry: true},
			})
			if !res.Pass() {
				logPods(t, res)
				t.Errorf("%d lost, want none", res.Lost())
			}
		})
	}
}

// TestShortenedGrace: the kubelet's grace period (12 s: kubectl delete
// --grace-period, an eviction, a node shutdown) is shorter than the
// service's budget (SHUTDOWN_GRACE_PERIOD 30 s). The drain outlasts it —
// a fixed 20 s here, as the adaptive drain's can on sparse traffic (up to
// 21 s with the defaults) but every time, so that every pod plays the
// case: the kubelet gives up on the /prestop hook at 12 s, sends SIGTERM,
// and SIGKILL 2 s later. The service reads that SIGTERM as the end of its
// grace: it ends the drain and closes its sessions in the 2 s left. No
// pod is killed, no session cut.
func TestShortenedGrace(t *testing.T) {
	needRollout(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, servicePkg),
		Env:          serviceEnv(t, "SHUTDOWN_GRACE_PERIOD=30s", "SHUTDOWN_DRAIN_DELAY=20s", "SHUTDOWN_DRAIN_QUIET=0s"),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  12 * time.Second,
		Propagation:  rollout.Range{Min: 6 * time.Second, Max: 9 * time.Second},
		Entry:        rollout.Range{Min: 500 * time.Millisecond, Max: time.Second},
		Load:         rollout.Load{NewConn: 2, WebSocket: 2, SSE: 1, Interval: 1500 * time.Millisecond},
	})
	if !res.Pass() {
		logPods(t, res)
		t.Errorf("%d lost, want none", res.Lost())
	}
	for _, p := range res.Terminated() {
		t.Logf("%s: propagation %.3fs, preStop %.3fs (timed out %v), T0→exit %.3fs", p.Name,
			p.Propagation.Seconds(), p.PreStopTook.Seconds(), p.PreStopTimedOut, p.StopTime().Seconds())
		if !p.PreStopTimedOut {
			t.Errorf("%s: the preStop hook ended before the kubelet's grace: the case was not played", p.Name)
		}
	}
}

// grpcOnly is the load of a gRPC-only service, as "drainfx rollout -grpc 8
// -keepalive 0 -newconn 0" with empty -ws-path and -sse-path sends it: 4 clients
// calling Echo on a long-lived channel each, 4 reading Ticks streams; with
// newChannel > 0, also clients that open a channel per call.
func grpcOnly(newChannel int) rollout.Load {
	return rollout.Load{GRPC: 8, GRPCNewConn: newChannel}
}

// TestGRPCZeroLoss is the rollout check against examples/grpc: 2 replicas,
// 3 replacements, a load balancer that takes 4–6 s, with the preStop hook
// and with SIGTERM only. Nothing may be lost, and no pod may leave while
// the proxy still sends it connections.
//
// With clients that open a channel per call, new connections keep arriving
// while the proxy routes here, and the adaptive drain (DrainDelay 2s,
// DrainQuiet 1s) ends at propagation + DrainQuiet. With long-lived channels
// alone they stop arriving once the drain's GOAWAYs have moved the
// channels: the pod cannot tell when the proxy has caught up, and drains
// for MaxDrainDelay (8s here: more than the propagation).
func TestGRPCZeroLoss(t *testing.T) {
	needRollout(t)
	bin := binary(t, grpcPkg)
	const quiet, slack = time.Second, 300 * time.Millisecond
	tests := []struct {
		name       string
		preStop    rollout.PreStop
		newChannel int
	}{
		{"prestop http, new channels too", rollout.PreStop{Kind: rollout.PreStopHTTP}, 2},
		{"sigterm only, long-lived channels", rollout.PreStop{Kind: rollout.PreStopNone}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := check(t, rollout.Config{
				Bin: bin,
				Env: []string{"SHUTDOWN_GRACE_PERIOD=15s", "SHUTDOWN_DRAIN_DELAY=2s", "SHUTDOWN_DRAIN_QUIET=1s",
					"SHUTDOWN_MAX_DRAIN_DELAY=8s"},
				Replicas:     2,
				Replacements: 3,
				PreStop:      tt.preStop,
				GracePeriod:  15 * time.Second,
				Propagation:  rollout.Range{Min: 4 * time.Second, Max: 6 * time.Second},
				Entry:        rollout.Range{Min: 500 * time.Millisecond, Max: time.Second},
				Load:         grpcOnly(tt.newChannel),
			})
			if !res.Pass() {
				logPods(t, res)
				t.Errorf("%d lost, want none", res.Lost())
			}
			for _, p := range res.Terminated() {
				t.Logf("%s: propagation %.3fs, T0→exit %.3fs", p.Name, p.Propagation.Seconds(), p.StopTime().Seconds())
				if p.StopTime() < p.Propagation {
					t.Errorf("%s: T0→exit %v, before the propagation %v: it left while the proxy still sent it connections",
						p.Name, p.StopTime(), p.Propagation)
				}
				if bound := p.Propagation + quiet + slack; tt.newChannel > 0 && p.StopTime() > bound {
					t.Errorf("%s: T0→exit %v, want ≤ propagation %v + DrainQuiet + %v = %v", p.Name, p.StopTime(), p.Propagation, slack, bound)
				}
			}
		})
	}
}

// TestNaiveGRPCServerLoses shows that the gRPC check can fail: the
// textbook shutdown (GracefulStop on SIGTERM, Stop 10 s later) closes its
// listener while the proxy still routes to it, and leaves its streams to
// Stop.
func TestNaiveGRPCServerLoses(t *testing.T) {
	needRollout(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, naiveGRPCPkg),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  15 * time.Second,
		Propagation:  rollout.Range{Min: 4 * time.Second, Max: 6 * time.Second},
		Entry:        rollout.Range{Min: 500 * time.Millisecond, Max: time.Second},
		Load:         grpcOnly(0),
	})
	if res.Pass() || res.LoadLost() == 0 {
		t.Errorf("the naive gRPC server lost %d (load %d): the check did not see its losses", res.Lost(), res.LoadLost())
	}
}

// A service without the WebSocket route the load would use (examples/minimal
// has none) is said at once, naming the flag that turns the kind off, not
// as a run of failed dials.
func TestMissingRouteFailsAtOnce(t *testing.T) {
	needRollout(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := rollout.Run(ctx, rollout.Config{
		Bin:          binary(t, minimalPkg),
		Dir:          t.TempDir(),
		Replicas:     1,
		Replacements: 1,
		Load:         rollout.Load{WebSocket: 1},
	})
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "-ws-path") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Run() = %v, want an error naming -ws-path and the 404", err)
	}
	t.Logf("%v after %v", err, took.Round(time.Millisecond))
}
