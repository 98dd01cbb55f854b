package modules_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
)

// fxEntries returns the entries fx itself logged (component=fx).
func fxEntries(logs *observer.ObservedLogs) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range logs.All() {
		if e.ContextMap()["component"] == "fx" {
			out = append(out, e)
		}
	}
	return out
}

// fx's own events go through zap at Config.FxLogLevel; its errors stay at
// error whatever the level.
func TestWebFxLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give *zapcore.Level
		core zapcore.Level // the logger's level
		want zapcore.Level // of fx's events; none logged if below core
	}{
		{name: "default debug", core: zapcore.DebugLevel, want: zapcore.DebugLevel},
		{name: "default: no fx event at info", core: zapcore.InfoLevel, want: zapcore.DebugLevel},
		{name: "info", give: new(zapcore.InfoLevel), core: zapcore.DebugLevel, want: zapcore.InfoLevel},
		{name: "warn", give: new(zapcore.WarnLevel), core: zapcore.DebugLevel, want: zapcore.WarnLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(tt.core)
			cfg := testConfig()
			cfg.FxLogLevel = tt.give
			app := fxtest.New(t, modules.Web(cfg), fx.Supply(zap.New(core)))
			app.RequireStart().RequireStop()

			got := fxEntries(logs)
			if tt.want < tt.core {
				if len(got) != 0 {
					t.Errorf("%d fx entries under a %v logger, want none: first %q at %v", len(got), tt.core, got[0].Message, got[0].Level)
				}
			} else if len(got) == 0 {
				t.Fatal("no fx entries")
			}
			msgs := map[string]bool{}
			for _, e := range got {
				msgs[e.Message] = true
				if e.Level != tt.want {
					t.Errorf("fx %q logged at %v, want %v", e.Message, e.Level, tt.want)
				}
			}
			if tt.want >= tt.core && (!msgs["provided"] || !msgs["started"] || !msgs["OnStop hook executed"]) {
				t.Errorf("fx events logged: %v", msgs)
			}
			// drainfx's own lines are not affected.
			if logs.FilterMessage("shutdown plan").Len() != 1 || logs.FilterMessage("shutdown report").Len() != 1 {
				t.Error("the plan or the report is missing")
			}
		})
	}
}

func TestWebFxErrorsAtErrorLevel(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := testConfig()
	boom := errors.New("boom")
	app := fx.New(modules.Web(cfg), fx.Supply(zap.New(core)),
		fx.Invoke(func(lc fx.Lifecycle) { lc.Append(fx.Hook{OnStart: func(context.Context) error { return boom }}) }),
	)
	if err := app.Start(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Start() = %v, want boom", err)
	}
	failed := logs.FilterMessage("OnStart hook failed").All()
	if len(failed) != 1 || failed[0].Level != zapcore.ErrorLevel {
		t.Errorf("OnStart hook failed: %v", failed)
	}
}

// A call to fx.Shutdowner begins the drain at once, named in the report.
// (The bundle's /metrics: metricsmod's TestWebBundleMetrics.)
func TestWebShutdowner(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	var (
		c  *lifecycle.Coordinator
		sd fx.Shutdowner
	)
	app := fxtest.New(t, modules.Web(testConfig()), fx.Supply(zap.New(core)), fx.Populate(&c, &sd))
	app.RequireStart()
	if got := c.State(); got != lifecycle.StateServing {
		t.Fatalf("state after start = %v, want serving", got)
	}
	if err := sd.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := c.State(); got < lifecycle.StateDraining {
		t.Errorf("state once Shutdown returned = %v, want draining", got)
	}
	app.RequireStop()
	if r := c.Telemetry().Report(); r.Reason != lifecycle.ReasonShutdowner || r.ExitCode != 0 {
		t.Errorf("report = %+v", r)
	}
	if n := logs.FilterMessage("shutdown report").Len(); n != 1 {
		t.Errorf("%d shutdown reports", n)
	}
}
