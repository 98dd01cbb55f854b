package srvstate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it is a failure.
const waitTimeout = 5 * time.Second

var (
	errStarted  = errors.New("test: already started")
	errCutShort = errors.New("test: start cut short")
)

func newState() *srvstate.State {
	return srvstate.New(errStarted, func() error { return errCutShort })
}

func TestStartOnce(t *testing.T) {
	t.Parallel()
	st := newState()
	var starts int
	start := func(context.Context) error { starts++; return nil }
	if err := st.Start(context.Background(), start); err != nil {
		t.Fatalf("first Start: %v", err)
	}
	if err := st.Start(context.Background(), start); !errors.Is(err, errStarted) {
		t.Errorf("second Start = %v, want %v", err, errStarted)
	}
	if starts != 1 {
		t.Errorf("start called %d times, want 1", starts)
	}
	if err := st.Stop(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := st.Start(context.Background(), start); !errors.Is(err, errStarted) {
		t.Errorf("Start after Stop = %v, want %v", err, errStarted)
	}
}

func TestFailedStartMayBeRetried(t *testing.T) {
	t.Parallel()
	st := newState()
	errListen := errors.New("listen: busy")
	if err := st.Start(context.Background(), func(context.Context) error { return errListen }); !errors.Is(err, errListen) {
		t.Fatalf("Start = %v, want %v", err, errListen)
	}
	if err := st.Start(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("Start after a failed one: %v", err)
	}
}

// The coordinator calls a server's stop participant whether or not it
// started: a Stop after a failed Start calls nothing, and no Start succeeds
// after it (nothing would stop that server).
func TestStopAfterAFailedStart(t *testing.T) {
	t.Parallel()
	st := newState()
	errListen := errors.New("listen: busy")
	if err := st.Start(context.Background(), func(context.Context) error { return errListen }); !errors.Is(err, errListen) {
		t.Fatalf("Start = %v, want %v", err, errListen)
	}
	stopped := false
	if err := st.Stop(context.Background(), func(context.Context) error { stopped = true; return nil }); err != nil || stopped {
		t.Errorf("Stop after a failed Start = %v, stop called %v; want nil, false", err, stopped)
	}
	started := false
	if err := st.Start(context.Background(), func(context.Context) error { started = true; return nil }); !errors.Is(err, errCutShort) || started {
		t.Errorf("Start after Stop = %v, start called %v; want %v, false", err, started, errCutShort)
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	st := newState()
	stopped := false
	if err := st.Stop(context.Background(), func(context.Context) error { stopped = true; return nil }); err != nil || stopped {
		t.Errorf("Stop before Start = %v, stop called %v; want nil, false", err, stopped)
	}
	if err := st.Start(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, errCutShort) {
		t.Errorf("Start after Stop = %v, want %v", err, errCutShort)
	}
}

func TestStopReturnsStopsError(t *testing.T) {
	t.Parallel()
	st := newState()
	if err := st.Start(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	errShutdown := errors.New("shutdown: broken")
	if err := st.Stop(context.Background(), func(context.Context) error { return errShutdown }); !errors.Is(err, errShutdown) {
		t.Errorf("Stop = %v, want stop's error %v", err, errShutdown)
	}
}

func TestSecondStopWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	st := newState()
	if err := st.Start(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var stops atomic.Int32
	var firstReturned atomic.Bool
	stop := func(context.Context) error {
		if stops.Add(1) == 1 {
			close(entered)
			<-release
			firstReturned.Store(true)
		}
		return errors.New("only the first Stop sees this")
	}
	first := make(chan error, 1)
	go func() { first <- st.Stop(context.Background(), stop) }()
	waittest.Recv(t, entered, waitTimeout, "the first Stop to call stop")

	// A second Stop waits for the first or for its ctx: here its ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	wctx := watchDone(ctx)
	second := make(chan error, 1)
	go func() { second <- st.Stop(wctx, stop) }()
	waittest.Recv(t, wctx.asked, waitTimeout, "the second Stop to wait")
	cancel()
	if err := waittest.Recv(t, second, waitTimeout, "the second Stop to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("second Stop whose ctx ended = %v, want context.Canceled", err)
	}

	// A third waits for the first to return, and returns nil.
	wctx = watchDone(context.Background())
	third := make(chan bool, 1)
	go func() { third <- st.Stop(wctx, stop) == nil && firstReturned.Load() }()
	waittest.Recv(t, wctx.asked, waitTimeout, "the third Stop to wait")
	close(release)
	if !waittest.Recv(t, third, waitTimeout, "the third Stop to return") {
		t.Error("third Stop returned an error, or before the first")
	}
	if err := waittest.Recv(t, first, waitTimeout, "the first Stop to return"); err == nil {
		t.Error("first Stop = nil, want stop's error")
	}
	if n := stops.Load(); n != 1 {
		t.Errorf("stop called %d times, want 1", n)
	}
}

// doneWatch tells when Done is first asked for: a Stop waiting on its ctx.
type doneWatch struct {
	context.Context
	asked chan struct{}
	once  sync.Once
}

func watchDone(ctx context.Context) *doneWatch {
	return &doneWatch{Context: ctx, asked: make(chan struct{})}
}

func (c *doneWatch) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

func TestRecordCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      int64
		wantLevel zapcore.Level
		wantMsg   string
	}{
		{"requests left", 3, zapcore.WarnLevel, "requests cut"},
		{"nothing left", 0, zapcore.InfoLevel, "connections closed at the stop deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := lifecycle.New(lifecycle.Config{})
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.DebugLevel)
			deadline := time.Unix(1700000000, 0)
			srvstate.RecordCut(c, zap.New(core), lifecycle.CutKind("requests"), tt.give, deadline)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if r := c.Telemetry().Report(); r.Cut[lifecycle.CutKind("requests")] != tt.give {
				t.Errorf("report cut %v, want requests=%d", r.Cut, tt.give)
			}
			all := logs.All()
			if len(all) == 0 || all[0].Message != tt.wantMsg || all[0].Level != tt.wantLevel {
				t.Fatalf("logged %v, want first %v %q", all, tt.wantLevel, tt.wantMsg)
			}
			if got := all[0].ContextMap()["deadline"]; got != deadline {
				t.Errorf("deadline field %v, want %v", got, deadline)
			}
			if got, ok := all[0].ContextMap()["count"]; (tt.give > 0) != ok || ok && got != tt.give {
				t.Errorf("count field %v (present %v), want %d only if some were cut", got, ok, tt.give)
			}
		})
	}
}
