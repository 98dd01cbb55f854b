package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/lifecycle"
)

func TestModuleBoot(t *testing.T) {
	t.Parallel()
	log, logs := newObserved()
	var c *lifecycle.Coordinator
	app := fxtest.New(t,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: 100 * ms, Margin: 100 * ms, PrestopToken: "hunter2"}, log),
		lifecycle.Module,
		fx.Populate(&c),
	)
	app.RequireStart()
	c.MarkStarted()
	if c.State() != lifecycle.StateServing {
		t.Error("not ready after start")
	}
	app.RequireStop()

	if c.State() != lifecycle.StateStopped {
		t.Errorf("State() = %v after stop", c.State())
	}
	if c.Telemetry().Report().State != lifecycle.StateStopped {
		t.Error("no report after stop")
	}
	plans := logs.FilterMessage("shutdown plan").All()
	if len(plans) != 1 {
		t.Fatalf("%d \"shutdown plan\" entries, want 1; logged: %s", len(plans), messages(logs))
	}
	fields := plans[0].ContextMap()
	if fields["component"] != "lifecycle" {
		t.Errorf("component = %v", fields["component"])
	}
	plan, _ := fields["plan"].(map[string]any)
	for k, want := range map[string]any{
		"gracePeriod":      s,
		"drainDelay":       time.Duration(0),
		"teardownReserve":  100 * ms,
		"margin":           100 * ms,
		"stopDeadline":     800 * ms,
		"teardownDeadline": 900 * ms,
		"fxStopTimeout":    s,
		"prestopToken":     true,
	} {
		if got := plan[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("plan %s = %#v, want %#v", k, got, want)
		}
	}
	b, _ := json.Marshal(logs.All())
	if strings.Contains(string(b), "hunter2") {
		t.Error("the preStop token was logged")
	}
	if n := logs.FilterMessage("shutdown report").Len(); n != 1 {
		t.Errorf("%d shutdown reports", n)
	}
}

func TestModuleDefaults(t *testing.T) {
	t.Parallel()
	// No Config, no logger: defaults and a no-op logger.
	var c *lifecycle.Coordinator
	app := fxtest.New(t, fx.NopLogger, lifecycle.Module, fx.Populate(&c))
	app.RequireStart().RequireStop()
	if got, want := c.Plan().Config, (lifecycle.Config{}).WithDefaults(); got != want {
		t.Errorf("plan = %+v, want the defaults %+v", got, want)
	}
}

// fakeTB records what fxtest reports instead of failing the test.
type fakeTB struct {
	mu     sync.Mutex
	errors []string
	failed bool
}

func (tb *fakeTB) Logf(string, ...any) {}
func (tb *fakeTB) Errorf(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.errors = append(tb.errors, fmt.Sprintf(format, args...))
}
func (tb *fakeTB) FailNow() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.failed = true
}

func TestModuleInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give lifecycle.Config
		want string
	}{
		{"negative", lifecycle.Config{Margin: -s}, "Margin=-1s is negative"},
		{"over budget", lifecycle.Config{GracePeriod: 5 * s, DrainQuiet: lifecycle.None}, "DrainDelay=5s + TeardownReserve=3s + Margin=1s = 9s must be below GracePeriod=5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tb fakeTB
			var c *lifecycle.Coordinator
			app := fxtest.New(&tb, fx.NopLogger, fx.Supply(tt.give), lifecycle.Module, fx.Populate(&c))
			err := app.Err()
			if err == nil || !tb.failed {
				t.Fatalf("fx.New succeeded (err %v, failed %v)", err, tb.failed)
			}
			if !errors.Is(err, lifecycle.ErrBudget) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("app.Err() = %v, want ErrBudget naming %q", err, tt.want)
			}
			if c != nil {
				t.Error("a coordinator was built")
			}
		})
	}
}

// The teardown follows fx's dependency order, whatever the order of the
// modules in fx.New: teardown hooks are registered in the constructors,
// which fx runs dependencies first, and the coordinator runs them last
// registered first, after every stop participant. An fx OnStop that waits
// for the coordinator (as the admin server's does) runs after the report,
// whenever fx calls it.
func TestModuleTeardownFollowsDependencies(t *testing.T) {
	t.Parallel()
	type db struct{}
	type worker struct{}
	type server struct{}
	newModules := func(note func(string)) map[string]fx.Option {
		return map[string]fx.Option{
			"db": fx.Module("db", fx.Provide(func(c *lifecycle.Coordinator) *db {
				c.AtTeardown("db", func(context.Context) error { note("db closed"); return nil })
				return &db{}
			})),
			"worker": fx.Module("worker", fx.Provide(func(c *lifecycle.Coordinator, _ *db) *worker {
				c.AtTeardown("worker", func(context.Context) error { note("worker stopped"); return nil })
				return &worker{}
			}), fx.Invoke(func(*worker) {})),
			"server": fx.Module("server", fx.Provide(func(c *lifecycle.Coordinator, _ *db) *server {
				c.AtStop("server", func(context.Context) error { note("server stopped"); return nil })
				return &server{}
			}), fx.Invoke(func(*server) {})),
			"admin": fx.Module("admin", fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
				lc.Append(fx.StopHook(func(ctx context.Context) error {
					err := c.Stop(ctx)
					note("admin stopped")
					return err
				}))
			})),
		}
	}
	want := []string{"server stopped", "worker stopped", "db closed", "admin stopped"}
	for _, listing := range [][]string{
		{"db", "worker", "server", "admin"},
		{"admin", "server", "worker", "db"},
		{"worker", "admin", "db", "server"},
	} {
		t.Run(strings.Join(listing, ","), func(t *testing.T) {
			t.Parallel()
			var (
				mu    sync.Mutex
				order []string
			)
			note := func(s string) {
				mu.Lock()
				order = append(order, s)
				mu.Unlock()
			}
			mods := newModules(note)
			opts := []fx.Option{fx.NopLogger, lifecycle.Module, lifecycle.AppOptions,
				fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
					TeardownReserve: 100 * ms, Margin: 100 * ms, IgnoreSignals: true})}
			for _, name := range listing {
				opts = append(opts, mods[name])
			}
			app := fxtest.New(t, opts...)
			app.RequireStart().RequireStop()
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(order, want) {
				t.Errorf("order %q, want %q", order, want)
			}
		})
	}
}

func TestModuleUncleanStop(t *testing.T) {
	t.Parallel()
	var c *lifecycle.Coordinator
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: 100 * ms, Margin: 100 * ms}),
		fx.Supply(zap.NewNop()),
		lifecycle.Module,
		fx.Populate(&c),
		fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtStop("http", func(context.Context) error {
				c.Telemetry().RecordCut(lifecycle.CutKind("requests"), 1)
				return nil
			})
		}),
	)
	app.RequireStart()
	err := app.Stop(context.Background())
	if !errors.Is(err, lifecycle.ErrUnclean) {
		t.Fatalf("Stop() = %v, want ErrUnclean", err)
	}
	if !strings.Contains(err.Error(), "requests") {
		t.Errorf("error %q does not say what was cut", err)
	}
	if r := c.Telemetry().Report(); r.Reason != "app stopping" || r.ExitCode != 1 {
		t.Errorf("report = %+v", r)
	}
}

// An unclean stop says so in one ERROR line a person can read — what was
// cut, where the time went — with no stack trace, beside the structured
// report; fx's own lines for the same error are not repeated.
func TestModuleUncleanStopOneErrorLine(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core, zap.AddStacktrace(zapcore.ErrorLevel)) // as zap's production config
	app := fxtest.New(t,
		fx.WithLogger(func() fxevent.Logger { return &fxevent.ZapLogger{Logger: log} }),
		lifecycle.AppOptions,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
			TeardownReserve: 100 * ms, Margin: 100 * ms, IgnoreSignals: true}),
		fx.Supply(log),
		lifecycle.Module,
		fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtStop("http", func(context.Context) error {
				c.Telemetry().RecordCut(lifecycle.CutKind("requests"), 1)
				return nil
			})
			c.AtTeardown("outbox", func(context.Context) error { return errors.New("flush failed: 12 queued rows lost") })
		}),
	)
	app.RequireStart()
	if err := app.Stop(context.Background()); !errors.Is(err, lifecycle.ErrUnclean) {
		t.Fatalf("Stop() = %v, want ErrUnclean", err)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d ERROR lines, want 1:%s", len(errs), messages(logs))
	}
	e := errs[0]
	t.Log(e.Message)
	for _, want := range []string{"NOT clean", "requests 1", "hook_errors 1", `"outbox": flush failed`, "stopping "} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("ERROR line %q does not say %q", e.Message, want)
		}
	}
	if e.Stack != "" {
		t.Errorf("ERROR line with a stack trace:\n%s", e.Stack)
	}
	if logs.FilterMessage("shutdown report").FilterLevelExact(zapcore.WarnLevel).Len() != 1 {
		t.Errorf("no structured report at WARN:%s", messages(logs))
	}
}
