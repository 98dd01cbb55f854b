package modules_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/workermod"
)

// A worker listed after the bundle has its OnStop hook appended after the
// HTTP server's, so fx calls it first. It must still stop only after the
// server has finished its requests: the coordinator runs every teardown
// hook after every stop participant, whatever order fx calls its hooks in.
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
		echoroute.Module,
		echoroute.AsRoute(func() echoroute.Route {
			return echoroute.RouteFunc(func(e *echo.Echo) {
				e.GET("/slow", func(c echo.Context) error {
					close(entered)
					<-release
					record("request done")
					return c.String(http.StatusOK, "ok")
				})
			})
		}),
		workermod.Module,
		workermod.AsWorker("late", workermod.AtTeardown, func(ctx context.Context) error {
			<-ctx.Done()
			close(workerCtxDone)
			record("worker stopped while " + c.State().String())
			return nil
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
