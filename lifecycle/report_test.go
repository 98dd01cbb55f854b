package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// stopCleanly runs a whole timeline on the fake clock: drain 2s, stop phase
// 1s (a participant that takes it), teardown 500ms (a pool that takes it).
func stopCleanly(t *testing.T, c *lifecycle.Coordinator, clk clocktest.Clock, cut bool) lifecycle.Report {
	t.Helper()
	c.AtStop("http", func(ctx context.Context) error {
		if cut {
			c.Telemetry().RecordCut(lifecycle.CutKind("requests"), 2)
		}
		c.Telemetry().RecordCut(lifecycle.CutKind("sessions"), 0) // nothing
		clk.Advance(s)
		return nil
	})
	c.AtTeardown("pool", func(context.Context) error { clk.Advance(500 * ms); return nil })
	c.MarkStarted()
	c.BeginDrain("signal terminated")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	return stopAndReport(t, c, clk)
}

func TestReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveCut   bool
		wantCode  int
		wantCut   map[lifecycle.CutKind]int64
		wantLevel zapcore.Level
	}{
		{name: "clean", wantCode: 0, wantCut: map[lifecycle.CutKind]int64{}, wantLevel: zapcore.InfoLevel},
		{name: "cut", giveCut: true, wantCode: 1, wantCut: map[lifecycle.CutKind]int64{lifecycle.CutKind("requests"): 2}, wantLevel: zapcore.WarnLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, logs := newFake(t, testConfig())
			if c.Telemetry().Report().State == lifecycle.StateStopped {
				t.Fatal("Report() ok before the stop")
			}
			r := stopCleanly(t, c, clk, tt.giveCut)
			d0 := c.Telemetry().Report().D0
			want := lifecycle.Report{
				State:        lifecycle.StateStopped,
				Reason:       "signal terminated",
				D0:           d0,
				StopReason:   lifecycle.ReasonAppStopping,
				DrainEndedBy: lifecycle.DrainEndedDelay,
				Served:       true,
				Phases: []lifecycle.Phase{
					{Name: "draining", Planned: 2 * s, Actual: 2 * s},
					{Name: "drained", Planned: 0, Actual: 0},
					{Name: "stopping", Planned: 4 * s, Actual: s},
					// The stop phase ended 3 s early: the teardown had 6 s
					// (the planned time of the phase is the hook's).
					{Name: "tearing down", Planned: 6 * s, Actual: 500 * ms},
				},
				InFlight:     map[string]int64{},
				InFlightAtD0: map[string]int64{},
				InFlightStop: map[string]int64{},
				Cut:          tt.wantCut,
				Hooks: []lifecycle.HookReport{
					{Name: "http", Phase: lifecycle.StateStopping.String(), Planned: 4 * s, Actual: s},
					{Name: "pool", Phase: lifecycle.StateTearingDown.String(), Planned: 6 * s, Actual: 500 * ms},
				},
				ExitCode: tt.wantCode,
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("report =\n  %+v\nwant\n  %+v", r, want)
			}
			if r.ExitCode == 0 != (tt.wantCode == 0) {
				t.Errorf("ExitCode = %d", r.ExitCode)
			}

			// One report per stop: a second Stop returns at once and logs
			// nothing.
			if err := c.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			again := c.Telemetry().Report()
			got := c.Telemetry().Report()
			ok := got.State == lifecycle.StateStopped
			if !ok || !reflect.DeepEqual(got, r) {
				t.Errorf("Report() = %+v, %v", got, ok)
			}
			entries := logs.FilterMessage("shutdown report").All()
			if len(entries) != 1 {
				t.Fatalf("%d \"shutdown report\" entries, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != tt.wantLevel {
				t.Errorf("report logged at %v, want %v", e.Level, tt.wantLevel)
			}
			fields, ok := e.ContextMap()["report"].(map[string]any)
			if !ok {
				t.Fatalf("report field = %#v", e.ContextMap()["report"])
			}
			for k, want := range map[string]any{
				"reason":       "signal terminated",
				"drainEndedBy": "delay",
				"exitCode":     tt.wantCode,
				"d0":           d0,
			} {
				if got := fields[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("logged %s = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range []string{"phases", "inFlightAtD0", "inFlightAtStop", "cut", "hooks"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("logged report has no %s: %v", k, fields)
				}
			}
			if phases, _ := fields["phases"].([]any); len(phases) != 4 {
				t.Errorf("logged phases = %#v", fields["phases"])
			}
			if hooks, _ := fields["hooks"].([]any); len(hooks) != 2 || !reflect.DeepEqual(hooks[1],
				map[string]any{"name": "pool", "phase": "tearing down", "planned": 6 * s, "actual": 500 * ms}) {
				t.Errorf("logged hooks = %#v", fields["hooks"])
			}

			// A caller that changes its copy does not change the report.
			r.Cut[lifecycle.CutKind("requests")] = 99
			r.Hooks[0].Name = "changed"
			if got := c.Telemetry().Report(); got.Cut[lifecycle.CutKind("requests")] == 99 || got.Hooks[0].Name == "changed" {
				t.Error("the report shares its maps or slices with callers")
			}

			// The report round-trips through JSON (the ?verbose and test output).
			b, err := json.Marshal(again)
			if err != nil {
				t.Fatal(err)
			}
			var back lifecycle.Report
			if err := json.Unmarshal(b, &back); err != nil || back.ExitCode != tt.wantCode || len(back.Phases) != 4 {
				t.Errorf("JSON round trip: %s, %v", b, err)
			}
		})
	}
}

func TestReportCutsAndErr(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	tel := c.Telemetry()
	tel.RecordCut(lifecycle.CutKind("sessions"), 3)
	tel.RecordCut(lifecycle.CutKind("sessions"), -1) // ignored
	tel.RecordCut(lifecycle.CutKind("requests"), 1)
	r := stopAndReportNoClock(t, c)
	if r.ExitCode != 1 || r.Cut[lifecycle.CutKind("sessions")] != 3 || r.Cut[lifecycle.CutKind("requests")] != 1 {
		t.Errorf("report = %+v", r)
	}
	if r.ExitCode == 0 {
		t.Error("ExitCode 0 with cuts")
	}
	var zero lifecycle.Report
	if zero.ExitCode != 0 {
		t.Error("zero report not clean")
	}
}

// sessionCounter is a session source for TrackSessions, as wsmod's registry.
type sessionCounter struct {
	mu sync.Mutex
	e  lifecycle.SessionEnds
}

func (sc *sessionCounter) read() lifecycle.SessionEnds {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.e
}

func (sc *sessionCounter) add(clean, forced, aborted int64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.e.Clean += clean
	sc.e.Forced += forced
	sc.e.Aborted += aborted
}

func TestReportSessions(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, testConfig())
	var ws, sse, ws2 sessionCounter
	c.Telemetry().TrackSessions("websocket", ws.read)
	c.Telemetry().TrackSessions("sse", sse.read)
	c.Telemetry().TrackSessions("websocket", ws2.read) // a second source of a kind adds up
	ws.add(5, 0, 2)                                    // before D0: not the shutdown's doing
	c.MarkStarted()
	c.BeginDrain(lifecycle.ReasonPrestop)
	ws.add(3, 1, 0)
	ws2.add(1, 0, 0)
	sse.add(0, 0, 4)

	if got, want := c.Telemetry().Report().Sessions, map[string]lifecycle.SessionEnds{
		"websocket": {Clean: 9, Forced: 1, Aborted: 2}, // the snapshot counts from the start
		"sse":       {Aborted: 4},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("Report().Sessions = %v, want %v", got, want)
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	r := finishReport(t, c)
	want := map[string]lifecycle.SessionEnds{
		"websocket": {Clean: 4, Forced: 1},
		"sse":       {Aborted: 4},
	}
	if !reflect.DeepEqual(r.Sessions, want) {
		t.Errorf("Report.Sessions = %v, want %v (from D0 on)", r.Sessions, want)
	}
	e := logs.FilterMessage("shutdown report").All()
	if len(e) != 1 {
		t.Fatalf("%d reports logged", len(e))
	}
	logged, _ := e[0].ContextMap()["report"].(map[string]any)
	if got := logged["sessions"]; !reflect.DeepEqual(got, map[string]any{
		"websocket": map[string]any{"clean": int64(4), "forced": int64(1), "aborted": int64(0)},
		"sse":       map[string]any{"clean": int64(0), "forced": int64(0), "aborted": int64(4)},
	}) {
		t.Errorf("logged sessions = %#v", got)
	}
}

// TestReportSoFar follows one timeline on the fake clock: the phases appear
// as they begin, the running one counts up to now, and after the report the
// snapshot shows the report's phases.
func TestReportSoFar(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	inStop, leaveStop := make(chan struct{}), make(chan struct{})
	inTeardown, leaveTeardown := make(chan struct{}), make(chan struct{})
	c.AtStop("http", func(context.Context) error { close(inStop); <-leaveStop; return nil })
	c.AtTeardown("pool", func(context.Context) error { close(inTeardown); <-leaveTeardown; return nil })
	var inFlight sessionCounter // its Clean field stands for a gauge
	c.Telemetry().TrackInFlight("requests", func() int64 { return inFlight.read().Clean })
	phases := func() []lifecycle.Phase { return c.Telemetry().Report().Phases }
	p := func(name string, planned, actual time.Duration) lifecycle.Phase {
		return lifecycle.Phase{Name: name, Planned: planned, Actual: actual}
	}

	s0 := c.Telemetry().Report()
	if s0.State != lifecycle.StateStarting || s0.Phases != nil || s0.Reason != "" || !s0.D0.IsZero() {
		t.Errorf("Report() before start = %+v", s0)
	}
	c.MarkStarted()
	inFlight.add(3, 0, 0)
	if got := c.Telemetry().Report(); got.State != lifecycle.StateServing || got.InFlight["requests"] != 3 {
		t.Errorf("Report() serving = %+v", got)
	}

	c.BeginDrain(lifecycle.ReasonPrestop)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(s)
	inFlight.add(-3, 0, 0)
	got := c.Telemetry().Report()
	if got.State != lifecycle.StateDraining || got.Reason != lifecycle.ReasonPrestop || got.D0.IsZero() || got.InFlight["requests"] != 0 {
		t.Errorf("Report() draining = %+v", got)
	}
	if want := []lifecycle.Phase{p("draining", 2*s, s)}; !reflect.DeepEqual(got.Phases, want) {
		t.Errorf("phases 1s into the drain = %v, want %v", got.Phases, want)
	}

	clk.Advance(s) // the drain ends; preStop would answer now
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	clk.Advance(500 * ms)
	if want := []lifecycle.Phase{p("draining", 2*s, 2*s), p("drained", 0, 500*ms)}; !reflect.DeepEqual(phases(), want) {
		t.Errorf("phases waiting for SIGTERM = %v, want %v", phases(), want)
	}

	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }() // SIGTERM
	waittest.Recv(t, inStop, eventTimeout, "the stop participant")
	clk.Advance(s)
	c.Telemetry().RecordCut(lifecycle.CutKind("requests"), 1)
	got = c.Telemetry().Report()
	// Planned: from the phase's start to its deadline (the stop began
	// 500ms after the drain's end: 3.5 s left of the stop phase).
	if want := []lifecycle.Phase{p("draining", 2*s, 2*s), p("drained", 0, 500*ms), p("stopping", 3500*ms, s)}; !reflect.DeepEqual(got.Phases, want) {
		t.Errorf("phases in the stop phase = %v, want %v", got.Phases, want)
	}
	if got.State != lifecycle.StateStopping || got.Cut[lifecycle.CutKind("requests")] != 1 {
		t.Errorf("Report() stopping = %+v", got)
	}

	close(leaveStop)
	waittest.Recv(t, inTeardown, eventTimeout, "the teardown hook")
	clk.Advance(300 * ms)
	got = c.Telemetry().Report()
	if want := []lifecycle.Phase{p("draining", 2*s, 2*s), p("drained", 0, 500*ms), p("stopping", 3500*ms, s), p("tearing down", 5500*ms, 300*ms)}; !reflect.DeepEqual(got.Phases, want) {
		t.Errorf("phases in the teardown = %v, want %v", got.Phases, want)
	}
	if len(got.Hooks) != 1 || got.Hooks[0].Name != "http" || got.Hooks[0].Actual != s {
		t.Errorf("Report().Hooks = %+v", got.Hooks)
	}
	close(leaveTeardown)
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	r := c.Telemetry().Report()
	clk.Advance(time.Hour) // after the report nothing counts up any more
	got = c.Telemetry().Report()
	if got.State != lifecycle.StateStopped || !reflect.DeepEqual(got.Phases, r.Phases) {
		t.Errorf("Report() after the report = %+v, want the report's phases %v", got, r.Phases)
	}
	// A snapshot is a copy.
	got.Cut[lifecycle.CutKind("requests")] = 99
	got.Hooks[0].Name = "changed"
	if again := c.Telemetry().Report(); again.Cut[lifecycle.CutKind("requests")] != 1 || again.Hooks[0].Name != "http" {
		t.Error("the snapshot shares its maps or slices with the coordinator")
	}
}

// TestReportReason: one report per stop, through fx, naming what began the
// drain.
func TestReportReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// give begins the drain of a started app; nil: app.Stop alone.
		give     func(t *testing.T, c *lifecycle.Coordinator, sd fx.Shutdowner)
		decorate bool // with lifecycle.AppOptions
		want     lifecycle.Reason
	}{
		{name: "app stopping", want: lifecycle.ReasonAppStopping},
		{
			name: "prestop",
			give: func(t *testing.T, c *lifecycle.Coordinator, _ fx.Shutdowner) {
				c.BeginDrain(lifecycle.ReasonPrestop) // what the admin server's /prestop calls
			},
			want: lifecycle.ReasonPrestop,
		},
		{
			name:     "shutdowner",
			decorate: true,
			give: func(t *testing.T, c *lifecycle.Coordinator, sd fx.Shutdowner) {
				if err := sd.Shutdown(); err != nil {
					t.Error(err)
				}
				// D0 is the Shutdown call itself, before fx stops anything.
				if reason := c.Telemetry().Report().Reason; reason != lifecycle.ReasonShutdowner || !waittest.Closed(c.Reached(lifecycle.StateDraining)) {
					t.Errorf("after Shutdown: reason %q, drain started %v", reason, waittest.Closed(c.Reached(lifecycle.StateDraining)))
				}
			},
			want: lifecycle.ReasonShutdowner,
		},
		{
			name: "shutdowner without AppOptions",
			give: func(t *testing.T, c *lifecycle.Coordinator, sd fx.Shutdowner) {
				if err := sd.Shutdown(); err != nil {
					t.Error(err)
				}
			},
			want: lifecycle.ReasonAppStopping,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newObserved()
			var (
				c  *lifecycle.Coordinator
				sd fx.Shutdowner
			)
			opts := []fx.Option{
				fx.NopLogger,
				fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: 100 * ms, Margin: 100 * ms, IgnoreSignals: true}, log),
				lifecycle.Module,
				fx.Populate(&c, &sd),
			}
			if tt.decorate {
				opts = append(opts, lifecycle.AppOptions)
			}
			app := fxtest.New(t, opts...)
			app.RequireStart()
			c.MarkStarted()
			if tt.give != nil {
				tt.give(t, c, sd)
			}
			app.RequireStop()

			r := c.Telemetry().Report()
			ok := r.State == lifecycle.StateStopped
			if !ok || r.Reason != tt.want || r.D0.IsZero() || r.ExitCode != 0 || len(r.Phases) != 4 {
				t.Errorf("Report() = %+v, %v; want reason %q", r, ok, tt.want)
			}
			entries := logs.FilterMessage("shutdown report").All()
			if len(entries) != 1 {
				t.Fatalf("%d \"shutdown report\" entries, want 1:%s", len(entries), messages(logs))
			}
			logged, _ := entries[0].ContextMap()["report"].(map[string]any)
			if logged["reason"] != string(tt.want) || logged["exitCode"] != 0 || !reflect.DeepEqual(logged["d0"], r.D0) {
				t.Errorf("logged report = %v", logged)
			}
			for _, p := range r.Phases {
				if p.Actual < 0 || p.Planned < 0 {
					t.Errorf("phase %+v", p)
				}
			}
			if strings.HasPrefix(string(tt.want), string(lifecycle.Reason("signal terminated"))) {
				t.Error("a signal reason in a test without signals")
			}
		})
	}
}

// The names of cut work are bounded: 8 a kind, the rest counted as
// "other", so that a name that varies with the request (a path) cannot
// grow the report; names beyond the count are dropped; the summary puts
// the names most cut first and says how many were unnamed.
func TestRecordCutNamesBounded(t *testing.T) {
	t.Parallel()
	log, logs := newObserved()
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		IgnoreSignals: true}, lifecycle.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	tel := c.Telemetry()
	var paths []string
	for i := range 20 {
		paths = append(paths, fmt.Sprintf("GET /item/%d", i))
	}
	tel.RecordCut("requests", 25, paths...)
	tel.RecordCut("requests", 3, "GET /item/0", "GET /item/0", "GET /item/0", "GET /extra") // one name too many
	tel.RecordCut("rpcs", 1)
	r := stopAndReportNoClock(t, c)
	if r.Cut["requests"] != 28 || r.Cut["rpcs"] != 1 {
		t.Errorf("cut %v", r.Cut)
	}
	names := r.CutNames["requests"]
	var sum int64
	for _, n := range names {
		sum += n
	}
	if len(names) != 9 || names["other"] != 12 || names["GET /item/0"] != 4 || sum != 23 || r.CutNames["rpcs"] != nil {
		t.Errorf("cut names %v, want 8 names and other=12, GET /item/0=4, 23 in all", r.CutNames)
	}
	e := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(e) != 1 || !strings.Contains(e[0].Message, "requests 28 (other 12, GET /item/0 4, GET /item/1 1,") ||
		!strings.Contains(e[0].Message, ", unnamed 5), rpcs 1") {
		t.Errorf("ERROR lines %v", e)
	}
}
