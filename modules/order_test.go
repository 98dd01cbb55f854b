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
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/workermod"
)

// A worker listed after the bundle has its OnStop hook appended after the
// HTTP server's, so fx calls it first. It must still stop only after the
// server has finished its requests: the coordinator queues teardown hooks
// until every server of the stop phase has stopped.
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
	core, logs := observer.New(zap.InfoLevel)
	var (
		srv *httpmod.Server
		c   *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		modules.Web(testConfig()),
		httpmod.AsRoute(func() httpmod.Route {
			return httpmod.RouteFunc(func(e *echo.Echo) {
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
			record("worker stopped")
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
	// fx calls the worker's hook (appended after the server's) while the
	// request is in flight. Release the request once that hook has either
	// been queued (right) or stopped the worker (wrong: the order shows it).
	deadline := time.After(5 * time.Second)
	for logs.FilterMessage("teardown hook queued until the servers have stopped").Len() == 0 {
		select {
		case <-workerCtxDone:
		case <-deadline:
			t.Fatal("the worker's hook was neither queued nor run")
		case <-time.After(5 * time.Millisecond): // polling the observed logs
			continue
		}
		break
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
	if len(events) != 2 || events[0] != "request done" || events[1] != "worker stopped" {
		t.Errorf("order = %q, want [request done, worker stopped]", events)
	}
}
