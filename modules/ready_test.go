package modules_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

// recordingLogger is an app's own fx logger: it keeps the events' types.
type recordingLogger struct {
	mu     sync.Mutex
	events []string
}

func (l *recordingLogger) LogEvent(e fxevent.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.(type) {
	case *fxevent.Started:
		l.events = append(l.events, "started")
	case *fxevent.Stopped:
		l.events = append(l.events, "stopped")
	}
}

func (l *recordingLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ",")
}

// Readiness does not depend on the app's fx logger: with fx.NopLogger or
// an fx.WithLogger of its own after the bundle, the service becomes ready
// after start, and a signal caught by app.Run still names the drain.
func TestWebReadyWhateverTheFxLogger(t *testing.T) {
	t.Parallel()
	rec := &recordingLogger{}
	tests := []struct {
		name string
		give fx.Option // after modules.Web
		want string    // the events rec saw
	}{
		{name: "the bundle's", give: fx.Options()},
		{name: "fx.NopLogger", give: fx.NopLogger},
		{name: "fx.WithLogger", give: fx.WithLogger(func() fxevent.Logger { return rec }), want: "started,stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				admin *probemod.Admin
				c     *lifecycle.Coordinator
				log   fxevent.Logger // the logger fx uses
			)
			app := fxtest.New(t, modules.Web(testConfig()), tt.give, fx.Populate(&admin, &c, &log))
			app.RequireStart()
			for _, path := range []string{"/startupz", "/readyz"} {
				if code, body := status(t, "http://"+admin.Addr().String()+path); code != http.StatusOK {
					t.Errorf("%s after start = %d\n%s", path, code, body)
				}
			}
			// What app.Run reports when it catches SIGTERM, before it stops the app.
			log.LogEvent(&fxevent.Stopping{Signal: syscall.SIGTERM})
			if reason := c.Telemetry().Report().Reason; reason != "signal terminated" {
				t.Errorf("drain reason = %q, want \"signal terminated\"", reason)
			}
			app.RequireStop()
			if r := c.Telemetry().Report(); r.StopReason != "signal terminated" {
				t.Errorf("stop reason %q, want the signal's", r.StopReason)
			}
			if tt.want != "" {
				if got := rec.String(); got != tt.want {
					t.Errorf("the app's fx logger saw %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// Serving begins once every OnStart hook has run, a hook of a top-level
// invoke listed after the bundle included.
func TestWebReadyAfterEveryHook(t *testing.T) {
	t.Parallel()
	var (
		c       *lifecycle.Coordinator
		atStart []lifecycle.State
	)
	hook := func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
		lc.Append(fx.StartHook(func() { atStart = append(atStart, c.State()) }))
	}
	app := fxtest.New(t,
		fx.Invoke(hook), // before the bundle
		modules.Web(testConfig()),
		fx.NopLogger,
		fx.Module("late", fx.Invoke(hook)),
		fx.Invoke(hook), // after the bundle
		fx.Populate(&c),
	)
	app.RequireStart()
	if got := c.State(); got != lifecycle.StateServing {
		t.Errorf("state after start = %v, want serving", got)
	}
	for i, st := range atStart {
		if st != lifecycle.StateStarting {
			t.Errorf("hook %d ran in state %v, want starting", i, st)
		}
	}
	if len(atStart) != 3 {
		t.Errorf("%d hooks ran, want 3", len(atStart))
	}
	app.RequireStop()
}

// A start that fails never makes the service ready.
func TestWebNotReadyAfterFailedStart(t *testing.T) {
	t.Parallel()
	var c *lifecycle.Coordinator
	app := fx.New(modules.Web(testConfig()), fx.NopLogger, fx.Populate(&c),
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error { return context.Canceled }})
		}),
	)
	if err := app.Start(context.Background()); err == nil {
		t.Fatal("Start() = nil, want the hook's error")
	}
	if got := c.State(); got == lifecycle.StateServing {
		t.Error("serving after a failed start")
	}
}

// HTTP.Addr and Probe.Addr on one port fail fx.New with both named.
func TestWebAddrConflict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveHTTP  string
		giveProbe string
		want      string // "" = no error
	}{
		{"same", "127.0.0.1:7070", "127.0.0.1:7070", `HTTP.Addr="127.0.0.1:7070" and Probe.Addr="127.0.0.1:7070"`},
		{"HTTP default", "", ":8080", `HTTP.Addr=":8080" and Probe.Addr=":8080"`},
		{"probe default", "127.0.0.1:9090", "", `HTTP.Addr="127.0.0.1:9090" and Probe.Addr=":9090"`},
		{"every address and one", "0.0.0.0:7070", "127.0.0.1:07070", `HTTP.Addr="0.0.0.0:7070" and Probe.Addr="127.0.0.1:07070"`},
		{"free ports", "127.0.0.1:0", "127.0.0.1:0", ""},
		{"two hosts", "127.0.0.1:7070", "127.0.0.2:7070", ""},
		{"defaults", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.HTTP.Addr, cfg.Probe.Addr = tt.giveHTTP, tt.giveProbe
			err := fx.New(modules.Web(cfg), fx.NopLogger, fx.Invoke(func(*httpmod.Server, *probemod.Admin) {})).Err()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("fx.New error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("fx.New error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
