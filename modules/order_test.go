package modules_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
)

// A module listed after the bundle (a worker, a pool) has its OnStop hook
// appended after the HTTP server's, so fx calls it first. Its teardown hook
// must still run only after the server has finished its requests: the
// coordinator runs every teardown hook after every stop participant,
// whatever order fx calls its hooks in.
func TestTeardownWaitsForServersWhateverTheModuleOrder(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	workerCtxDone := make(chan struct{})
	core, _ := observer.New(zap.InfoLevel)
	var (
		srv *httpmod.Server
		c   *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		modules.Web(testConfig()),
		httpmod.AsRoute(func() httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
					close(entered)
					<-release
					record("request done")
					_, _ = io.WriteString(w, "ok")
				})
			})
		}),
		// The late module, as workermod registers a worker: a teardown
		// hook, and an OnStop hook (appended last, called first) that asks
		// the coordinator for the stop.
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
			c.AtTeardown("late", func(context.Context) error {
				close(workerCtxDone)
				record("worker stopped while " + c.State().String())
				return nil
			})
			lc.Append(fx.Hook{OnStop: c.Stop})
		}),
		fx.Supply(zap.New(core)),
		fx.Populate(&srv, &c),
	)
	app.RequireStart()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + srv.Addr().String() + "/slow")
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	// The stop phase begins while the request is in flight; the worker's
	// context must not end before the teardown (it records the state it
	// saw).
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), 5*time.Second, "the stop phase")
	if waittest.Closed(workerCtxDone) {
		t.Error("the worker stopped while the request was in flight")
	}
	close(release)
	if code := <-got; code != http.StatusOK {
		t.Fatalf("slow request = %d, want 200", code)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "request done" || events[1] != "worker stopped while tearing down" {
		t.Errorf("order = %q, want [request done, worker stopped while tearing down]", events)
	}
}
