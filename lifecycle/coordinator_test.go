package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func TestStateString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give lifecycle.State
		want string
	}{
		{lifecycle.StateStarting, "starting"},
		{lifecycle.StateServing, "serving"},
		{lifecycle.StateDraining, "draining"},
		{lifecycle.StateDrained, "drained"},
		{lifecycle.StateStopping, "stopping"},
		{lifecycle.StateTearingDown, "tearing down"},
		{lifecycle.StateStopped, "stopped"},
		{lifecycle.State(-1), "unknown"},
		{lifecycle.State(42), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", int(tt.give), got, tt.want)
		}
	}
}

// The whole timeline, driven by the coordinator: every state in order,
// each Reached channel closed once its state is reached, the state seen by
// OnState callbacks already moved.
func TestTimelineStateOrder(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	rec := record(c)
	if got := c.State(); got != lifecycle.StateStarting {
		t.Fatalf("initial State() = %v, want starting", got)
	}
	if !waittest.Closed(c.Reached(lifecycle.StateStarting)) || waittest.Closed(c.Reached(lifecycle.StateServing)) {
		t.Fatal("Reached: starting must be closed at New, serving not")
	}
	c.MarkStarted()
	c.MarkStarted() // idempotent
	if !c.BeginDrain("test") {
		t.Fatal("BeginDrain() = false on the first call")
	}
	if c.BeginDrain("again") {
		t.Error("BeginDrain() = true on the second call")
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the drain timer
	clk.Advance(2 * s)
	r := stopAndReport(t, c, clk)

	want := []lifecycle.State{lifecycle.StateServing, lifecycle.StateDraining, lifecycle.StateDrained,
		lifecycle.StateStopping, lifecycle.StateTearingDown, lifecycle.StateStopped}
	for _, w := range want {
		if got := rec.next(t); got != w {
			t.Errorf("transition to %v, want %v", got, w)
		}
	}
	for st := lifecycle.StateStarting; st <= lifecycle.StateStopped; st++ {
		if !waittest.Closed(c.Reached(st)) {
			t.Errorf("Reached(%v) not closed after the report", st)
		}
	}
	if r.Reason != "test" || r.StopReason != lifecycle.ReasonAppStopping || r.DrainEndedBy != lifecycle.DrainEndedDelay || !r.Served {
		t.Errorf("report reason %q, stop reason %q, drain ended by %q, served %v", r.Reason, r.StopReason, r.DrainEndedBy, r.Served)
	}
	if c.MarkStarted(); c.State() != lifecycle.StateStopped {
		t.Errorf("MarkStarted moved a stopped coordinator to %v", c.State())
	}
}

// OnState runs in the transition: the state has moved, Reached for it is
// not closed yet, and callbacks of one state run before the next state's.
func TestOnStateRunsInTheTransition(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	var seen []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	c.OnState(lifecycle.StateDraining, func() {
		if c.State() != lifecycle.StateDraining {
			t.Errorf("OnState(draining) saw state %v", c.State())
		}
		if waittest.Closed(c.Reached(lifecycle.StateDraining)) {
			t.Error("Reached(draining) closed before its OnState callbacks ran")
		}
		note("draining")
	})
	c.OnState(lifecycle.StateStopping, func() { note("stopping") })
	c.AtStop("server", func(context.Context) error { note("participant"); return nil })
	c.MarkStarted()
	c.BeginDrain("test")
	c.OnState(lifecycle.StateServing, func() { note("serving, registered late: runs at once") })
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	stopAndReport(t, c, clk)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"draining", "serving, registered late: runs at once", "stopping", "participant"}
	if !slices.Equal(seen, want) {
		t.Errorf("order %q, want %q", seen, want)
	}
}

func TestBeginDrainFromStarting(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	if !c.BeginDrain("signal terminated") {
		t.Fatal("BeginDrain() before MarkStarted = false")
	}
	// Never served: nothing to drain, the drain ends at once.
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	c.MarkStarted()
	if c.State() == lifecycle.StateServing {
		t.Error("MarkStarted after the drain began made the service ready")
	}
	if r := stopAndReportNoClock(t, c); r.DrainEndedBy != "" || r.Served {
		t.Errorf("drain ended by %q, served %v; want none, false", r.DrainEndedBy, r.Served)
	}
}

// stopAndReportNoClock is stopAndReport for a timeline that needs no time.
func stopAndReportNoClock(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := c.Telemetry().Report()
	return r
}

// Stop without a drain first begins one ("app stopping"), lets it run its
// course, then stops: one timeline.
func TestStopBeginsTheDrain(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted()
	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "D0")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2*s - time.Millisecond)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("the drain ended before DrainDelay")
	}
	clk.Advance(time.Millisecond)
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	r := c.Telemetry().Report()
	if r.Reason != lifecycle.ReasonAppStopping || r.Phases[0].Actual != 2*s || r.Phases[1].Actual != 0 {
		t.Errorf("reason %q phases %+v: want app stopping, a 2s drain and no wait", r.Reason, r.Phases)
	}
}

// A Stop whose ctx ends cuts the drain short, and returns ctx.Err().
func TestStopContextEndsFirst(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Stop(ctx) }()
	cancel()
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop() = %v, want context.Canceled", err)
	}
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	if r := c.Telemetry().Report(); r.DrainEndedBy != lifecycle.DrainEndedAbort {
		t.Errorf("drain ended by %q, want abort", r.DrainEndedBy)
	}
}

// Stop participants are called together when the stop phase begins, with
// a context that ends at the stop deadline (D0+6s); the teardown begins
// when the last has returned.
func TestStopParticipantsTogetherUntilTheStopDeadline(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	var began sync.WaitGroup
	began.Add(2)
	var teardownAt atomic.Int64
	deadlines := make(chan time.Time, 2)
	for _, name := range []string{"http", "sessions"} {
		c.AtStop(name, func(ctx context.Context) error {
			began.Done()
			began.Wait() // both run at once
			dl, _ := ctx.Deadline()
			deadlines <- dl
			<-ctx.Done() // a participant that needs all its time
			return nil
		})
	}
	c.AtTeardown("pool", func(context.Context) error {
		teardownAt.Store(clk.Now().UnixNano())
		return nil
	})
	c.MarkStarted()
	c.BeginDrain("test")
	d0 := c.Telemetry().Report().D0
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }()
	for range 2 {
		if dl := waittest.Recv(t, deadlines, eventTimeout, "a participant's deadline"); !dl.Equal(d0.Add(6 * s)) {
			t.Errorf("participant deadline %v, want D0+6s %v", dl, d0.Add(6*s))
		}
	}
	waittest.BlockUntil(t, clk.FakeClock, 2, eventTimeout) // the stop deadline and the hard bound
	clk.Advance(4 * s)
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(0, teardownAt.Load()); !got.Equal(d0.Add(6 * s)) {
		t.Errorf("teardown began at %v, want D0+6s %v", got, d0.Add(6*s))
	}
	r := c.Telemetry().Report()
	if len(r.Hooks) != 3 || r.Hooks[0].Phase != lifecycle.StateStopping.String() || r.Hooks[2].Name != "pool" || r.Hooks[2].Phase != lifecycle.StateTearingDown.String() {
		t.Errorf("hooks %+v, want two stop participants then the pool", r.Hooks)
	}
}

// Teardown hooks run after every stop participant, one after another, last
// registered first, each with an equal share of what is left of the
// teardown reserve; one that overruns is cut, counted and reported, and
// the next still gets its share.
func TestTeardownReverseOrderAndShares(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, testConfig())
	var order []string
	var mu sync.Mutex
	blocking := make(chan struct{})
	hook := func(name string, block bool) func(context.Context) error {
		return func(ctx context.Context) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			if block {
				close(blocking)
				<-ctx.Done() // honours its context: gives up at its deadline
				return ctx.Err()
			}
			return nil
		}
	}
	c.AtTeardown("pool", hook("pool", false))     // registered first: runs last
	c.AtTeardown("cache", hook("cache", true))    // overruns its 1s share
	c.AtTeardown("worker", hook("worker", false)) // registered last: runs first
	c.AtStop("http", func(context.Context) error { return nil })
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateTearingDown), eventTimeout, "the teardown")
	// The stop phase ended at D0+2s: the teardown has until D0+9s, 7s for
	// three hooks. The worker returns at once; the cache gets 7s/2 = 3.5s.
	waittest.Recv(t, blocking, eventTimeout, "the cache hook")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(3500 * time.Millisecond)
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"worker", "cache", "pool"}; !slices.Equal(order, want) {
		t.Errorf("teardown order %q, want %q", order, want)
	}
	r := c.Telemetry().Report()
	var planned []time.Duration
	for _, h := range r.Hooks[1:] {
		planned = append(planned, h.Planned)
	}
	if want := []time.Duration{7 * s / 3, 3500 * time.Millisecond, 3500 * time.Millisecond}; !slices.Equal(planned, want) {
		t.Errorf("teardown shares %v, want %v", planned, want)
	}
	if !r.Hooks[2].Overran || r.Cut[lifecycle.CutHooks] != 1 || r.ExitCode != 1 {
		t.Errorf("cache: overran %v, cut %v, exit %d; want overran, 1 hook cut, exit 1", r.Hooks[2].Overran, r.Cut, r.ExitCode)
	}
	if n := logs.FilterMessage("teardown hook overran").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d overrun warnings, want 1", n)
	}
}

// A hook that ignores its context is left running at its deadline; the
// next hook still runs, and the report comes out.
func TestTeardownHookIgnoringItsContextIsLeftBehind(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	release := make(chan struct{})
	defer close(release)
	ran := make(chan struct{})
	c.AtTeardown("after", func(context.Context) error { close(ran); return nil })
	c.AtTeardown("stuck", func(context.Context) error { <-release; return nil })
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateTearingDown), eventTimeout, "the teardown")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(7 * s / 2)
	waittest.Recv(t, ran, eventTimeout, "the next hook")
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	if r := c.Telemetry().Report(); !r.Hooks[0].Overran || r.Hooks[0].Name != "stuck" {
		t.Errorf("hooks %+v, want the stuck one overran", r.Hooks)
	}
}

// A drain that nothing follows (a preStop call from someone else, no
// SIGTERM) does not leave the pod unready for good: GracePeriod after D0
// the coordinator stops by itself, with a whole stop phase from then, and
// asks the app to stop.
func TestNoStopAfterTheDrainStopsByItself(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	c, clk, logs := newFake(t, testConfig(), lifecycle.WithShutdown(func() error { asked <- struct{}{}; return nil }))
	deadlines := make(chan time.Time, 1)
	c.AtStop("http", func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		deadlines <- dl
		return nil
	})
	c.MarkStarted()
	c.BeginDrain(lifecycle.ReasonPrestop)
	d0 := c.Telemetry().Report().D0
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // waiting for a stop
	clk.Advance(8*s - time.Millisecond)
	if c.State() != lifecycle.StateDrained {
		t.Fatalf("state %v before GracePeriod after D0, want drained", c.State())
	}
	clk.Advance(time.Millisecond)
	waittest.Recv(t, asked, eventTimeout, "the app asked to stop")
	// The stop phase gets its whole planned time from now: 6s − 2s = 4s.
	if dl := waittest.Recv(t, deadlines, eventTimeout, "the participant"); !dl.Equal(d0.Add(10*s + 4*s)) {
		t.Errorf("stop deadline %v, want D0+10s+4s %v", dl, d0.Add(14*s))
	}
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	r := c.Telemetry().Report()
	if r.StopReason != lifecycle.ReasonNoStop || r.ExitCode != 0 {
		t.Errorf("stop reason %q, clean %v; want %q, clean", r.StopReason, r.ExitCode == 0, lifecycle.ReasonNoStop)
	}
	waitLog(t, logs, "nothing asked for the stop")
}

// The same participants, driven by the same coordinator, with no fx:
// construct, start, Stop.
func TestWithoutFx(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: 2 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		TeardownReserve: 500 * time.Millisecond, Margin: 100 * time.Millisecond, IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var mu sync.Mutex
	note := func(s string) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			order = append(order, s)
			mu.Unlock()
			return nil
		}
	}
	c.AtTeardown("db", note("db"))
	c.AtStop("http", note("http"))
	c.AtTeardown("worker", note("worker"))
	c.MarkStarted()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http", "worker", "db"}; !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	if r := c.Telemetry().Report(); r.ExitCode != 0 || r.Reason != lifecycle.ReasonAppStopping {
		t.Errorf("report %+v", r)
	}
}

func TestTrackInFlight(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	var n atomic.Int64
	n.Store(3)
	tel := c.Telemetry()
	tel.TrackInFlight("requests", n.Load)
	tel.TrackInFlight("requests", func() int64 { return 2 }) // a second server adds up
	tel.TrackInFlight("websocket", func() int64 { return 1 })
	if got := tel.Report().InFlight; got["requests"] != 5 || got["websocket"] != 1 {
		t.Errorf("Report().InFlight = %v", got)
	}
	c.MarkStarted()
	c.BeginDrain("test")
	n.Store(1)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	r := stopAndReport(t, c, clk)
	if r.InFlightAtD0["requests"] != 5 || r.InFlightStop["requests"] != 3 {
		t.Errorf("in flight at D0 %v, at stop %v; want 5 then 3", r.InFlightAtD0, r.InFlightStop)
	}
}
