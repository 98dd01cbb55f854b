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
	"go.uber.org/fx/fxevent"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
	"github.com/drainfx/drainfx/modules/sqlmod"
	"github.com/drainfx/drainfx/modules/workermod"
)

// stopRecorder is an fx event logger that records, in order, which
// module's OnStop hook ran, by the constructor that appended it.
type stopRecorder struct {
	mu    sync.Mutex
	stops []string
	errs  map[string]error
}

// hookOwners maps the constructor that appended a hook to a label. Order
// matters: the first prefix that matches wins.
var hookOwners = []struct{ caller, label string }{
	{"github.com/drainfx/drainfx/httpmod.", "http server"},
	{"github.com/drainfx/drainfx/modules/workermod.NewFx.", "worker"}, // a worker's own hooks
	{"github.com/drainfx/drainfx/modules/workermod.NewFx", "supervisor"},
	{"github.com/drainfx/drainfx/modules/grpcmod.AsClient", "grpc client"},
	{"github.com/drainfx/drainfx/modules/sqlmod.", "db"},
	{"github.com/drainfx/drainfx/lifecycle.", "report"},
}

func (r *stopRecorder) LogEvent(e fxevent.Event) {
	ev, ok := e.(*fxevent.OnStopExecuted)
	if !ok {
		return
	}
	label := ev.CallerName
	for _, o := range hookOwners {
		if strings.HasPrefix(ev.CallerName, o.caller) {
			label = o.label
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stops = append(r.stops, label)
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	r.errs[label] = ev.Err
}

func (r *stopRecorder) get() ([]string, map[string]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stops), r.errs
}

// jobs is the component between the handler and its resources: the handler
// enqueues, the worker calls the backend over gRPC and writes to the DB.
type jobs struct {
	queue chan string
}

func newJobs(db *sql.DB, backend healthgrpc.HealthClient, s *workermod.Supervisor, stuck <-chan struct{}, ctxEnded chan<- struct{}) (*jobs, error) {
	j := &jobs{queue: make(chan string, 1)}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS done (id TEXT, status TEXT)"); err != nil {
		return nil, err
	}
	return j, s.Add(workermod.Worker{Name: "jobs", Run: func(ctx context.Context) error {
		for {
			select {
			case id := <-j.queue:
				resp, err := backend.Check(ctx, &healthgrpc.HealthCheckRequest{})
				if err != nil {
					return err
				}
				if _, err := db.ExecContext(ctx, "INSERT INTO done VALUES (?, ?)", id, resp.Status.String()); err != nil {
					return err
				}
			case <-ctx.Done():
				// Ignores its context: a flush that hangs.
				close(ctxEnded)
				<-stuck
				return nil
			}
		}
	}})
}

// The teardown order: HTTP server → handler → worker → gRPC
// client → DB. The worker ignores its context: it is cut at its deadline,
// and the gRPC client and the DB are still closed after it, in budget.
func TestTeardownOrder(t *testing.T) {
	budget := lifecycle.Config{
		GracePeriod:     900 * time.Millisecond,
		DrainDelay:      lifecycle.NoDelay,
		TeardownReserve: 300 * time.Millisecond,
		Margin:          lifecycle.NoDelay,
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
	ctxEnded := make(chan struct{})
	var (
		rec  stopRecorder
		c    *lifecycle.Coordinator
		srv  *httpmod.Server
		db   *sql.DB
		sup  *workermod.Supervisor
		stop sync.Once
	)
	release := func() { stop.Do(func() { close(stuck) }) }
	defer release()

	app := fx.New(
		fx.WithLogger(func() fxevent.Logger { return &rec }),
		fx.Supply(budget, httpmod.Config{Addr: "127.0.0.1:0"}, sqlmod.Config{DataDir: t.TempDir()}),
		lifecycle.Module,
		httpmod.Module,
		workermod.Module,
		sqlmod.Module,
		grpcmod.AsClient("backend", ln.Addr().String(), healthgrpc.NewHealthClient),
		fx.Provide(func(db *sql.DB, backend healthgrpc.HealthClient, s *workermod.Supervisor) (*jobs, error) {
			return newJobs(db, backend, s, stuck, ctxEnded)
		}),
		httpmod.AsRoute(func(j *jobs) httpmod.Route {
			return httpmod.RouteFunc(func(e *echo.Echo) {
				e.POST("/jobs/:id", func(ec echo.Context) error {
					j.queue <- ec.Param("id")
					return ec.NoContent(http.StatusAccepted)
				})
			})
		}),
		fx.Populate(&c, &srv, &db, &sup),
	)
	if err := app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	// One job through the whole chain.
	resp, err := http.Post("http://"+srv.Addr().String()+"/jobs/42", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs/42: %s", resp.Status)
	}
	waittest.Eventually(t, waitTimeout, func() bool {
		var status string
		return db.QueryRow("SELECT status FROM done WHERE id = '42'").Scan(&status) == nil && status == "SERVING"
	}, "the job to be done")

	err = app.Stop(context.Background())
	if !errors.Is(err, lifecycle.ErrHookOverran) || !errors.Is(err, lifecycle.ErrUnclean) {
		t.Fatalf("Stop = %v, want the worker's hook overran and an unclean report", err)
	}
	waittest.Recv(t, ctxEnded, waitTimeout, "the worker's context to end")

	stops, errs := rec.get()
	want := []string{"http server", "worker", "supervisor", "grpc client", "db", "report"}
	if !slices.Equal(stops, want) {
		t.Fatalf("stop order\n got %v\nwant %v", stops, want)
	}
	for _, label := range []string{"http server", "supervisor", "grpc client", "db"} {
		if errs[label] != nil {
			t.Errorf("%s stopped with %v", label, errs[label])
		}
	}
	if !errors.Is(errs["worker"], lifecycle.ErrHookOverran) {
		t.Errorf("worker's hook: %v, want ErrHookOverran", errs["worker"])
	}
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("db after stop: ping = %v, want closed", err)
	}

	r, _ := c.Report()
	var hooks []string
	for _, h := range r.Hooks {
		hooks = append(hooks, h.Name)
		if h.Overran != (h.Name == "worker jobs") {
			t.Errorf("hook %s overran=%v", h.Name, h.Overran)
		}
	}
	if want := []string{"worker jobs", "grpc client backend", "sql"}; !slices.Equal(hooks, want) {
		t.Fatalf("report hooks %v, want %v", hooks, want)
	}
	if r.Cut["hooks"] != 1 || r.ExitCode != 1 {
		t.Fatalf("report cut %v exit %d, want hooks=1, exit 1", r.Cut, r.ExitCode)
	}
	// The worker was cut at its deadline: its share of the teardown, not
	// all of it; the teardown ended within the budget.
	cutAt := r.Hooks[0]
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
