package metricsmod_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

// The gauge names the collector maps are those the modules register.
func TestGaugeNames(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNow(t, c)
	if _, err := httpmod.New(httpmod.Config{}, c, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := wsmod.New(wsmod.Config{}, c); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP drainfx_inflight_requests HTTP requests in flight.
# TYPE drainfx_inflight_requests gauge
drainfx_inflight_requests 0
# HELP drainfx_sessions Long-lived sessions open.
# TYPE drainfx_sessions gauge
drainfx_sessions{kind="sse"} 0
drainfx_sessions{kind="websocket"} 0
`
	if err := testutil.CollectAndCompare(metricsmod.NewCollector(c), strings.NewReader(want),
		"drainfx_inflight_requests", "drainfx_sessions", "drainfx_inflight"); err != nil {
		t.Error(err)
	}
}

// TestCollector follows a timeline on the fake clock and compares every
// drainfx_ series with what the coordinator did, scraped in the teardown.
func TestCollector(t *testing.T) {
	t.Parallel()
	clk := clocktest.NewAt(time.Unix(1_700_000_000, 0))
	c, err := lifecycle.New(lifecycle.Config{
		GracePeriod: 10 * time.Second, DrainDelay: 2 * time.Second, DrainQuiet: lifecycle.None,
		TeardownReserve: 3 * time.Second, Margin: time.Second,
	}, lifecycle.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	var requests, rpcs atomic.Int64 // read on the coordinator's goroutine
	requests.Store(4)
	rpcs.Store(1)
	tel := c.Telemetry()
	tel.TrackInFlight("requests", requests.Load)
	tel.TrackInFlight("rpcs", rpcs.Load)
	tel.TrackInFlight("websocket", func() int64 { return 2 })
	tel.TrackSessions("websocket", func() lifecycle.SessionEnds { return lifecycle.SessionEnds{Clean: 7, Forced: 1} })
	// A stop participant that holds the stop phase for 1s, and two
	// teardown hooks: "sql" takes 0.25s, "hold" (registered first, run
	// last) holds the teardown while the collector is read.
	inStop, releaseStop := make(chan struct{}), make(chan struct{})
	inHold, releaseHold := make(chan struct{}), make(chan struct{})
	c.AtStop("http", func(context.Context) error { close(inStop); <-releaseStop; return nil })
	c.AtTeardown("hold", func(context.Context) error { close(inHold); <-releaseHold; return nil })
	c.AtTeardown("sql", func(context.Context) error { clk.Advance(250 * time.Millisecond); return nil })
	col := metricsmod.NewCollector(c)

	c.MarkStarted()
	c.BeginDrain(lifecycle.ReasonPrestop)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the drain's timer
	clk.Advance(1500 * time.Millisecond)
	tel.NoteNewConnection(nil) // a proxy still sending at D0+1.5s
	clk.Advance(500 * time.Millisecond)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	requests.Store(0)
	rpcs.Store(0)
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	waittest.Recv(t, inStop, eventTimeout, "the stop phase")
	clk.Advance(time.Second)
	tel.RecordCut(lifecycle.CutKind("sessions"), 1)
	tel.RecordCut("queries", 2)
	close(releaseStop)
	waittest.Recv(t, inHold, eventTimeout, "the last teardown hook")
	clk.Advance(250 * time.Millisecond)

	want := `
# HELP drainfx_cut_total Work cut at a deadline or failed: requests, sessions, rpcs, hooks (overran), hook_errors (returned an error), or another kind.
# TYPE drainfx_cut_total counter
drainfx_cut_total{kind="hook_errors"} 0
drainfx_cut_total{kind="hooks"} 0
drainfx_cut_total{kind="queries"} 2
drainfx_cut_total{kind="requests"} 0
drainfx_cut_total{kind="sessions"} 1
# HELP drainfx_drain_arrivals_total New connections that reached the public listeners after D0 (the proxies still sending).
# TYPE drainfx_drain_arrivals_total counter
drainfx_drain_arrivals_total 1
# HELP drainfx_drain_ended 1 once the drain has ended, labelled with why: delay, quiet, max, deadline or abort (absent for a service that never served).
# TYPE drainfx_drain_ended gauge
drainfx_drain_ended{by="delay"} 1
# HELP drainfx_drain_last_arrival_seconds When the last of them arrived, in seconds after D0: the propagation delay this pod observed.
# TYPE drainfx_drain_last_arrival_seconds gauge
drainfx_drain_last_arrival_seconds 1.5
# HELP drainfx_drain_quiet_seconds The adaptive drain's quiet period — how long without a new connection ends it: the one it would use now while serving, the one it used once draining.
# TYPE drainfx_drain_quiet_seconds gauge
drainfx_drain_quiet_seconds 0
# HELP drainfx_drain_start_timestamp_seconds When the drain began (D0), in seconds since the epoch, and what began it.
# TYPE drainfx_drain_start_timestamp_seconds gauge
drainfx_drain_start_timestamp_seconds{reason="prestop"} 1.7e+09
# HELP drainfx_drain_traffic_rate_per_second The rate at which work arrives, as the adaptive drain estimates it: over the last minute while serving, over the minute before D0 once draining.
# TYPE drainfx_drain_traffic_rate_per_second gauge
drainfx_drain_traffic_rate_per_second 0
# HELP drainfx_hook_duration_seconds How long each stop participant and teardown hook took.
# TYPE drainfx_hook_duration_seconds gauge
drainfx_hook_duration_seconds{hook="http"} 1
drainfx_hook_duration_seconds{hook="sql"} 0.25
# HELP drainfx_inflight Work in flight other than HTTP requests and sessions, per gauge tracked with the coordinator.
# TYPE drainfx_inflight gauge
drainfx_inflight{kind="rpcs"} 0
# HELP drainfx_inflight_requests HTTP requests in flight.
# TYPE drainfx_inflight_requests gauge
drainfx_inflight_requests 0
# HELP drainfx_phase_duration_seconds How long each shutdown phase begun so far has lasted; the running one grows.
# TYPE drainfx_phase_duration_seconds gauge
drainfx_phase_duration_seconds{phase="draining"} 2
drainfx_phase_duration_seconds{phase="stopping"} 1
drainfx_phase_duration_seconds{phase="tearing_down"} 0.5
drainfx_phase_duration_seconds{phase="drained"} 0
# HELP drainfx_phase_planned_seconds The budget's planned duration of each shutdown phase.
# TYPE drainfx_phase_planned_seconds gauge
drainfx_phase_planned_seconds{phase="draining"} 2
drainfx_phase_planned_seconds{phase="stopping"} 4
drainfx_phase_planned_seconds{phase="tearing_down"} 3
drainfx_phase_planned_seconds{phase="drained"} 0
# HELP drainfx_sessions Long-lived sessions open.
# TYPE drainfx_sessions gauge
drainfx_sessions{kind="websocket"} 2
# HELP drainfx_sessions_ended_total Long-lived sessions ended: clean, forced at the stop deadline, or aborted.
# TYPE drainfx_sessions_ended_total counter
drainfx_sessions_ended_total{kind="websocket",outcome="aborted"} 0
drainfx_sessions_ended_total{kind="websocket",outcome="clean"} 7
drainfx_sessions_ended_total{kind="websocket",outcome="forced"} 1
# HELP drainfx_state The lifecycle state: 1 for the current one, 0 for the others.
# TYPE drainfx_state gauge
drainfx_state{state="drained"} 0
drainfx_state{state="draining"} 0
drainfx_state{state="serving"} 0
drainfx_state{state="starting"} 0
drainfx_state{state="stopped"} 0
drainfx_state{state="stopping"} 0
drainfx_state{state="tearing_down"} 1
# HELP drainfx_state_number The lifecycle state as a number: 0 starting, 1 serving, 2 draining, 3 drained, 4 stopping, 5 tearing_down, 6 stopped.
# TYPE drainfx_state_number gauge
drainfx_state_number 5
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// The collector is a checked one: its series match its descriptions.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	close(releaseHold)
	if err := waittest.Recv(t, stopped, eventTimeout, "the stop"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	after := `
# HELP drainfx_state_number The lifecycle state as a number: 0 starting, 1 serving, 2 draining, 3 drained, 4 stopping, 5 tearing_down, 6 stopped.
# TYPE drainfx_state_number gauge
drainfx_state_number 6
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(after), "drainfx_state_number"); err != nil {
		t.Errorf("after the stop: %v", err)
	}
}

func TestCheckCollector(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNow(t, c)
	c.MarkStarted()
	p, err := probemod.NewProbes(probemod.Config{}, c, []probemod.Check{
		{Name: "db", Check: func(context.Context) error { return nil }},
		{Name: "cache", Check: func(context.Context) error { return context.Canceled }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	col := metricsmod.NewCheckCollector(p)
	before := `
# HELP drainfx_check_failures_total Runs of the readiness check that failed.
# TYPE drainfx_check_failures_total counter
drainfx_check_failures_total{check="cache"} 0
drainfx_check_failures_total{check="db"} 0
# HELP drainfx_check_runs_total Runs of the readiness check that concluded, timeouts included.
# TYPE drainfx_check_runs_total counter
drainfx_check_runs_total{check="cache"} 0
drainfx_check_runs_total{check="db"} 0
# HELP drainfx_prestop_refused_total PreStop calls refused for a bad or missing token.
# TYPE drainfx_prestop_refused_total counter
drainfx_prestop_refused_total 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(before)); err != nil {
		t.Error(err)
	}
	if code := serveReadyz(p); code != 503 {
		t.Errorf("/readyz = %d, want 503 (cache fails)", code)
	}
	after := `
# HELP drainfx_check_failures_total Runs of the readiness check that failed.
# TYPE drainfx_check_failures_total counter
drainfx_check_failures_total{check="cache"} 1
drainfx_check_failures_total{check="db"} 0
# HELP drainfx_check_passing 1 if /readyz shows the readiness check passing, 0 if failing; absent before its first run.
# TYPE drainfx_check_passing gauge
drainfx_check_passing{check="cache"} 0
drainfx_check_passing{check="db"} 1
# HELP drainfx_check_runs_total Runs of the readiness check that concluded, timeouts included.
# TYPE drainfx_check_runs_total counter
drainfx_check_runs_total{check="cache"} 1
drainfx_check_runs_total{check="db"} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(after),
		"drainfx_check_failures_total", "drainfx_check_passing", "drainfx_check_runs_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(col, "drainfx_check_duration_seconds"); n != 2 {
		t.Errorf("%d drainfx_check_duration_seconds series, want 2", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNow(t, c)

	if _, err := metricsmod.New(metricsmod.Config{}, nil); err == nil {
		t.Error("New with a nil coordinator: no error")
	}

	m, err := metricsmod.New(metricsmod.Config{}, c)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Route(); r.Pattern != "GET /metrics" || r.Handler == nil {
		t.Errorf("Route() = %+v", r)
	}
	f := gathered(t, m.Registry())
	for _, name := range []string{"drainfx_state", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s on a new registry: %s", name, f.names())
		}
	}
	if m.Registry() == prometheus.DefaultRegisterer {
		t.Error("the default registry is used")
	}

	// A registry that has the runtime collectors already (as the default
	// registry does) is fine.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := metricsmod.New(metricsmod.Config{}, c, metricsmod.WithRegistry(reg)); err != nil {
		t.Errorf("New on a registry with the Go and process collectors: %v", err)
	}
	// The drainfx collector twice on one registry is an error.
	if _, err := metricsmod.New(metricsmod.Config{}, c, metricsmod.WithRegistry(reg)); err == nil {
		t.Error("a second New on the same registry: no error")
	}

	m, err = metricsmod.New(metricsmod.Config{NoRuntimeMetrics: true}, c)
	if err != nil {
		t.Fatal(err)
	}
	for name := range gathered(t, m.Registry()) {
		if !strings.HasPrefix(name, "drainfx_") {
			t.Errorf("%s with NoRuntimeMetrics", name)
		}
	}
}

func serveReadyz(p *probemod.Probes) int {
	rec := httptest.NewRecorder()
	http.HandlerFunc(p.Readyz).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}
