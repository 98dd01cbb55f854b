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

// "A signal during the start cuts it short" (Coordinator.MarkStarted; the
// lifecycle module's OnStart): an OnStart hook that heeds its context (a
// broker that does not answer) must end once a SIGTERM has run the
// shutdown, not at fx's start timeout — 15 s by default, past an 8 s grace
// period's SIGKILL. Only sqlmod's own hook is cut short today; any other
// hook waits for the start timeout, here the test's 3 s.
func TestSIGTERMDuringAnOnStartThatHeedsItsContextEndsTheStart(t *testing.T) {
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	cfg := modules.TestConfig()
	cfg.Lifecycle.IgnoreSignals = false
	var c *lifecycle.Coordinator
	app := fx.New(
		fx.NopLogger,
		modules.Web(cfg),
		fx.Populate(&c),
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
					return err
				}
				<-ctx.Done() // a connection that never comes up
				return ctx.Err()
			}})
		}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := app.Start(ctx)
	if c.State() != lifecycle.StateStopped {
		t.Fatalf("state after the start = %v, want stopped (the SIGTERM ran the shutdown)", c.State())
	}
	if ctx.Err() != nil {
		t.Errorf("the start ended at its timeout (%v), not when the SIGTERM stopped the service; start error %v", ctx.Err(), err)
	}
}
