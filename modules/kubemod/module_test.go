package kubemod_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/kubemod"
)

// Under fx, on the real clock: the app stops, the drain begins, the
// module reads a deletion 5 s away — less than the 10 s the phases after
// the drain take in the budget — so the drain ends at once and the rest is
// scaled into those 5 s.
func TestModuleBoot(t *testing.T) {
	t.Parallel()
	var kill atomic.Pointer[time.Time]
	_, cfg := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		pod(w, clocktest.NewAt(time.Now()), kill.Load(), 5)
	})
	core, logs := observer.New(zapcore.InfoLevel)
	var (
		w *kubemod.Watcher
		c *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		lifecycle.AppOptions,
		fx.Supply(lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 20 * s, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(zap.New(core)),
		lifecycle.Module,
		fx.Supply(cfg),
		kubemod.Module,
		fx.Populate(&w, &c),
	)
	app.RequireStart()
	k := time.Now().Add(5 * s).Truncate(s)
	kill.Store(&k)
	app.RequireStop()
	waittest.Recv(t, w.Done(), eventTimeout, "the read at D0")
	rep := c.Telemetry().Report()
	if rep.Grace == nil || rep.Grace.Source != kubemod.Source || rep.DrainEndedBy != lifecycle.DrainEndedDeadline {
		t.Errorf("report grace %+v, drain ended by %q; want the deletion's deadline and the drain ended by it", rep.Grace, rep.DrainEndedBy)
	}
	kube := logs.Filter(func(e observer.LoggedEntry) bool { return e.ContextMap()["component"] == "kube" }).AllUntimed()
	if len(kube) != 2 || !strings.Contains(kube[0].Message, "on") || kube[1].Message != "pod deadline read" {
		t.Errorf("the module's lines %v, want the start-up line and the read", kube)
	}
}

func TestModuleOffByDefault(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	var w *kubemod.Watcher
	fxtest.New(t,
		fx.Supply(lifecycle.Config{IgnoreSignals: true}),
		fx.Supply(zap.New(core)),
		lifecycle.Module,
		kubemod.Module,
		fx.Populate(&w),
	).RequireStart().RequireStop()
	if !waittest.Closed(w.Done()) {
		t.Error("Done() open")
	}
	if n := logs.FilterMessageSnippet("pod deadline from the API: off").Len(); n != 1 {
		t.Errorf("%d lines saying the module is off, want 1", n)
	}
}

func TestModuleBadConfigFailsStart(t *testing.T) {
	t.Parallel()
	app := fx.New(fx.NopLogger,
		fx.Supply(lifecycle.Config{IgnoreSignals: true}),
		lifecycle.Module,
		fx.Supply(kubemod.Config{PodName: "web-0", Timeout: -s}),
		kubemod.Module,
	)
	if err := app.Err(); err == nil || !strings.Contains(err.Error(), "kubemod: Timeout=-1s is negative") {
		t.Errorf("app.Err() = %v, want the field and its value", err)
	}
}
