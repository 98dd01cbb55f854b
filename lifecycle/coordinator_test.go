package lifecycle_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

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
		{lifecycle.StateStopping, "stopping"},
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

func TestCoordinatorStateOrder(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	rec := subscribe(c)
	if got := c.State(); got != lifecycle.StateStarting {
		t.Fatalf("initial State() = %v, want starting", got)
	}

	c.MarkStarted()
	c.MarkStarted() // idempotent
	if !c.BeginDrain("test") {
		t.Fatal("BeginDrain() = false on the first call")
	}
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(2 * s)
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Fatalf("DrainAndWait() = %v", err)
	}
	c.Finish()

	tests := []struct {
		wantFrom, wantTo lifecycle.State
		wantReason       string
	}{
		{lifecycle.StateStarting, lifecycle.StateServing, "started"},
		{lifecycle.StateServing, lifecycle.StateDraining, "test"},
		{lifecycle.StateDraining, lifecycle.StateStopping, "drain over"},
		{lifecycle.StateStopping, lifecycle.StateStopped, "stopped"},
	}
	start := clk.Now().Add(-2 * s)
	for _, tt := range tests {
		got := rec.next(t)
		if got.From != tt.wantFrom || got.To != tt.wantTo || got.Reason != tt.wantReason {
			t.Errorf("transition = %v → %v (%q), want %v → %v (%q)", got.From, got.To, got.Reason, tt.wantFrom, tt.wantTo, tt.wantReason)
		}
		if got.At.Before(start) {
			t.Errorf("transition %v at %v, before the test's start %v", got.To, got.At, start)
		}
	}
	select {
	case tr := <-rec.ch:
		t.Errorf("unexpected transition %v → %v", tr.From, tr.To)
	default:
	}
	if got := c.State(); got != lifecycle.StateStopped {
		t.Errorf("State() = %v, want stopped", got)
	}
	for name, ch := range map[string]<-chan struct{}{
		"DrainStarted": c.DrainStarted(), "DrainDone": c.DrainDone(), "Stopping": c.Stopping(), "Stopped": c.Stopped(),
	} {
		if !waittest.Closed(ch) {
			t.Errorf("%s() not closed after Finish", name)
		}
	}
}

func TestCoordinatorDrainingAndReady(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	tests := []struct {
		name         string
		step         func()
		wantState    lifecycle.State
		wantReady    bool
		wantDraining bool
	}{
		{"new", func() {}, lifecycle.StateStarting, false, false},
		{"started", c.MarkStarted, lifecycle.StateServing, true, false},
		{"draining", func() { c.BeginDrain("test") }, lifecycle.StateDraining, false, true},
		{"stopping", func() {
			waittest.BlockUntil(t, clk, 1, eventTimeout)
			clk.Advance(2 * s)
			_ = c.DrainAndWait(context.Background())
		}, lifecycle.StateStopping, false, true},
		{"stopped", func() { c.Finish() }, lifecycle.StateStopped, false, true},
		{"MarkStarted never moves back", c.MarkStarted, lifecycle.StateStopped, false, true},
	}
	for _, tt := range tests {
		tt.step()
		if got := c.State(); got != tt.wantState {
			t.Errorf("%s: State() = %v, want %v", tt.name, got, tt.wantState)
		}
		if got := c.Ready(); got != tt.wantReady {
			t.Errorf("%s: Ready() = %v, want %v", tt.name, got, tt.wantReady)
		}
		if got := c.Draining(); got != tt.wantDraining {
			t.Errorf("%s: Draining() = %v, want %v", tt.name, got, tt.wantDraining)
		}
	}
}

func TestBeginDrainIdempotent(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted()
	if d0, reason := c.D0(); !d0.IsZero() || reason != "" {
		t.Fatalf("D0() before the drain = %v, %q; want zero", d0, reason)
	}
	if !c.BeginDrain("prestop") {
		t.Fatal("first BeginDrain() = false")
	}
	waittest.Recv(t, c.DrainStarted(), eventTimeout, "DrainStarted")
	d0, reason := c.D0()
	if !d0.Equal(clk.Now()) || reason != "prestop" {
		t.Fatalf("D0() = %v, %q; want %v, \"prestop\"", d0, reason, clk.Now())
	}
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(time.Second)
	if c.BeginDrain("signal terminated") {
		t.Error("second BeginDrain() = true")
	}
	if d0b, reasonb := c.D0(); !d0b.Equal(d0) || reasonb != "prestop" {
		t.Errorf("D0() after a second BeginDrain = %v, %q; want %v, \"prestop\"", d0b, reasonb, d0)
	}
	// The second call did not restart the drain: it still ends at D0+DrainDelay.
	clk.Advance(time.Second)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")
	if c.BeginDrain("again") {
		t.Error("BeginDrain() after the drain = true")
	}
}

func TestBeginDrainFromStarting(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	rec := subscribe(c)
	if !c.BeginDrain("signal terminated") {
		t.Fatal("BeginDrain() before MarkStarted = false")
	}
	if tr := rec.next(t); tr.From != lifecycle.StateStarting || tr.To != lifecycle.StateDraining {
		t.Errorf("transition = %v → %v, want starting → draining", tr.From, tr.To)
	}
	c.MarkStarted()
	if c.Ready() || c.State() != lifecycle.StateDraining {
		t.Errorf("MarkStarted after the drain began moved the state to %v", c.State())
	}
}

func TestDrainDoneAtDrainDelay(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, testConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(2*s - time.Millisecond)
	if waittest.Closed(c.DrainDone()) {
		t.Fatal("DrainDone closed 1ms before DrainDelay")
	}
	clk.Advance(time.Millisecond)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone at DrainDelay")
	e := waitLog(t, logs, "drain ended")
	if got := e.ContextMap()["endedBy"]; got != lifecycle.DrainEndedDelay {
		t.Errorf("drain ended by %v, want %q", got, lifecycle.DrainEndedDelay)
	}
	if got := e.ContextMap()["took"]; got != 2*s {
		t.Errorf("drain took %v, want 2s", got)
	}
	if c.State() != lifecycle.StateDraining {
		t.Errorf("State() after the drain = %v: the stop phase begins with DrainAndWait, not the timer", c.State())
	}
}

func TestDrainAndWait(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted()
	errc := make(chan error, 1)
	go func() { errc <- c.DrainAndWait(context.Background()) }()
	waittest.Recv(t, c.DrainStarted(), eventTimeout, "DrainStarted")
	if _, reason := c.D0(); reason != "app stopping" {
		t.Errorf("D0 reason = %q, want \"app stopping\"", reason)
	}
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	if waittest.Closed(c.Stopping()) {
		t.Fatal("Stopping closed before the drain ended")
	}
	if c.StopContext().Err() != nil {
		t.Fatal("StopContext cancelled before the drain ended")
	}
	clk.Advance(2 * s)
	if err := waittest.Recv(t, errc, eventTimeout, "DrainAndWait"); err != nil {
		t.Fatalf("DrainAndWait() = %v", err)
	}
	if !waittest.Closed(c.Stopping()) || c.State() != lifecycle.StateStopping {
		t.Errorf("after DrainAndWait: Stopping closed = %v, State = %v", waittest.Closed(c.Stopping()), c.State())
	}
	if err := c.StopContext().Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("StopContext().Err() = %v, want context.Canceled", err)
	}
	// Idempotent: a second call returns at once.
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Errorf("second DrainAndWait() = %v", err)
	}
}

func TestDrainAndWaitContextEndsFirst(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.DrainAndWait(ctx) }()
	waittest.Recv(t, c.DrainStarted(), eventTimeout, "DrainStarted")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(time.Second)
	cancel()
	if err := waittest.Recv(t, errc, eventTimeout, "DrainAndWait"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DrainAndWait() = %v, want context.Canceled", err)
	}
	if c.State() != lifecycle.StateStopping || !waittest.Closed(c.Stopping()) || c.StopContext().Err() == nil {
		t.Fatalf("the stop phase did not begin: State = %v", c.State())
	}
	// The stop phase has begun: the drain is over, cut short, and a later
	// DrainAndWait (the next OnStop hook) does not wait for it again.
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone once the stop began")
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Errorf("DrainAndWait() after the stop began = %v", err)
	}
	r := c.Finish()
	if r.DrainEndedBy != lifecycle.DrainEndedAbort {
		t.Errorf("DrainEndedBy = %q, want %q", r.DrainEndedBy, lifecycle.DrainEndedAbort)
	}
	for _, p := range r.Phases {
		if p.Actual < 0 {
			t.Errorf("phase %s lasted %v", p.Name, p.Actual)
		}
	}
	if got := r.Phases[0]; got.Name != "drain" || got.Actual != time.Second {
		t.Errorf("drain phase = %+v, want 1s", got)
	}
}

func TestDeadlines(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	// Before D0 they count from now.
	if got, want := c.StopDeadline(), clk.Now().Add(6*s); !got.Equal(want) {
		t.Errorf("StopDeadline() before D0 = %v, want now+6s %v", got, want)
	}
	if got, want := c.TeardownDeadline(), clk.Now().Add(9*s); !got.Equal(want) {
		t.Errorf("TeardownDeadline() before D0 = %v, want now+9s %v", got, want)
	}
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	d0, _ := c.D0()
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(4 * s) // the deadlines stay where D0 put them
	if got, want := c.StopDeadline(), d0.Add(6*s); !got.Equal(want) {
		t.Errorf("StopDeadline() = %v, want D0+6s %v", got, want)
	}
	if got, want := c.TeardownDeadline(), d0.Add(9*s); !got.Equal(want) {
		t.Errorf("TeardownDeadline() = %v, want D0+9s %v", got, want)
	}
	if c.Clock() != clockwork.Clock(clk) {
		t.Error("Clock() is not the clock passed with WithClock")
	}
}

func TestStopPhaseContextEndsAtTheStopDeadline(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout) // the drain timer
	d0, _ := c.D0()
	ctx, cancel := c.StopPhaseContext(context.Background())
	defer cancel()
	waittest.BlockUntil(t, clk, 2, eventTimeout) // and the context's, on the same clock
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(d0.Add(6*s)) {
		t.Errorf("Deadline() = %v, %v; want D0+6s %v, true", dl, ok, d0.Add(6*s))
	}
	clk.Advance(6*s - 1) // one tick before the stop deadline
	if waittest.Closed(ctx.Done()) {
		t.Fatal("the context ended before the stop deadline")
	}
	clk.Advance(1)
	waittest.Recv(t, ctx.Done(), eventTimeout, "the context to end at the stop deadline")
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want context.DeadlineExceeded", err)
	}
}

func TestStopPhaseContextEndsWithCtx(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func() (ctx context.Context, end func()) // the caller's ctx, and how it ends
	}{
		{"cancelled", func() (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel
		}},
		// clockwork documents that its fake-clock context ignores a parent
		// that ended with DeadlineExceeded: this one must end all the same.
		{"deadline exceeded", func() (context.Context, func()) {
			ctx := &deadlineCtx{Context: context.Background(), done: make(chan struct{})}
			return ctx, sync.OnceFunc(func() { close(ctx.done) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newFake(t, testConfig())
			c.BeginDrain("test")
			parent, end := tt.give()
			defer end()
			ctx, cancel := c.StopPhaseContext(parent)
			defer cancel()
			if waittest.Closed(ctx.Done()) {
				t.Fatal("the context ended before ctx did and before the stop deadline")
			}
			end()
			waittest.Recv(t, ctx.Done(), eventTimeout, "the context to end with ctx")
			if now, dl := clk.Now(), c.StopDeadline(); !now.Before(dl) {
				t.Fatalf("the fake clock reached the stop deadline (%v ≥ %v): the test proves nothing", now, dl)
			}
		})
	}
}

// deadlineCtx ends with context.DeadlineExceeded, as a context whose
// deadline has passed does, but when the test closes done.
type deadlineCtx struct {
	context.Context // Background: no deadline, no values
	done            chan struct{}
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	if waittest.Closed(c.done) {
		return context.DeadlineExceeded
	}
	return nil
}

func TestStopPhaseContextCancel(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	ctx, cancel := c.StopPhaseContext(context.Background())
	cancel()
	waittest.Recv(t, ctx.Done(), eventTimeout, "the context to end with its cancel")
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
}

func TestCloseAbandonsTheDrain(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	c.Close()
	c.Close() // idempotent
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone after Close")
	if r := c.Finish(); r.DrainEndedBy != lifecycle.DrainEndedAbort {
		t.Errorf("DrainEndedBy = %q, want %q", r.DrainEndedBy, lifecycle.DrainEndedAbort)
	}
}

func TestBeginDrainAfterClose(t *testing.T) {
	t.Parallel()
	c, _, _ := newFake(t, testConfig())
	c.Close()
	if !c.BeginDrain("late") {
		t.Fatal("BeginDrain() after Close = false")
	}
	// A closed coordinator runs no timer: the drain ends at once.
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := c.Finish(); r.DrainEndedBy != lifecycle.DrainEndedAbort {
		t.Errorf("DrainEndedBy = %q, want %q", r.DrainEndedBy, lifecycle.DrainEndedAbort)
	}
}

// Transitions reach subscribers in order even when they happen on different
// goroutines at nearly the same time (a preStop call and fx's stop).
func TestSubscribeOrderUnderConcurrency(t *testing.T) {
	t.Parallel()
	for range 200 {
		c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.NoDelay, IgnoreSignals: true})
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu  sync.Mutex
			got []lifecycle.State
		)
		c.Subscribe(func(tr lifecycle.Transition) {
			mu.Lock()
			got = append(got, tr.To)
			mu.Unlock()
		})
		var wg sync.WaitGroup
		wg.Go(func() { c.BeginDrain("prestop") })
		wg.Go(func() { _ = c.DrainAndWait(context.Background()) })
		wg.Wait()
		c.Finish()
		mu.Lock()
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("subscriber saw %v", got)
			}
		}
		mu.Unlock()
	}
}

// A subscriber is never called for one transition while it is still handling
// the one before: Subscribe promises synchronous calls, in order.
func TestSubscribeCallsDoNotOverlap(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.NoDelay})
	if err != nil {
		t.Fatal(err)
	}
	var (
		inCall       atomic.Int32
		overlapped   atomic.Bool
		stoppingSeen = make(chan struct{})
		mu           sync.Mutex
		got          []lifecycle.State
	)
	c.Subscribe(func(tr lifecycle.Transition) {
		if inCall.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer inCall.Add(-1)
		mu.Lock()
		got = append(got, tr.To)
		mu.Unlock()
		switch tr.To {
		case lifecycle.StateDraining:
			// Hold this call while the stop phase begins on another
			// goroutine. With ordered delivery the stopping transition
			// waits for this call, and this wait runs out; the bound is
			// what a wrongly concurrent delivery would need to show up.
			select {
			case <-stoppingSeen:
			case <-time.After(100 * time.Millisecond):
			}
		case lifecycle.StateStopping:
			close(stoppingSeen)
		}
	})
	errc := make(chan error, 1)
	go func() {
		<-c.DrainStarted()
		errc <- c.DrainAndWait(context.Background())
	}()
	c.BeginDrain("prestop")
	if err := waittest.Recv(t, errc, eventTimeout, "DrainAndWait"); err != nil {
		t.Fatal(err)
	}
	c.Finish()
	if overlapped.Load() {
		t.Error("a subscriber call began before the previous one returned")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []lifecycle.State{lifecycle.StateDraining, lifecycle.StateStopping, lifecycle.StateStopped}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("subscriber saw %v, want %v", got, want)
	}
}

// Whoever wakes on a phase's channel sees the state of that phase: a probe
// woken by DrainStarted must not still find the service ready.
func TestChannelsCloseAfterTheStateMoves(t *testing.T) {
	t.Parallel()
	for range 300 {
		c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.NoDelay})
		if err != nil {
			t.Fatal(err)
		}
		c.MarkStarted()
		seen := make(chan [3]lifecycle.State, 1)
		go func() {
			var got [3]lifecycle.State
			<-c.DrainStarted()
			got[0] = c.State()
			<-c.Stopping()
			got[1] = c.State()
			<-c.Stopped()
			got[2] = c.State()
			seen <- got
		}()
		c.BeginDrain("test")
		_ = c.DrainAndWait(context.Background())
		c.Finish()
		got := waittest.Recv(t, seen, eventTimeout, "the waiter")
		if got[0] < lifecycle.StateDraining || got[1] < lifecycle.StateStopping || got[2] != lifecycle.StateStopped {
			t.Fatalf("woken by DrainStarted, Stopping, Stopped, the waiter saw %v", got)
		}
	}
}

func TestTrackInFlight(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	var requests, sessions int64 = 3, 2
	var mu sync.Mutex
	c.TrackInFlight("requests", func() int64 { mu.Lock(); defer mu.Unlock(); return requests })
	c.TrackInFlight("sessions", func() int64 { mu.Lock(); defer mu.Unlock(); return sessions })
	c.MarkStarted()
	c.BeginDrain("test")
	mu.Lock()
	requests, sessions = 1, 2
	mu.Unlock()
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(2 * s)
	_ = c.DrainAndWait(context.Background())
	r := c.Finish()
	if got := r.InFlightAtD0; got["requests"] != 3 || got["sessions"] != 2 || len(got) != 2 {
		t.Errorf("InFlightAtD0 = %v, want requests:3 sessions:2", got)
	}
	if got := r.InFlightStop; got["requests"] != 1 || got["sessions"] != 2 || len(got) != 2 {
		t.Errorf("InFlightStop = %v, want requests:1 sessions:2", got)
	}
}
