package workermod_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
	"github.com/drainfx/drainfx/modules/sqlmod"
	"github.com/drainfx/drainfx/modules/workermod"
)

// job is one unit of work the handler hands to the worker; done carries
// the worker's result back to the handler.
type job struct {
	id   string
	done chan error
}

// jobs is the component between the handler and its resources: the handler
// enqueues, the worker calls the backend over gRPC and writes to the DB.
type jobs struct {
	queue    chan job
	run      func(ctx context.Context) error
	ctxEnded chan struct{} // closed when the worker's context ends
}

func newJobs(db *sql.DB, backend healthgrpc.HealthClient, stuck <-chan struct{}) (*jobs, error) {
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS done (id TEXT, status TEXT)"); err != nil {
		return nil, err
	}
	j := &jobs{queue: make(chan job), ctxEnded: make(chan struct{})}
	j.run = func(ctx context.Context) error {
		for {
			select {
			case jb := <-j.queue:
				resp, err := backend.Check(ctx, &healthgrpc.HealthCheckRequest{})
				if err == nil {
					_, err = db.ExecContext(ctx, "INSERT INTO done VALUES (?, ?)", jb.id, resp.Status.String())
				}
				jb.done <- err
				if err != nil {
					return err
				}
			case <-ctx.Done():
				// Ignores its context: a flush that hangs.
				close(j.ctxEnded)
				<-stuck
				return nil
			}
		}
	}
	return j, nil
}

// With the driver, the coordinator runs every teardown hook after every
// stop participant, whatever the order of the modules in fx.New and
// however the worker was registered: a teardown worker does not stop while
// a request that uses it is still in flight. The teardown then runs in
// reverse order of registration — worker → gRPC client → DB —; the worker
// ignores its context: it is cut at its deadline, and the gRPC client and
// the DB are still closed after it, in budget.
func TestTeardownAfterTheServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(worker fx.Option) []fx.Option // the modules, in order
	}{
		{"worker added by its component, workers module after the server", func(worker fx.Option) []fx.Option {
			return []fx.Option{lifecycle.Module, httpmod.Module, sqlmod.Module, workermod.Module, worker}
		}},
		{"worker added by its component, workers module first", func(worker fx.Option) []fx.Option {
			return []fx.Option{workermod.Module, worker, sqlmod.Module, lifecycle.Module, httpmod.Module}
		}},
		{"AsWorker listed after the server", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testTeardownAfterTheServers(t, tt.give)
		})
	}
}

func testTeardownAfterTheServers(t *testing.T, modules func(worker fx.Option) []fx.Option) {
	budget := lifecycle.Config{
		GracePeriod:     900 * time.Millisecond,
		DrainDelay:      lifecycle.None,
		DrainQuiet:      lifecycle.None,
		TeardownReserve: 300 * time.Millisecond,
		Margin:          lifecycle.None,
		IgnoreSignals:   true,
	}

	// The backend the gRPC client talks to, outside the app.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := grpc.NewServer()
	healthgrpc.RegisterHealthServer(backend, health.NewServer())
	served := make(chan struct{})
	go func() { defer close(served); _ = backend.Serve(ln) }()
	defer func() { backend.Stop(); <-served }()

	stuck := make(chan struct{})
	inHandler := make(chan struct{}, 1)
	proceed := make(chan struct{})
	var (
		c    *lifecycle.Coordinator
		srv  *httpmod.Server
		db   *sql.DB
		sup  *workermod.Supervisor
		j    *jobs
		stop sync.Once
	)
	release := func() { stop.Do(func() { close(stuck) }) }
	defer release()

	newJobsFx := func(db *sql.DB, backend healthgrpc.HealthClient) (*jobs, error) {
		return newJobs(db, backend, stuck)
	}
	var opts []fx.Option
	if modules != nil {
		// The component adds its worker in its constructor.
		worker := fx.Provide(func(db *sql.DB, backend healthgrpc.HealthClient, s *workermod.Supervisor) (*jobs, error) {
			j, err := newJobsFx(db, backend)
			if err != nil {
				return nil, err
			}
			return j, s.Add(workermod.Worker{Name: "jobs", Run: j.run})
		})
		opts = modules(worker)
	} else {
		opts = []fx.Option{
			lifecycle.Module, httpmod.Module, sqlmod.Module, workermod.Module,
			fx.Provide(newJobsFx),
			workermod.AsWorker("jobs", workermod.AtTeardown, func(j *jobs) func(context.Context) error { return j.run }),
		}
	}
	app := fx.New(append(opts,
		fx.NopLogger,
		fx.Supply(budget, httpmod.Config{Addr: "127.0.0.1:0"}, sqlmod.Config{DataDir: t.TempDir()}),
		grpcmod.AsClient("backend", ln.Addr().String(), healthgrpc.NewHealthClient),
		echoroute.Module,
		echoroute.AsRoute(func(j *jobs) echoroute.Route {
			return echoroute.RouteFunc(func(e *echo.Echo) {
				e.POST("/jobs/:id", func(ec echo.Context) error {
					if ec.Param("id") == "in-flight" {
						inHandler <- struct{}{}
						<-proceed
					}
					jb := job{id: ec.Param("id"), done: make(chan error, 1)}
					j.queue <- jb // hangs if the worker has stopped
					if err := <-jb.done; err != nil {
						return err
					}
					return ec.NoContent(http.StatusAccepted)
				})
			})
		}),
		fx.Populate(&c, &srv, &db, &sup, &j),
	)...)
	if err := app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	post := func(id string) error {
		resp, err := http.Post("http://"+srv.Addr().String()+"/jobs/"+id, "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return errors.New(resp.Status)
		}
		return nil
	}
	done := func(id string) bool {
		var status string
		return db.QueryRow("SELECT status FROM done WHERE id = ?", id).Scan(&status) == nil && status == "SERVING"
	}

	// One job through the whole chain.
	if err := post("42"); err != nil {
		t.Fatalf("POST /jobs/42: %v", err)
	}
	if !done("42") {
		t.Fatal("job 42 not done")
	}

	// A request in flight when the app stops: the HTTP server's stop
	// participant waits for it, and the worker it needs still runs.
	posted := make(chan error, 1)
	go func() { posted <- post("in-flight") }()
	waittest.Recv(t, inHandler, waitTimeout, "the request to reach the handler")
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	if waittest.Closed(j.ctxEnded) {
		t.Fatal("the worker's context ended while a request that needs it was in flight")
	}
	close(proceed)
	if err := waittest.Recv(t, posted, waitTimeout, "the request in flight"); err != nil {
		t.Fatalf("the request in flight: %v", err)
	}
	if !done("in-flight") {
		t.Fatal("the job of the request in flight is not done")
	}

	err = waittest.Recv(t, stopped, waitTimeout, "the app to stop")
	if !errors.Is(err, lifecycle.ErrHookOverran) || !errors.Is(err, lifecycle.ErrUnclean) {
		t.Fatalf("Stop = %v, want the worker's hook overran and an unclean report", err)
	}
	waittest.Recv(t, j.ctxEnded, waitTimeout, "the worker's context to end")
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("db after stop: ping = %v, want closed", err)
	}

	r := c.Telemetry().Report()
	// Every stop participant ran before every teardown hook.
	var stops, teardowns []string
	for _, h := range r.Hooks {
		switch h.Phase {
		case lifecycle.StateStopping.String():
			if len(teardowns) > 0 {
				t.Errorf("stop participant %s reported after the teardown hooks %v", h.Name, teardowns)
			}
			stops = append(stops, h.Name)
		case lifecycle.StateTearingDown.String():
			teardowns = append(teardowns, h.Name)
		}
		if h.Overran != (h.Name == "worker jobs") {
			t.Errorf("hook %s overran=%v", h.Name, h.Overran)
		}
	}
	if !slices.Contains(stops, "http") {
		t.Errorf("stop participants %v, want http among them", stops)
	}
	if want := []string{"worker jobs", "grpc client backend", "sql"}; !slices.Equal(teardowns, want) {
		t.Fatalf("report teardown hooks %v, want %v", teardowns, want)
	}
	if r.Cut[lifecycle.CutHooks] != 1 || r.Cut[lifecycle.CutKind("requests")] != 0 || r.ExitCode != 1 {
		t.Fatalf("report cut %v exit %d, want hooks=1 and no request cut, exit 1", r.Cut, r.ExitCode)
	}
	// The worker was cut at its deadline: its share of the teardown, not
	// all of it; the teardown ended within the budget.
	cutAt := r.Hooks[len(stops)]
	if cutAt.Planned <= 0 || cutAt.Planned > budget.GracePeriod/2 || cutAt.Actual < cutAt.Planned {
		t.Errorf("worker hook planned %v actual %v", cutAt.Planned, cutAt.Actual)
	}
	var total time.Duration
	for _, p := range r.Phases {
		total += p.Actual
	}
	if total >= budget.GracePeriod {
		t.Errorf("shutdown took %v from D0, past the grace period %v", total, budget.GracePeriod)
	}

	release()
	waittest.Eventually(t, waitTimeout, func() bool { return len(sup.Running()) == 0 }, "the stuck worker to return")
}
