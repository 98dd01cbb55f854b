package metricsmod_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/probemod"
)

func gathered(t *testing.T, g prometheus.Gatherer) families {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := families{}
	for _, mf := range mfs {
		f[mf.GetName()] = mf
	}
	return f
}

// TestScrapeDuringDrain follows one shutdown through /metrics on the admin
// server: the state moves serving → draining → … → tearing down, the
// request in flight at D0 finishes and drainfx_inflight_requests falls to
// 0 while the drain goes on, and the phases, the server's stop participant
// and the teardown hook show up as they run.
func TestScrapeDuringDrain(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	entered, release := make(chan struct{}), make(chan struct{})
	inHook, releaseHook := make(chan struct{}), make(chan struct{})
	var (
		c     *lifecycle.Coordinator
		srv   *httpmod.Server
		admin *probemod.Admin
		m     *metricsmod.Metrics
	)
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(
			lifecycle.Config{DrainDelay: 5 * time.Second, DrainQuiet: lifecycle.None, IgnoreSignals: true},
			httpmod.Config{Addr: "127.0.0.1:0"},
			probemod.Config{Addr: "127.0.0.1:0"},
		),
		fx.Provide(func() lifecycle.Clock { return clk }),
		lifecycle.Module, httpmod.Module, probemod.Module, metricsmod.Module,
		httpmod.AsRoute(func() httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
					close(entered)
					<-release
					_, _ = io.WriteString(w, "ok")
				})
			})
		}),
		probemod.AsCheck("db", func(context.Context) error { return nil }),
		fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtTeardown("hold", func(context.Context) error {
				close(inHook)
				<-releaseHook
				return nil
			})
		}),
		fx.Populate(&c, &srv, &admin, &m),
	)
	app.RequireStart()
	c.MarkStarted() // the bundle's fx logger does it; this app has none
	metrics := "http://" + admin.Addr().String() + "/metrics"

	f := scrape(t, metrics)
	if got := f.state(t); got != "serving" {
		t.Errorf("state = %s, want serving", got)
	}
	for _, name := range []string{
		"drainfx_state", "drainfx_state_number", "drainfx_inflight_requests", "drainfx_phase_planned_seconds",
		"drainfx_cut_total", "drainfx_check_runs_total", "go_goroutines", "process_open_fds",
	} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s in /metrics: %s", name, f.names())
		}
	}
	if _, ok := f["drainfx_phase_duration_seconds"]; ok {
		t.Error("phase durations before D0")
	}
	if _, ok := f.value("drainfx_check_passing", "check", "db"); ok {
		t.Error("drainfx_check_passing before the check ever ran")
	}
	// A readiness probe runs the check.
	if resp, err := client.Get("http://" + admin.Addr().String() + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	f = scrape(t, metrics)
	if v, _ := f.value("drainfx_check_passing", "check", "db"); v != 1 {
		t.Errorf("drainfx_check_passing{check=db} = %v after a passing probe, want 1", v)
	}
	if v, _ := f.value("drainfx_check_runs_total", "check", "db"); v != 1 {
		t.Errorf("drainfx_check_runs_total{check=db} = %v, want 1", v)
	}

	// One request in flight at D0.
	got := make(chan int, 1)
	go func() {
		resp, err := client.Get("http://" + srv.Addr().String() + "/slow")
		if err != nil {
			t.Errorf("GET /slow: %v", err)
			got <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	waittest.Recv(t, entered, eventTimeout, "the request to reach its handler")
	if v, _ := scrape(t, metrics).value("drainfx_inflight_requests"); v != 1 {
		t.Errorf("drainfx_inflight_requests = %v with one request in its handler, want 1", v)
	}

	c.BeginDrain(lifecycle.ReasonPrestop)
	f = scrape(t, metrics)
	if got := f.state(t); got != "draining" {
		t.Errorf("state after D0 = %s, want draining", got)
	}
	if v, _ := f.value("drainfx_state_number"); v != 2 {
		t.Errorf("drainfx_state_number = %v, want 2", v)
	}
	if v, _ := f.value("drainfx_inflight_requests"); v != 1 {
		t.Errorf("drainfx_inflight_requests at D0 = %v, want 1", v)
	}
	if _, ok := f.value("drainfx_drain_start_timestamp_seconds", "reason", "prestop"); !ok {
		t.Error("no drainfx_drain_start_timestamp_seconds{reason=prestop}")
	}
	if _, ok := f.value("drainfx_phase_duration_seconds", "phase", "draining"); !ok {
		t.Error("no drain phase duration while draining")
	}

	close(release)
	if code := waittest.Recv(t, got, eventTimeout, "the response"); code != http.StatusOK {
		t.Errorf("GET /slow = %d", code)
	}
	f = eventually(t, metrics, "drainfx_inflight_requests to fall to 0", func(f families) bool {
		v, ok := f.value("drainfx_inflight_requests")
		return ok && v == 0
	})
	if got := f.state(t); got != "draining" {
		t.Errorf("state once the request is done = %s, want still draining", got)
	}

	// The stop: end the drain on the fake clock; the teardown hook holds
	// the timeline so the teardown can be scraped.
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the drain timer
	clk.Advance(5 * time.Second)
	waittest.Recv(t, inHook, eventTimeout, "the teardown hook")
	f = scrape(t, metrics)
	if got := f.state(t); got != "tearing_down" {
		t.Errorf("state in the teardown = %s, want tearing_down", got)
	}
	if v, _ := f.value("drainfx_state_number"); v != 5 {
		t.Errorf("drainfx_state_number in the teardown = %v, want 5", v)
	}
	if _, ok := f.value("drainfx_hook_duration_seconds", "hook", "http"); !ok {
		t.Error("no drainfx_hook_duration_seconds{hook=http}: the server's stop participant")
	}
	for _, phase := range []string{"draining", "drained", "stopping", "tearing_down"} {
		if _, ok := f.value("drainfx_phase_duration_seconds", "phase", phase); !ok {
			t.Errorf("no duration of phase %s in the teardown", phase)
		}
	}
	if v, _ := f.value("drainfx_phase_duration_seconds", "phase", "draining"); v != 5 {
		t.Errorf("drain phase = %vs, want 5s", v)
	}
	if v, ok := f.value("drainfx_cut_total", "kind", "requests"); !ok || v != 0 {
		t.Errorf("drainfx_cut_total{kind=requests} = %v, %v; want 0", v, ok)
	}
	if v, ok := f.value("drainfx_check_passing", "check", "db"); !ok || v != 1 {
		t.Errorf("drainfx_check_passing{check=db} = %v, %v; want 1 (since the probe before D0)", v, ok)
	}
	close(releaseHook)
	if err := waittest.Recv(t, stopped, eventTimeout, "the stop"); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// The admin server is down now; the registry still answers.
	f = gathered(t, m.Registry())
	if got := f.state(t); got != "stopped" {
		t.Errorf("state after the stop = %s", got)
	}
	if _, ok := f.value("drainfx_hook_duration_seconds", "hook", "hold"); !ok {
		t.Error("no drainfx_hook_duration_seconds{hook=hold}")
	}
	if r := c.Telemetry().Report(); r.Reason != lifecycle.ReasonPrestop || r.InFlightAtD0["requests"] != 1 || r.ExitCode != 0 {
		t.Errorf("report = %+v", r)
	}
}

// The app's own registry carries the drainfx metrics beside its own.
func TestModuleUsesTheAppsRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_jobs_total", Help: "Jobs."})
	reg.MustRegister(jobs)
	jobs.Add(3)
	var (
		admin *probemod.Admin
		m     *metricsmod.Metrics
	)
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}, probemod.Config{Addr: "127.0.0.1:0"},
			metricsmod.Config{Path: "/custom/metrics"}, reg),
		lifecycle.Module, probemod.Module, metricsmod.Module,
		fx.Populate(&admin, &m),
	)
	app.RequireStart()
	defer app.RequireStop()
	if m.Registry() != reg {
		t.Error("Metrics.Registry() is not the app's registry")
	}
	f := scrape(t, "http://"+admin.Addr().String()+"/custom/metrics")
	if v, _ := f.value("app_jobs_total"); v != 3 {
		t.Errorf("app_jobs_total = %v, want 3", v)
	}
	if f.state(t) != "starting" {
		t.Errorf("state = %s", f.state(t))
	}
	if _, ok := f["drainfx_inflight_requests"]; ok {
		t.Error("drainfx_inflight_requests without httpmod in the app")
	}
	if _, ok := f["drainfx_check_runs_total"]; ok {
		t.Error("check metrics without any check")
	}
}

// Without probemod there is no admin server, but the metrics are built and
// the checks' collector is simply left out.
func TestModuleWithoutProbes(t *testing.T) {
	t.Parallel()
	var m *metricsmod.Metrics
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		lifecycle.Module, metricsmod.Module,
		fx.Populate(&m),
	)
	app.RequireStart().RequireStop()
	if f := gathered(t, m.Registry()); f.state(t) != "stopped" {
		t.Errorf("state = %s", f.state(t))
	}
}

func TestModuleInvalidConfig(t *testing.T) {
	t.Parallel()
	app := fx.New(fx.NopLogger,
		fx.Supply(lifecycle.Config{IgnoreSignals: true}, metricsmod.Config{Path: "metrics"}),
		lifecycle.Module, metricsmod.Module,
		fx.Invoke(func(*metricsmod.Metrics) {}),
	)
	if err := app.Err(); !errors.Is(err, metricsmod.ErrConfig) || !strings.Contains(err.Error(), `Path="metrics"`) {
		t.Errorf("fx.New error = %v, want ErrConfig naming Path", err)
	}
}
