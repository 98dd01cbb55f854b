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

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

func TestModuleBoot(t *testing.T) {
	t.Parallel()
	log, logs := newObserved()
	var c *lifecycle.Coordinator
	app := fxtest.New(t,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.NoDelay, TeardownReserve: 100 * ms, Margin: 100 * ms, PrestopToken: "hunter2"}, log),
		lifecycle.Module,
		fx.Populate(&c),
	)
	app.RequireStart()
	c.MarkStarted()
	if !c.Ready() {
		t.Error("not ready after start")
	}
	app.RequireStop()

	if c.State() != lifecycle.StateStopped {
		t.Errorf("State() = %v after stop", c.State())
	}
	if _, ok := c.Report(); !ok {
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
		"drainDelay":       lifecycle.NoDelay,
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
		{"over budget", lifecycle.Config{GracePeriod: 5 * s}, "DrainDelay=5s + TeardownReserve=3s + Margin=1s = 9s must be below GracePeriod=5s"},
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

func TestModuleAtFinish(t *testing.T) {
	t.Parallel()
	log, logs := newObserved()
	var (
		c     *lifecycle.Coordinator
		mu    sync.Mutex
		order []string
	)
	errAdmin := errors.New("admin: close failed")
	finisher := func(name string, err error) func(context.Context) error {
		return func(ctx context.Context) error {
			if ctx == nil {
				t.Errorf("%s: nil context", name)
			}
			if _, ok := c.Report(); !ok || logs.FilterMessage("shutdown report").Len() != 1 {
				t.Errorf("%s ran before the report was out", name)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return err
		}
	}
	app := fxtest.New(t,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.NoDelay, TeardownReserve: 100 * ms, Margin: 100 * ms, IgnoreSignals: true}, log),
		lifecycle.Module,
		fx.Populate(&c),
		fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtFinish(finisher("metrics", nil))
			c.AtFinish(finisher("admin", errAdmin))
		}),
	)
	app.RequireStart()
	err := app.Stop(context.Background())
	if !errors.Is(err, errAdmin) {
		t.Errorf("Stop() = %v, want the finisher's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"admin", "metrics"}; !reflect.DeepEqual(order, want) {
		t.Errorf("finishers ran in order %v, want %v (reverse of registration)", order, want)
	}
}

func TestModuleUncleanStop(t *testing.T) {
	t.Parallel()
	var c *lifecycle.Coordinator
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.NoDelay, TeardownReserve: 100 * ms, Margin: 100 * ms}),
		fx.Supply(zap.NewNop()),
		lifecycle.Module,
		fx.Populate(&c),
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
			lc.Append(fx.Hook{OnStop: func(ctx context.Context) error {
				if err := c.DrainAndWait(ctx); err != nil {
					return err
				}
				c.RecordCut("requests", 1)
				return nil
			}})
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
	if r, _ := c.Report(); r.Reason != "app stopping" || r.ExitCode != 1 {
		t.Errorf("report = %+v", r)
	}
}
