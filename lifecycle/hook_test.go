package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// hangUntil returns a stop hook that ignores its context and blocks until
// release is closed (at the end of the test, so goleak finds nothing).
func hangUntil(release <-chan struct{}, started chan<- struct{}) func(context.Context) error {
	return func(context.Context) error {
		if started != nil {
			close(started)
		}
		<-release
		return nil
	}
}

func released(t *testing.T) <-chan struct{} {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return release
}

func TestStopHookShares(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, testConfig()) // stop deadline D0+6s, teardown deadline D0+9s
	release := released(t)

	var (
		mu    sync.Mutex
		share = map[string]time.Duration{}
		ran   []string
	)
	record := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			if !ok {
				t.Errorf("hook %s: no deadline", name)
			}
			mu.Lock()
			share[name] = dl.Sub(clk.Now())
			ran = append(ran, name)
			mu.Unlock()
			return nil
		}
	}
	hangStarted := make(chan struct{})
	hooks := []func(context.Context) error{
		c.StopHook("workers", record("workers")),
		c.StopHook("grpc", hangUntil(release, hangStarted)),
		c.StopHook("db", record("db")),
	}

	c.MarkStarted()
	c.BeginDrain("test")
	d0, _ := c.D0()
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	// Reach the stop deadline: exactly the teardown reserve (3s) is left.
	clk.Advance(6 * s)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")

	errc := make(chan error, len(hooks))
	go func() {
		for _, h := range hooks {
			errc <- h(context.Background())
		}
	}()
	if err := waittest.Recv(t, errc, eventTimeout, "hook workers"); err != nil {
		t.Fatalf("workers: %v", err)
	}
	waittest.Recv(t, hangStarted, eventTimeout, "the hanging hook to start")
	// workers took no time: grpc gets half of the 3s left. Its timer and
	// the spent timer of workers' deadline are on the clock.
	waittest.BlockUntil(t, clk, 2, eventTimeout)
	clk.Advance(1500*ms - ms)
	select {
	case err := <-errc:
		t.Fatalf("grpc returned %v before its share", err)
	default:
	}
	clk.Advance(ms)
	err := waittest.Recv(t, errc, eventTimeout, "hook grpc to be cut")
	if !errors.Is(err, lifecycle.ErrHookOverran) {
		t.Fatalf("grpc: %v, want ErrHookOverran", err)
	}
	if !strings.Contains(err.Error(), `"grpc"`) {
		t.Errorf("error %q does not name the hook", err)
	}
	// db still runs, with all that is left.
	if err := waittest.Recv(t, errc, eventTimeout, "hook db"); err != nil {
		t.Fatalf("db: %v", err)
	}

	mu.Lock()
	if got := share["workers"]; got != s {
		t.Errorf("workers got %v, want 1s (3s left / 3 hooks)", got)
	}
	if got := share["db"]; got != 1500*ms {
		t.Errorf("db got %v, want 1.5s (what is left after grpc)", got)
	}
	if strings.Join(ran, ",") != "workers,db" {
		t.Errorf("ran %v", ran)
	}
	mu.Unlock()

	if got, want := c.TeardownDeadline(), d0.Add(9*s); !got.Equal(want) {
		t.Errorf("TeardownDeadline = %v, want %v", got, want)
	}
	r := c.Finish()
	if r.Cut["hooks"] != 1 || r.ExitCode != 1 || r.Clean() {
		t.Errorf("report: cut %v, exit code %d; want hooks:1, 1", r.Cut, r.ExitCode)
	}
	wantHooks := []lifecycle.HookReport{
		{Name: "workers", Planned: s},
		{Name: "grpc", Planned: 1500 * ms, Actual: 1500 * ms, Overran: true},
		{Name: "db", Planned: 1500 * ms},
	}
	if len(r.Hooks) != len(wantHooks) {
		t.Fatalf("hooks = %+v", r.Hooks)
	}
	for i, want := range wantHooks {
		got := r.Hooks[i]
		if want.Overran {
			want.Err = err.Error()
		}
		if got != want {
			t.Errorf("hook %d = %+v, want %+v", i, got, want)
		}
	}
	if w := logs.FilterMessage("stop hook overran").All(); len(w) != 1 || w[0].ContextMap()["hook"] != "grpc" {
		t.Errorf("want one \"stop hook overran\" warning for grpc; logged: %s", messages(logs))
	}
}

func TestStopHookWaitsForTheDrain(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	ran := make(chan struct{})
	h := c.StopHook("cache", func(context.Context) error { close(ran); return nil })
	c.MarkStarted()
	errc := make(chan error, 1)
	go func() { errc <- h(context.Background()) }()
	waittest.Recv(t, c.DrainStarted(), eventTimeout, "the hook to begin the drain")
	if _, reason := c.D0(); reason != "app stopping" {
		t.Errorf("reason = %q, want \"app stopping\"", reason)
	}
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	if waittest.Closed(ran) {
		t.Fatal("hook ran during the drain")
	}
	clk.Advance(2 * s)
	waittest.Recv(t, ran, eventTimeout, "the hook to run after the drain")
	if err := waittest.Recv(t, errc, eventTimeout, "the hook"); err != nil {
		t.Fatal(err)
	}
	if c.State() != lifecycle.StateStopping {
		t.Errorf("State() = %v, want stopping", c.State())
	}
	// After the drain (2s) the hook's share is all that is left to the
	// teardown deadline (9s): it is the only wrapped hook.
	if r := c.Finish(); len(r.Hooks) != 1 || r.Hooks[0].Planned != 7*s || !r.Clean() {
		t.Errorf("report hooks = %+v, clean = %v", r.Hooks, r.Clean())
	}
}

func TestStopHookErrors(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	tests := []struct {
		name        string
		give        func(ctx context.Context) error
		wantErr     error // matched with errors.Is; nil: no error
		wantOverran bool
	}{
		{name: "ok", give: func(context.Context) error { return nil }},
		{name: "error", give: func(context.Context) error { return errBoom }, wantErr: errBoom},
		{
			// A hook that honours its context and gives up at its deadline
			// was cut all the same.
			name:        "gives up at its deadline",
			give:        func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantErr:     lifecycle.ErrHookOverran,
			wantOverran: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newFake(t, lifecycle.Config{GracePeriod: 10 * s, DrainDelay: lifecycle.NoDelay, TeardownReserve: 3 * s, Margin: s})
			h := c.StopHook(tt.name, tt.give)
			c.BeginDrain("test")
			waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")
			errc := make(chan error, 1)
			go func() { errc <- h(context.Background()) }()
			if tt.wantOverran {
				waittest.BlockUntil(t, clk, 1, eventTimeout)
				clk.Advance(9 * s)
			}
			err := waittest.Recv(t, errc, eventTimeout, "the hook")
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("hook error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q does not name the hook", err)
			}
			r := c.Finish()
			if len(r.Hooks) != 1 || r.Hooks[0].Overran != tt.wantOverran {
				t.Fatalf("hooks = %+v, want overran %v", r.Hooks, tt.wantOverran)
			}
			if tt.wantErr != nil && r.Hooks[0].Err == "" {
				t.Errorf("hook report has no error")
			}
			if got := r.Cut["hooks"] == 1; got != tt.wantOverran {
				t.Errorf("cut = %v, want a cut hook: %v", r.Cut, tt.wantOverran)
			}
		})
	}
}

// Why StopHook exists: fx runs every OnStop hook under one context, and once
// it has expired fx skips every hook left. With StopHook, a hanging hook
// costs only its own share and the next hook still runs.
func TestStopHookThroughFx(t *testing.T) {
	// Not parallel: the plain-fx case waits for fx's stop goroutine to end,
	// with goleak, to prove the last hook was skipped rather than late.
	type ran struct {
		mu    sync.Mutex
		names []string
	}
	hooks := func(r *ran, release <-chan struct{}, wrap func(string, func(context.Context) error) func(context.Context) error) fx.Option {
		mark := func(name string) func(context.Context) error {
			return func(context.Context) error {
				r.mu.Lock()
				r.names = append(r.names, name)
				r.mu.Unlock()
				return nil
			}
		}
		// fx runs OnStop hooks in reverse order: first, hang, last.
		return fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStop: wrap("last", mark("last"))})
			lc.Append(fx.Hook{OnStop: wrap("hang", hangUntil(release, nil))})
			lc.Append(fx.Hook{OnStop: wrap("first", mark("first"))})
		})
	}

	t.Run("plain fx skips the last hook", func(t *testing.T) {
		leaks := goleak.IgnoreCurrent()
		release := make(chan struct{})
		var r ran
		app := fxtest.New(t, fx.NopLogger, fx.StopTimeout(200*ms),
			hooks(&r, release, func(_ string, f func(context.Context) error) func(context.Context) error { return f }))
		app.RequireStart()
		ctx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
		defer cancel()
		err := app.Stop(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop() = %v, want context.DeadlineExceeded", err)
		}
		close(release)
		// fx's stop goroutine goes on after the hang returns: wait for it.
		goleak.VerifyNone(t, leaks)
		r.mu.Lock()
		defer r.mu.Unlock()
		if got := strings.Join(r.names, ","); got != "first" {
			t.Errorf("hooks run: %q, want only \"first\": fx skipped the last one", got)
		}
	})

	t.Run("StopHook runs the last hook", func(t *testing.T) {
		release := released(t)
		log, logs := newObserved()
		var r ran
		cfg := lifecycle.Config{
			GracePeriod:     600 * ms,
			DrainDelay:      lifecycle.NoDelay,
			TeardownReserve: 300 * ms,
			Margin:          50 * ms,
			IgnoreSignals:   true,
		}
		plan, err := lifecycle.NewPlan(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var c *lifecycle.Coordinator
		app := fxtest.New(t, fx.NopLogger, fx.StopTimeout(plan.StopTimeout),
			fx.Supply(cfg, log), lifecycle.Module,
			fx.Populate(&c), // builds the coordinator first: its OnStop runs last
			hooks(&r, release, func(name string, f func(context.Context) error) func(context.Context) error {
				return c.StopHook(name, f)
			}))
		app.RequireStart()
		c.MarkStarted()
		ctx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
		defer cancel()
		err = app.Stop(ctx)
		if !errors.Is(err, lifecycle.ErrUnclean) || !errors.Is(err, lifecycle.ErrHookOverran) {
			t.Fatalf("Stop() = %v, want ErrUnclean and ErrHookOverran", err)
		}
		r.mu.Lock()
		if got := strings.Join(r.names, ","); got != "first,last" {
			t.Errorf("hooks run: %q, want \"first,last\"", got)
		}
		r.mu.Unlock()
		rep, ok := c.Report()
		if !ok || rep.Cut["hooks"] != 1 || len(rep.Hooks) != 3 || !rep.Hooks[1].Overran || rep.ExitCode != 1 {
			t.Errorf("report = %+v", rep)
		}
		if n := logs.FilterMessage("shutdown report").Len(); n != 1 {
			t.Errorf("%d shutdown reports logged, want 1", n)
		}
	})
}
