package lifecycle_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/lifecycle"
)

// stopCleanly runs a whole timeline on the fake clock: drain 2s, stop phase
// 1s, teardown 500ms.
func stopCleanly(t *testing.T, c *lifecycle.Coordinator, clk *clockwork.FakeClock, cut bool) lifecycle.Report {
	t.Helper()
	c.MarkStarted()
	c.BeginDrain("signal terminated")
	blockUntil(t, clk, 1)
	clk.Advance(2 * s)
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(s)
	h := c.StopHook("pool", func(context.Context) error { clk.Advance(500 * ms); return nil })
	if err := h(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cut {
		c.RecordCut("requests", 2)
	}
	c.RecordCut("sessions", 0) // nothing
	return c.Finish()
}

func TestReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveCut   bool
		wantCode  int
		wantCut   map[string]int64
		wantLevel zapcore.Level
	}{
		{name: "clean", wantCode: 0, wantCut: map[string]int64{}, wantLevel: zapcore.InfoLevel},
		{name: "cut", giveCut: true, wantCode: 1, wantCut: map[string]int64{"requests": 2}, wantLevel: zapcore.WarnLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, logs := newFake(t, testConfig())
			if _, ok := c.Report(); ok {
				t.Fatal("Report() ok before Finish")
			}
			r := stopCleanly(t, c, clk, tt.giveCut)
			d0, _ := c.D0()
			want := lifecycle.Report{
				Reason:       "signal terminated",
				D0:           d0,
				DrainEndedBy: lifecycle.DrainEndedDelay,
				Phases: []lifecycle.Phase{
					{Name: "drain", Planned: 2 * s, Actual: 2 * s},
					{Name: "wait", Planned: 0, Actual: 0},
					{Name: "stop", Planned: 4 * s, Actual: s},
					{Name: "teardown", Planned: 3 * s, Actual: 500 * ms},
				},
				InFlightAtD0: map[string]int64{},
				InFlightStop: map[string]int64{},
				Cut:          tt.wantCut,
				Hooks:        []lifecycle.HookReport{{Name: "pool", Planned: 6 * s, Actual: 500 * ms}},
				ExitCode:     tt.wantCode,
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("Finish() =\n  %+v\nwant\n  %+v", r, want)
			}
			if r.Clean() != (tt.wantCode == 0) {
				t.Errorf("Clean() = %v", r.Clean())
			}

			// One report per stop: a second Finish returns the same report
			// and logs nothing.
			again := c.Finish()
			if !reflect.DeepEqual(again, r) {
				t.Errorf("second Finish() = %+v, want the first report", again)
			}
			got, ok := c.Report()
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

			// A caller that changes its copy does not change the report.
			r.Cut["requests"] = 99
			r.Hooks[0].Name = "changed"
			if got, _ := c.Report(); got.Cut["requests"] == 99 || got.Hooks[0].Name == "changed" {
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

func TestReportWithoutDrain(t *testing.T) {
	t.Parallel()
	c, _, logs := newFake(t, testConfig())
	c.MarkStarted()
	ctx := c.StopContext()
	r := c.Finish()
	if r.Reason != "" || !r.D0.IsZero() || r.Phases != nil || r.ExitCode != 0 {
		t.Errorf("report without a drain = %+v", r)
	}
	// Long-lived handlers waiting on the stop phase are released all the same.
	if ctx.Err() == nil || !isClosed(c.Stopping()) {
		t.Error("StopContext not cancelled / Stopping not closed by Finish")
	}
	if c.State() != lifecycle.StateStopped || !isClosed(c.Stopped()) {
		t.Errorf("State() = %v", c.State())
	}
	// Nothing waits for a drain that will never come: a late OnStop hook.
	ctx2, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := c.DrainAndWait(ctx2); err != nil {
		t.Errorf("DrainAndWait() after Finish = %v", err)
	}
	if d0, _ := c.D0(); !d0.IsZero() || isClosed(c.DrainStarted()) {
		t.Error("a drain began after Finish")
	}
	if n := logs.FilterMessage("shutdown report").Len(); n != 1 {
		t.Errorf("%d reports logged", n)
	}
}

func TestReportFinishDuringDrain(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	rec := subscribe(c)
	c.MarkStarted()
	c.BeginDrain("prestop")
	blockUntil(t, clk, 1)
	clk.Advance(s)
	r := c.Finish()
	if r.DrainEndedBy != lifecycle.DrainEndedAbort || r.Phases[0].Actual != s {
		t.Errorf("report = %+v", r)
	}
	for _, p := range r.Phases {
		if p.Actual < 0 {
			t.Errorf("phase %s lasted %v", p.Name, p.Actual)
		}
	}
	if c.StopContext().Err() == nil || !isClosed(c.Stopping()) {
		t.Error("StopContext not cancelled / Stopping not closed by Finish")
	}
	var got []lifecycle.State
	for range 3 {
		got = append(got, rec.next(t).To)
	}
	if want := []lifecycle.State{lifecycle.StateServing, lifecycle.StateDraining, lifecycle.StateStopped}; !reflect.DeepEqual(got[:3], want) {
		t.Errorf("transitions to %v, want %v", got, want)
	}
}

func TestReportCutHooksAndErr(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	c.RecordCut("sessions", 3)
	c.RecordCut("sessions", -1) // ignored
	c.RecordCut("requests", 1)
	r := c.Finish()
	if r.ExitCode != 1 || r.Cut["sessions"] != 3 || r.Cut["requests"] != 1 {
		t.Errorf("report = %+v", r)
	}
	if r.Clean() {
		t.Error("Clean() with cuts")
	}
	var zero lifecycle.Report
	if !zero.Clean() {
		t.Error("zero report not clean")
	}
}
