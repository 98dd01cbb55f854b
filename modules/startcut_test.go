package modules_test

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
)

// A SIGTERM while an OnStart hook of the app's own runs before httpmod's
// (a module listed before modules.Web) begins the drain, and the
// coordinator runs the whole shutdown before httpmod's OnStart is called.
// That start must then say it was cut short by the drain, as sqlmod's does
// ("sqlmod: start cut short: the drain began (signal terminated)"), not
// "httpmod: server already started" — a server that never listened.
func TestSIGTERMDuringAnEarlierOnStartSaysTheStartWasCut(t *testing.T) {
	// The coordinator's handler catches the SIGTERM below; this one keeps a
	// broken handler from killing the test binary with the default action.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	cfg := modules.TestConfig()
	cfg.Lifecycle.IgnoreSignals = false
	var c *lifecycle.Coordinator
	app := fx.New(
		fx.NopLogger,
		fx.Module("first", fx.Invoke(func(lc fx.Lifecycle, co *lifecycle.Coordinator) {
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				// A slow start, during which the kubelet sends SIGTERM.
				if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
					return err
				}
				select {
				case <-co.Reached(lifecycle.StateStopped):
				case <-ctx.Done():
				}
				return nil
			}})
		})),
		modules.Web(cfg),
		fx.Populate(&c),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := app.Start(ctx)
	if err == nil {
		_ = app.Stop(ctx)
		t.Fatal("start went on after the shutdown it was cut short by")
	}
	if got := c.Telemetry().Report().Reason; got != "signal terminated" {
		t.Errorf("drain reason = %q, want signal terminated", got)
	}
	if msg := err.Error(); strings.Contains(msg, "already started") || !strings.Contains(msg, "cut short") {
		t.Errorf("start error = %q, want one that says the start was cut short by the drain (signal terminated)", msg)
	}
}
