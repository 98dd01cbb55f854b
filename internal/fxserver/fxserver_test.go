package fxserver_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/fxserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestShutdownOnServeErrorStopsTheAppWithExitCode1(t *testing.T) {
	t.Parallel()
	var sd fx.Shutdowner
	app := fxtest.New(t, fx.Populate(&sd)).RequireStart()
	defer app.RequireStop()
	fxserver.ShutdownOnServeError(sd, nil, "test")(errors.New("accept: broken"))
	select {
	case sig := <-app.Wait():
		if sig.ExitCode != 1 {
			t.Errorf("exit code = %d, want 1", sig.ExitCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the app was not asked to shut down")
	}
}

type failingShutdowner struct{ err error }

func (s failingShutdowner) Shutdown(...fx.ShutdownOption) error { return s.err }

func TestShutdownOnServeErrorLogsAFailedShutdown(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	errShutdown := errors.New("shutdown: no app")
	fxserver.ShutdownOnServeError(failingShutdowner{errShutdown}, zap.New(core), "grpc")(errors.New("serve: broken"))
	entries := logs.FilterMessage("shutdown after serve error").All()
	if len(entries) != 1 {
		t.Fatalf("logged %v, want one \"shutdown after serve error\"", logs.All())
	}
	fields := entries[0].ContextMap()
	if entries[0].Level != zapcore.ErrorLevel || fields["component"] != "grpc" || fields["error"] != errShutdown.Error() {
		t.Errorf("logged %v %v, want error with component=grpc error=%q", entries[0].Level, fields, errShutdown)
	}
	// Without a logger the failure is not logged, and nothing panics.
	fxserver.ShutdownOnServeError(failingShutdowner{errShutdown}, nil, "grpc")(errors.New("serve: broken"))
}
