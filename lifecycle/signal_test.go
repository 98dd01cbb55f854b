package lifecycle_test

// These tests send real signals to the test process. That is safe while a
// coordinator's signal handler (from MarkStarted until the report) has
// signal.Notify registered, and they are not parallel, so no other test's
// handler sees their signals (parallel tests start only once every
// sequential test is done).

import (
	"errors"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func TestSignalFirstDrainsThenShuts(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	exits := make(chan int, 2)
	var calls atomic.Int32
	shut := make(chan struct{}, 2)
	c, clk, logs := newFake(t, testConfig(), lifecycle.WithExit(func(code int) { exits <- code }),
		lifecycle.WithShutdown(func() error { calls.Add(1); shut <- struct{}{}; return errors.New("not running") }))
	c.MarkStarted()

	kill(t, syscall.SIGTERM)
	waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "the signal to begin the drain")
	if reason := c.Telemetry().Report().Reason; reason != "signal terminated" {
		t.Errorf("reason = %q, want \"signal terminated\"", reason)
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2*s - ms)
	select {
	case <-shut:
		t.Fatal("shutdown called before the drain ended")
	default:
	}
	clk.Advance(ms)
	waittest.Recv(t, shut, eventTimeout, "the shutdown call after the drain")
	waitLog(t, logs, "shutdown request") // its error is logged
	// After the drain the handler asked for the stop: the timeline runs
	// to the report without anyone else.
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	goleak.VerifyNone(t, leaks) // the handler's goroutine is gone with the report

	if n := calls.Load(); n != 1 {
		t.Errorf("shutdown called %d times, want 1", n)
	}
	select {
	case code := <-exits:
		t.Errorf("exit(%d) called after one signal", code)
	default:
	}
	if e := waitLog(t, logs, "signal received"); e.ContextMap()["signal"] != "terminated" {
		t.Errorf("signal log = %v", e.ContextMap())
	}
}

func TestSignalSecondExits(t *testing.T) {
	tests := []struct {
		name       string
		giveFirst  syscall.Signal
		giveSecond syscall.Signal
		wantReason lifecycle.Reason
		wantCode   int
	}{
		{"SIGTERM twice", syscall.SIGTERM, syscall.SIGTERM, "signal terminated", 143},
		{"SIGTERM then SIGINT", syscall.SIGTERM, syscall.SIGINT, "signal terminated", 130},
		{"SIGINT twice", syscall.SIGINT, syscall.SIGINT, "signal interrupt", 130},
		{"SIGHUP twice", syscall.SIGHUP, syscall.SIGHUP, "signal hangup", 129},
		{"SIGHUP then SIGTERM", syscall.SIGHUP, syscall.SIGTERM, "signal hangup", 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks := goleak.IgnoreCurrent()
			exits := make(chan int, 2)
			var calls atomic.Int32
			c, _, logs := newFake(t, testConfig(), lifecycle.WithExit(func(code int) { exits <- code }),
				lifecycle.WithShutdown(func() error { calls.Add(1); return nil }))
			c.MarkStarted()

			kill(t, tt.giveFirst)
			waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "the first signal to begin the drain")
			if reason := c.Telemetry().Report().Reason; reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
			kill(t, tt.giveSecond)
			if code := waittest.Recv(t, exits, eventTimeout, "exit"); code != tt.wantCode {
				t.Errorf("exit(%d), want exit(%d)", code, tt.wantCode)
			}
			e := waitLog(t, logs, "second signal")
			if e.Level != zapcore.ErrorLevel || e.ContextMap()["code"] != int64(tt.wantCode) {
				t.Errorf("second signal logged as %v %v", e.Level, e.ContextMap())
			}
			stopNow(t, c) // ends the drain timer the first signal started, and the handler
			goleak.VerifyNone(t, leaks)
			if calls.Load() != 0 {
				t.Error("shutdown called though the drain never ended")
			}
		})
	}
}

func TestSignalAfterPrestop(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	exits := make(chan int, 1)
	shut := make(chan struct{}, 2)
	c, clk, _ := newFake(t, testConfig(), lifecycle.WithExit(func(code int) { exits <- code }),
		lifecycle.WithShutdown(func() error { shut <- struct{}{}; return nil }))
	c.MarkStarted()
	c.BeginDrain("prestop")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the preStop drain")

	kill(t, syscall.SIGTERM)
	// No clock advance: the kubelet's SIGTERM after preStop adds no delay.
	waittest.Recv(t, shut, eventTimeout, "shutdown at once")
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	goleak.VerifyNone(t, leaks)
	select {
	case code := <-exits:
		t.Errorf("exit(%d) called", code)
	default:
	}
	if reason := c.Telemetry().Report().Reason; reason != "prestop" {
		t.Errorf("reason = %q, want \"prestop\"", reason)
	}
}

func TestSignalStopWithoutSignal(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, _, _ := newFake(t, testConfig(), lifecycle.WithShutdown(func() error { t.Error("shutdown called"); return nil }))
	c.MarkStarted()
	if c.State() >= lifecycle.StateDraining {
		t.Error("draining without a signal")
	}
	stopNow(t, c)
	goleak.VerifyNone(t, leaks) // the handler stopped with the report
}

// Without fx, a preStop call can come before MarkStarted: the admin server
// (with /prestop) is started before it, as in the README's snippet, and a
// pod deleted during a slow start-up gets its preStop hook then. The
// kubelet's SIGTERM follows; it must stop the service (stop phase,
// teardown, report) like any SIGTERM after a preStop, not meet the default
// action (the process killed, no report).
func TestSignalAfterPrestopBeforeMarkStarted(t *testing.T) {
	// Were no handler of the coordinator's registered, this keeps the
	// SIGTERM from killing the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	shut := make(chan struct{}, 2)
	c, _, _ := newFake(t, testConfig(), lifecycle.WithShutdown(func() error { shut <- struct{}{}; return nil }))
	c.BeginDrain(lifecycle.ReasonPrestop) // the kubelet's preStop during the start-up
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain of a service that never served")
	c.MarkStarted() // the start-up ends: "the first SIGTERM drains, then stops"

	kill(t, syscall.SIGTERM)
	waittest.Recv(t, guard, eventTimeout, "the SIGTERM")
	select {
	case <-c.Reached(lifecycle.StateStopped):
	case <-time.After(eventTimeout):
		t.Fatalf("SIGTERM after a preStop before MarkStarted: state %v after %v, want stopped "+
			"(no signal handler: a real process dies of the default action, without a report)", c.State(), eventTimeout)
	}
	// The handler asks the app to stop right after it asked for the stop
	// phase: the report may come first.
	waittest.Recv(t, shut, eventTimeout, "the app to be asked to stop")
}
