package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// deadlineProbe registers a stop participant and a teardown hook that hand
// over their contexts' deadlines and return at once.
func deadlineProbe(c *lifecycle.Coordinator) (stop, teardown <-chan time.Time) {
	s, td := make(chan time.Time, 1), make(chan time.Time, 1)
	c.AtStop("http", func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		s <- dl
		return nil
	})
	c.AtTeardown("pool", func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		td <- dl
		return nil
	})
	return s, td
}

// A kubelet whose grace period (12 s) is shorter than the budget's (30 s)
// gives up on a /prestop hook still waiting for the drain and sends
// SIGTERM; SIGKILL follows 2 s later. The drain ends at once, and the stop
// phase, the teardown and the report fit in those 2 s. Not parallel: it
// sends a real signal to the test process (see signal_test.go).
func TestSignalDuringPrestopFitsTheKubeletsLastSeconds(t *testing.T) {
	// A drain of 20 s (a slow load balancer's, or sparse traffic's).
	c, clk, logs := newFake(t, lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 20 * s, DrainQuiet: lifecycle.None},
		lifecycle.WithShutdown(func() error { return nil }))
	stopDL, teardownDL := deadlineProbe(c)
	c.MarkStarted()
	c.BeginDrain(lifecycle.ReasonPrestop) // a preStop call, waiting for the drain's end
	d0 := c.Telemetry().Report().D0
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(12 * s) // the kubelet's grace runs out: the hook times out
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("the drain ended before SIGTERM: nothing to test")
	}

	kill(t, syscall.SIGTERM)
	sigterm := d0.Add(12 * s)
	killAt := sigterm.Add((2 * s))

	// No clock advance: the signal alone ends the drain.
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end at SIGTERM")
	sdl := waittest.Recv(t, stopDL, eventTimeout, "the stop participant's deadline")
	tdl := waittest.Recv(t, teardownDL, eventTimeout, "the teardown hook's deadline")
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	// The budget's shares after the drain: stop 6 s, teardown 3 s, margin
	// 1 s: scaled into 2 s.
	if want := sigterm.Add(1200 * ms); sdl.Sub(want).Abs() > time.Microsecond {
		t.Errorf("stop deadline D0+%v, want D0+%v", sdl.Sub(d0), want.Sub(d0))
	}
	if tdl.After(killAt) || !tdl.After(sdl) || killAt.Sub(tdl) < 200*ms-time.Microsecond {
		t.Errorf("teardown deadline D0+%v: want after the stop deadline and a margin before SIGKILL at D0+%v",
			tdl.Sub(d0), killAt.Sub(d0))
	}
	r := c.Telemetry().Report()
	want := lifecycle.GraceShortened{Source: "signal during prestop", Configured: 30 * s, Real: 14 * s, LearnedAt: 12 * s}
	if r.Grace == nil || *r.Grace != want {
		t.Errorf("report grace %+v, want %+v", r.Grace, want)
	}
	if r.DrainEndedBy != lifecycle.DrainEndedDeadline || r.ExitCode != 0 {
		t.Errorf("report: drain ended by %q, exit code %d", r.DrainEndedBy, r.ExitCode)
	}
	if e := waitLog(t, logs, "grace period is shorter"); e.Level != zapcore.WarnLevel {
		t.Errorf("logged at %v, want WARN", e.Level)
	}
}

// A signal after the preStop call has been answered is the kubelet's
// ordinary SIGTERM: nothing moves.
func TestSignalAfterPrestopAnswerKeepsTheBudget(t *testing.T) {
	c, clk, _ := newFake(t, testConfig(), lifecycle.WithShutdown(func() error { return nil }))
	stopDL, _ := deadlineProbe(c)
	c.MarkStarted()
	c.BeginDrain(lifecycle.ReasonPrestop)
	d0 := c.Telemetry().Report().D0
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end: the preStop call answered")

	kill(t, syscall.SIGTERM)
	if dl := waittest.Recv(t, stopDL, eventTimeout, "the stop deadline"); !dl.Equal(d0.Add(6 * s)) {
		t.Errorf("stop deadline D0+%v, want the budget's D0+6s", dl.Sub(d0))
	}
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	if r := c.Telemetry().Report(); r.Grace != nil {
		t.Errorf("report grace %+v, want none", r.Grace)
	}
}

// ShortenGrace with room for the phases after the drain shortens the drain
// only; without it the drain ends at once and the rest is split.
func TestShortenGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		giveKill            time.Duration // from D0, learned at D0
		wantDrainEnd        time.Duration
		wantStop, wantTDown time.Duration
		wantDrainEndedBy    lifecycle.DrainEnd
		wantShortened       bool
	}{
		// testConfig: drain 2 s, stop D0+6 s, teardown D0+9 s, grace 10 s.
		{name: "later than the plan", giveKill: 11 * s, wantDrainEnd: 2 * s, wantStop: 6 * s, wantTDown: 9 * s, wantDrainEndedBy: "delay"},
		// after the drain: stop share 4 s, reserve 3 s, margin 1 s = 8 s.
		{name: "room for the phases", giveKill: 9 * s, wantDrainEnd: 1 * s, wantStop: 5 * s, wantTDown: 8 * s, wantDrainEndedBy: "deadline", wantShortened: true},
		{name: "no room: scaled", giveKill: 4 * s, wantDrainEnd: 0, wantStop: 2 * s, wantTDown: 3500 * ms, wantDrainEndedBy: "deadline", wantShortened: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newFake(t, testConfig())
			stopDL, teardownDL := deadlineProbe(c)
			if c.ShortenGrace(clk.Now().Add(time.Second), "api") {
				t.Error("ShortenGrace before D0 = true, want false (nothing to move yet)")
			}
			c.MarkStarted()
			c.BeginDrain("test")
			d0 := c.Telemetry().Report().D0
			if got := c.ShortenGrace(d0.Add(tt.giveKill), "api"); got != tt.wantShortened {
				t.Errorf("ShortenGrace = %v, want %v", got, tt.wantShortened)
			}
			if tt.wantShortened && c.ShortenGrace(d0.Add(tt.giveKill+s), "api") {
				t.Error("a later kill after an earlier one moved the deadlines")
			}
			if tt.wantDrainEnd > 0 {
				waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
				clk.Advance(tt.wantDrainEnd - ms)
				if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
					t.Fatal("the drain ended early")
				}
				clk.Advance(ms)
			}
			waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
			done := make(chan error, 1)
			go func() { done <- c.Stop(context.Background()) }()
			if dl := waittest.Recv(t, stopDL, eventTimeout, "the stop deadline"); !dl.Equal(d0.Add(tt.wantStop)) {
				t.Errorf("stop deadline D0+%v, want D0+%v", dl.Sub(d0), tt.wantStop)
			}
			if dl := waittest.Recv(t, teardownDL, eventTimeout, "the teardown deadline"); !dl.Equal(d0.Add(tt.wantTDown)) {
				t.Errorf("teardown deadline D0+%v, want D0+%v", dl.Sub(d0), tt.wantTDown)
			}
			waittest.Recv(t, done, eventTimeout, "Stop to return")
			r := c.Telemetry().Report()
			if r.DrainEndedBy != tt.wantDrainEndedBy || (r.Grace != nil) != tt.wantShortened {
				t.Errorf("drain ended by %q, grace %+v", r.DrainEndedBy, r.Grace)
			}
			if tt.wantShortened && (r.Grace.Real != tt.giveKill || r.Grace.Source != "api") {
				t.Errorf("grace %+v, want real %v from the api", r.Grace, tt.giveKill)
			}
		})
	}
}

// A stop participant or teardown hook that fails makes the shutdown
// unclean: the report, its level, the cut counters and the module's exit
// all say so.
func TestHookErrorMakesTheShutdownUnclean(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{lifecycle.StateStopping.String(), lifecycle.StateTearingDown.String()} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			c, _, logs := newFake(t, testConfig())
			fail := func(context.Context) error { return errors.New("flush failed: 12 queued rows lost") }
			if phase == lifecycle.StateStopping.String() {
				c.AtStop("outbox", fail)
			} else {
				c.AtTeardown("outbox", fail)
			}
			c.MarkStarted()
			stopNow(t, c)
			r := c.Telemetry().Report()
			if r.ExitCode == 0 || r.ExitCode != 1 || r.Cut[lifecycle.CutHookErrors] != 1 {
				t.Errorf("report exit %d, cut %v; want 1 and hook_errors: 1", r.ExitCode, r.Cut)
			}
			if e := waitLog(t, logs, "shutdown report"); e.Level != zapcore.WarnLevel {
				t.Errorf("report logged at %v, want WARN", e.Level)
			}
		})
	}
}

// reportOrderCore notes, when the report's entry is written, whether the
// report's moment had been announced already.
type reportOrderCore struct {
	zapcore.Core
	reached     <-chan struct{}
	reachedSeen chan bool
}

func (c *reportOrderCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "shutdown report" {
		select {
		case <-c.reached:
			c.reachedSeen <- true
		default:
			c.reachedSeen <- false
		}
	}
	return c.Core.Check(e, ce)
}

// Stopped means reported: Reached(StateStopped) closes only once the
// report is logged and the log synced, so that a program that exits right
// after it loses nothing.
func TestStoppedMeansReported(t *testing.T) {
	t.Parallel()
	inner, _ := observer.New(zapcore.DebugLevel)
	core := &reportOrderCore{Core: inner, reachedSeen: make(chan bool, 1)}
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: 2 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		TeardownReserve: 100 * ms, Margin: 100 * ms}, lifecycle.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	core.reached = c.Reached(lifecycle.StateStopped)
	c.MarkStarted()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waittest.Recv(t, core.reachedSeen, eventTimeout, "the report's entry") {
		t.Error("Reached(StateStopped) closed before the report was logged")
	}
}

// SIGINT is a terminal's Ctrl-C (Kubernetes never sends it): no proxy to
// wait for, so the drain lasts DrainDelay, not the adaptive drain's wait
// for a sparse pod's quiet period; the line at D0 says so, and that a
// second signal exits at once. Not parallel: a real signal.
func TestSignalInterruptDrainsDrainDelayOnly(t *testing.T) {
	cfg := trafficConfig()
	cfg.IgnoreSignals = false
	c, clk, logs := newFake(t, cfg, lifecycle.WithShutdown(func() error { return nil }))
	serveTraffic(t, c, clk, append([]int64{600}, make([]int64, 59)...)) // bursty: quiet period = the max
	kill(t, syscall.SIGINT)
	waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "the drain")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end at DrainDelay")
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	e := waitLog(t, logs, "draining for at most 2s")
	for _, want := range []string{"SIGINT", "exits at once"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("D0 line %q does not say %q", e.Message, want)
		}
	}
	r := c.Telemetry().Report()
	if r.DrainEndedBy != lifecycle.DrainEndedDelay {
		t.Errorf("drain ended by %q, want delay", r.DrainEndedBy)
	}
	if r.Phases[0].Planned != 2*s {
		t.Errorf("drain planned %v, want DrainDelay (2s) under SIGINT", r.Phases[0].Planned)
	}
}
