package workermod_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/workermod"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait on an event in these tests; reaching it is a
// failure, not a timing.
const waitTimeout = 5 * time.Second

// roomy is a budget nothing in these tests comes near; tight is one whose
// deadlines the tests reach on purpose, on a fake clock: StopDeadline
// D0+400ms, TeardownDeadline D0+600ms. Both drain for no time.
var (
	roomy = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}
	tight = lifecycle.Config{
		GracePeriod:     600 * time.Millisecond,
		DrainDelay:      lifecycle.None,
		DrainQuiet:      lifecycle.None,
		TeardownReserve: 200 * time.Millisecond,
		Margin:          lifecycle.None,
		IgnoreSignals:   true,
	}
)

// newCoordinator returns a coordinator that is stopped when the test ends
// (at once if the test stopped it).
func newCoordinator(t *testing.T, cfg lifecycle.Config, opts ...lifecycle.Option) *lifecycle.Coordinator {
	t.Helper()
	c, err := lifecycle.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("cleanup: Stop: %v", err)
		}
	})
	return c
}

// report returns the coordinator's report; the shutdown must be over.
func report(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report: the shutdown is not over")
	}
	return r
}

// hookNames returns the names of the report's hooks of phase.
func hookNames(r lifecycle.Report, phase string) []string {
	var names []string
	for _, h := range r.Hooks {
		if h.Phase == phase {
			names = append(names, h.Name)
		}
	}
	return names
}

func newSupervisor(t *testing.T, cfg workermod.Config, c *lifecycle.Coordinator, opts ...workermod.Option) *workermod.Supervisor {
	t.Helper()
	s, err := workermod.New(cfg, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustAdd(t *testing.T, s *workermod.Supervisor, ws ...workermod.Worker) {
	t.Helper()
	for _, w := range ws {
		if err := s.Add(w); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder records the order in which things stopped.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) add(name string) {
	r.mu.Lock()
	r.names = append(r.names, name)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}

// untilDone is a well-behaved worker: it records its name once its context
// has ended and returns the context's error.
func untilDone(rec *recorder, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		rec.add(name)
		return ctx.Err()
	}
}

func TestDrainWorkerStopsAtD0TeardownWorkerAtStop(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	c.MarkStarted()
	s := newSupervisor(t, workermod.Config{}, c)
	var rec recorder
	mustAdd(t, s,
		workermod.Worker{Name: "consumer", Run: untilDone(&rec, "consumer"), Stop: workermod.AtDrain},
		workermod.Worker{Name: "flusher", Run: untilDone(&rec, "flusher")},
	)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.Running(); len(got) != 2 {
		t.Fatalf("Running() = %v, want both", got)
	}

	c.BeginDrain("test")
	waittest.Eventually(t, waitTimeout, func() bool { return slices.Equal(s.Running(), []string{"flusher"}) }, "the consumer to stop at D0")
	if got := rec.get(); !slices.Equal(got, []string{"consumer"}) {
		t.Fatalf("stopped at D0: %v, want only the consumer", got)
	}

	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := s.Running(); len(got) != 0 {
		t.Fatalf("Running() after Stop = %v", got)
	}
	if r := report(t, c); r.ExitCode != 0 || !r.Served {
		t.Fatalf("report not clean, or no drain: %+v", r)
	}
}

func TestTeardownWorkersStopInReverseOrder(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	s := newSupervisor(t, workermod.Config{}, c)
	var rec recorder
	for _, name := range []string{"a", "b", "c"} {
		mustAdd(t, s, workermod.Worker{Name: name, Run: untilDone(&rec, name)})
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, want := rec.get(), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("stop order %v, want %v", got, want)
	}
	// The coordinator ran the teardown hooks, in reverse order of Add,
	// after the supervisor's stop participant.
	r := report(t, c)
	if got, want := hookNames(r, lifecycle.StateStopping.String()), []string{"drain workers"}; !slices.Equal(got, want) {
		t.Fatalf("report stop participants %v, want %v", got, want)
	}
	if got, want := hookNames(r, lifecycle.StateTearingDown.String()), []string{"worker c", "worker b", "worker a"}; !slices.Equal(got, want) {
		t.Fatalf("report teardown hooks %v, want %v", got, want)
	}
	if r.ExitCode != 0 {
		t.Fatalf("report not clean: %+v", r)
	}
}

// Workers whose start never came (a start that failed and rolled back):
// their stops return at once — on a fake clock nothing advances, so a stop
// that waited for a deadline would never return — and they never start
// afterwards.
func TestWorkersNeverStartedStopAtOnce(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, tight, lifecycle.WithClock(clk))
	s := newSupervisor(t, workermod.Config{}, c)
	ran := make(chan string, 2)
	run := func(ctx context.Context) error { ran <- "ran"; <-ctx.Done(); return nil }
	mustAdd(t, s,
		workermod.Worker{Name: "consumer", Run: run, Stop: workermod.AtDrain},
		workermod.Worker{Name: "flusher", Run: run},
	)
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	r := report(t, c)
	if r.ExitCode != 0 || len(r.Hooks) != 2 {
		t.Fatalf("report %+v, want clean with the two hooks", r)
	}
	for _, h := range r.Hooks {
		if h.Actual != 0 || h.Err != "" {
			t.Errorf("hook %+v, want it to return at once", h)
		}
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.Running(); len(got) != 0 || len(ran) != 0 {
		t.Fatalf("Running() = %v after a Start that came after the stop, want none", got)
	}
}

func TestTeardownWorkerIgnoringContextIsCutNextStillStops(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, tight, lifecycle.WithClock(clk))
	s := newSupervisor(t, workermod.Config{}, c)
	var rec recorder
	release := make(chan struct{})
	ctxEnded := make(chan struct{})
	mustAdd(t, s,
		workermod.Worker{Name: "polite", Run: untilDone(&rec, "polite")},
		workermod.Worker{Name: "stuck", Run: func(ctx context.Context) error {
			<-ctx.Done()
			close(ctxEnded)
			<-release
			return nil
		}},
	)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(t.Context()) }()
	// The stuck worker's teardown hook runs first (the last added), with
	// its deadline on the clock.
	waittest.Recv(t, ctxEnded, waitTimeout, "the stuck worker's context to end")
	waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout)
	clk.Advance(tight.GracePeriod / 2)
	err := waittest.Recv(t, stopped, waitTimeout, "Stop")
	if !errors.Is(err, lifecycle.ErrHookOverran) {
		t.Fatalf("Stop = %v, want ErrHookOverran", err)
	}
	if got := rec.get(); !slices.Equal(got, []string{"polite"}) {
		t.Fatalf("stopped: %v, want polite stopped after stuck was cut", got)
	}
	if got := s.Running(); !slices.Equal(got, []string{"stuck"}) {
		t.Fatalf("Running() = %v, want stuck left behind", got)
	}
	r := report(t, c)
	if r.ExitCode == 0 || r.Cut[lifecycle.CutHooks] != 1 {
		t.Fatalf("report cut %v, want hooks=1", r.Cut)
	}
	if got, want := hookNames(r, lifecycle.StateTearingDown.String()), []string{"worker stuck", "worker polite"}; !slices.Equal(got, want) {
		t.Fatalf("report teardown hooks %v, want %v", got, want)
	}
	stuck, polite := r.Hooks[len(r.Hooks)-2], r.Hooks[len(r.Hooks)-1]
	if !stuck.Overran || polite.Overran {
		t.Fatalf("report hooks %+v, want stuck overran then polite on time", r.Hooks)
	}
	// The stuck worker was cut at its deadline: half of what was left of
	// the teardown (two hooks), not the whole of it; polite had the rest.
	if stuck.Planned != tight.GracePeriod/2 || stuck.Actual != stuck.Planned {
		t.Fatalf("stuck planned %v actual %v, want both %v", stuck.Planned, stuck.Actual, tight.GracePeriod/2)
	}
	if polite.Planned != tight.GracePeriod/2 {
		t.Fatalf("polite planned %v, want what was left, %v", polite.Planned, tight.GracePeriod/2)
	}

	close(release)
	waittest.Eventually(t, waitTimeout, func() bool { return len(s.Running()) == 0 }, "the stuck worker to return")
}

func TestDrainWorkerIgnoringContextIsCutAtStopDeadline(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, tight, lifecycle.WithClock(clk))
	c.MarkStarted()
	s := newSupervisor(t, workermod.Config{}, c)
	var rec recorder
	release := make(chan struct{})
	mustAdd(t, s,
		workermod.Worker{Name: "stuck", Stop: workermod.AtDrain, Run: func(context.Context) error { <-release; return nil }},
		workermod.Worker{Name: "flusher", Run: untilDone(&rec, "flusher")},
	)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.BeginDrain("test")
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(t.Context()) }()
	// The stop phase has begun: its deadline and the teardown deadline are
	// on the clock.
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	waittest.BlockUntil(t, clk.FakeClock, 2, waitTimeout)
	clk.Advance(c.Plan().StopDeadline)
	err := waittest.Recv(t, stopped, waitTimeout, "Stop")
	if !errors.Is(err, workermod.ErrLeftRunning) {
		t.Fatalf("Stop = %v, want ErrLeftRunning", err)
	}
	r := report(t, c)
	// The participant gave up on the drain worker at the stop deadline, not
	// before (the clock stood still until then).
	if len(r.Hooks) == 0 || r.Hooks[0].Name != "drain workers" || r.Hooks[0].Actual < c.Plan().StopDeadline {
		t.Fatalf("report hooks %+v, want drain workers waiting %v", r.Hooks, c.Plan().StopDeadline)
	}
	if got := rec.get(); !slices.Equal(got, []string{"flusher"}) {
		t.Fatalf("stopped: %v, want the flusher stopped all the same", got)
	}
	if r.Cut[workermod.CutWorkers] != 1 || r.ExitCode != 1 {
		t.Fatalf("report cut %v exit %d, want workers=1, exit 1", r.Cut, r.ExitCode)
	}
	close(release)
	waittest.Eventually(t, waitTimeout, func() bool { return len(s.Running()) == 0 }, "the stuck worker to return")
}

func TestFailureShutsDownWithExitCode1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    func(context.Context) error
		wantErr string
	}{
		{"error", func(context.Context) error { return errors.New("queue gone") }, "queue gone"},
		{"panic", func(context.Context) error { panic("nil map") }, "panic: nil map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.InfoLevel)
			codes := make(chan int, 1)
			c := newCoordinator(t, roomy)
			s := newSupervisor(t, workermod.Config{}, c,
				workermod.WithLogger(zap.New(core)),
				workermod.WithShutdown(func(code int) error { codes <- code; return nil }),
			)
			mustAdd(t, s, workermod.Worker{Name: "w", Run: tt.give})
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if code := waittest.Recv(t, codes, waitTimeout, "the shutdown request"); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			failed := logs.FilterMessage("worker failed: shutting down").All()
			if len(failed) != 1 {
				t.Fatalf("logged %d failures, want 1: %v", len(failed), logs.All())
			}
			fields := failed[0].ContextMap()
			if fields["error"] != tt.wantErr || fields["worker"] != "w" || fields["component"] != "workers" {
				t.Fatalf("failure logged with %v, want error %q", fields, tt.wantErr)
			}
			if _, hasStack := fields["stack"]; hasStack != (tt.name == "panic") {
				t.Fatalf("stack logged: %v, want only for a panic", hasStack)
			}
			if err := s.Stop(t.Context()); err != nil {
				t.Fatalf("Stop after a failure: %v", err)
			}
		})
	}
}

func TestRestartWithBackoff(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, roomy, lifecycle.WithClock(clk))
	var shutdowns int
	s := newSupervisor(t, workermod.Config{
		Restart:           true,
		RestartBackoff:    time.Millisecond,
		MaxRestartBackoff: 4 * time.Millisecond,
	}, c, workermod.WithShutdown(func(int) error { shutdowns++; return nil }))
	runs := make(chan int, 10)
	n := 0
	mustAdd(t, s, workermod.Worker{Name: "flaky", Run: func(ctx context.Context) error {
		n++
		runs <- n
		if n <= 2 {
			return errors.New("transient")
		}
		if n == 3 {
			panic("also transient")
		}
		<-ctx.Done()
		return nil
	}})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The backoff doubles after each failure, up to MaxRestartBackoff: the
	// clock moves exactly that far before each restart.
	backoffs := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	for want := 1; want <= 4; want++ {
		if got := waittest.Recv(t, runs, waitTimeout, "a run"); got != want {
			t.Fatalf("run %d, want %d", got, want)
		}
		if want <= len(backoffs) {
			waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout)
			clk.Advance(backoffs[want-1])
		}
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if shutdowns != 0 { // read after Stop waited for the worker's goroutine
		t.Fatalf("shut down %d times, want restarts only", shutdowns)
	}
}

func TestErrorAfterContextEndedIsReturnedByStop(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	s := newSupervisor(t, workermod.Config{}, c)
	flush := errors.New("flush: disk full")
	mustAdd(t, s, workermod.Worker{Name: "flusher", Run: func(ctx context.Context) error {
		<-ctx.Done()
		return flush
	}})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(t.Context()); !errors.Is(err, flush) {
		t.Fatalf("Stop = %v, want %v", err, flush)
	}
}

func TestWorkerReturningNilEarlyIsDone(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	called := false
	s := newSupervisor(t, workermod.Config{}, c, workermod.WithShutdown(func(int) error { called = true; return nil }))
	mustAdd(t, s, workermod.Worker{Name: "migrate", Run: func(context.Context) error { return nil }})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waittest.Eventually(t, waitTimeout, func() bool { return len(s.Running()) == 0 }, "the worker to finish")
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if called {
		t.Fatal("a worker that finished shut the app down")
	}
}

func TestAddRejects(t *testing.T) {
	t.Parallel()
	run := func(context.Context) error { return nil }
	tests := []struct {
		name string
		give workermod.Worker
		want string
	}{
		{"no name", workermod.Worker{Run: run}, `workermod: worker Name="" is empty`},
		{"no run", workermod.Worker{Name: "w"}, `workermod: worker "w": Run is nil`},
		{"bad stop", workermod.Worker{Name: "w", Run: run, Stop: 7}, `workermod: worker "w": Stop=When(7) is neither AtTeardown nor AtDrain`},
		{"twice", workermod.Worker{Name: "taken", Run: run}, `workermod: worker Name="taken" added twice`},
	}
	c := newCoordinator(t, roomy)
	s := newSupervisor(t, workermod.Config{}, c)
	mustAdd(t, s, workermod.Worker{Name: "taken", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	for _, tt := range tests {
		err := s.Add(tt.give)
		if !errors.Is(err, workermod.ErrConfig) || err.Error() != tt.want {
			t.Errorf("%s: Add = %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(workermod.Worker{Name: "late", Run: run}); !errors.Is(err, workermod.ErrStarted) {
		t.Errorf("Add after Start = %v, want ErrStarted", err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give workermod.Config
		want string // empty: valid
	}{
		{"zero", workermod.Config{}, ""},
		{"backoff above default max", workermod.Config{RestartBackoff: time.Minute}, ""},
		{"negative backoff", workermod.Config{RestartBackoff: -time.Second}, "workermod: RestartBackoff=-1s is negative"},
		{"negative max", workermod.Config{MaxRestartBackoff: -time.Second}, "workermod: MaxRestartBackoff=-1s is negative"},
		{"both negative", workermod.Config{RestartBackoff: -time.Second, MaxRestartBackoff: -time.Second},
			"workermod: RestartBackoff=-1s is negative; MaxRestartBackoff=-1s is negative"},
		{"max below backoff", workermod.Config{RestartBackoff: 2 * time.Second, MaxRestartBackoff: time.Second},
			"workermod: MaxRestartBackoff=1s is below RestartBackoff=2s"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, workermod.ErrConfig)):
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
	if got := (workermod.Config{}).WithDefaults(); got.RestartBackoff != time.Second || got.MaxRestartBackoff != 30*time.Second {
		t.Errorf("defaults = %+v", got)
	}
}
