package sqlmod_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/sqlmod"
	"github.com/drainfx/drainfx/probemod"
)

var (
	roomy = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}
	// tight: the teardown ends 600ms after D0 (on a fake clock).
	tight = lifecycle.Config{
		GracePeriod:     600 * time.Millisecond,
		DrainDelay:      lifecycle.None,
		DrainQuiet:      lifecycle.None,
		TeardownReserve: 200 * time.Millisecond,
		Margin:          lifecycle.None,
		IgnoreSignals:   true,
	}
)

// report returns the coordinator's report; the shutdown must be over.
func report(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report: the shutdown is not over")
	}
	return r
}

// wantSQLHookClean fails the test unless the report holds the teardown
// hook "sql", on time and without error.
func wantSQLHookClean(t *testing.T, r lifecycle.Report) {
	t.Helper()
	for _, h := range r.Hooks {
		if h.Name == "sql" {
			if h.Phase != lifecycle.StateTearingDown.String() || h.Overran || h.Err != "" {
				t.Errorf("sql hook %+v, want a clean teardown", h)
			}
			return
		}
	}
	t.Errorf("report hooks %+v: no sql hook", r.Hooks)
}

func TestModuleBootWithReadinessCheck(t *testing.T) {
	t.Parallel()
	var (
		c     *lifecycle.Coordinator
		admin *probemod.Admin
		db    *sql.DB
		pool  *sqlmod.Pool
	)
	app := fxtest.New(t,
		fx.Supply(roomy, probemod.Config{Addr: "127.0.0.1:0"}, sqlmod.Config{DataDir: t.TempDir()}),
		lifecycle.Module,
		probemod.Module,
		sqlmod.Module,
		fx.Populate(&c, &admin, &db, &pool),
	)
	app.RequireStart()
	c.MarkStarted() // lifecycle.AppOptions does this once fx has started
	if db != pool.DB() {
		t.Fatal("the *sql.DB provided is not the pool's")
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + admin.Addr().String() + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "[+]db ok") {
		t.Fatalf("/readyz?verbose = %d\n%s\nwant 200 listing [+]db ok", resp.StatusCode, body)
	}
	app.RequireStop()
	if err := db.Ping(); err == nil {
		t.Fatal("the pool is still open after stop")
	}
	wantSQLHookClean(t, report(t, c))
}

// An unreachable database fails start-up within the start timeout, with
// the DSN named and its password masked: app.Run exits 1 with this error.
func TestModuleStartFailsWhenUnreachable(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	var c *lifecycle.Coordinator
	app := fx.New(fx.NopLogger,
		fx.Supply(roomy, sqlmod.Config{DSN: "postgres://app:s3cret@127.0.0.1:" + port + "/app", StartBackoff: 5 * time.Millisecond}),
		lifecycle.Module,
		sqlmod.Module,
		fx.Invoke(func(*sql.DB) {}),
		fx.Populate(&c),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := app.Start(ctx)
	if err == nil {
		t.Fatal("started with an unreachable database")
	}
	mustContain(t, err.Error(), "postgres://app:xxxxx@127.0.0.1:"+port+"/app unreachable")
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if err := app.Stop(t.Context()); err != nil {
		t.Fatalf("stop after a failed start: %v", err)
	}
	// fx's rollback stopped the coordinator: the teardown hook of the pool
	// whose start failed closed it cleanly.
	wantSQLHookClean(t, report(t, c))
}

// A pool whose start never ran (an earlier OnStart failed): its teardown
// hook still runs, closes the pool at once and cleanly.
func TestModuleTeardownClosesAPoolNeverStarted(t *testing.T) {
	t.Parallel()
	var (
		c  *lifecycle.Coordinator
		db *sql.DB
	)
	errEarlier := errors.New("an earlier start failed")
	app := fx.New(fx.NopLogger,
		fx.Supply(roomy, sqlmod.Config{DataDir: t.TempDir()}),
		lifecycle.Module,
		sqlmod.Module,
		// Appended before the pool's hooks: fx runs it first.
		fx.Invoke(func(lc fx.Lifecycle, _ *lifecycle.Coordinator) {
			lc.Append(fx.StartHook(func() error { return errEarlier }))
		}),
		fx.Populate(&c, &db),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(t.Context()); !errors.Is(err, errEarlier) {
		t.Fatalf("start: %v, want %v", err, errEarlier)
	}
	r := report(t, c)
	wantSQLHookClean(t, r)
	if r.ExitCode != 0 {
		t.Fatalf("report not clean: %+v", r)
	}
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Fatalf("ping after the teardown: %v, want the pool closed", err)
	}
}

// The drain beginning while the pool still pings an unreachable database (a
// SIGTERM during start-up) ends the start at once, with an error that says
// so, instead of at fx's start timeout.
func TestModuleStartCutByTheDrain(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	core, logs := observer.New(zap.WarnLevel)
	var c *lifecycle.Coordinator
	app := fx.New(fx.NopLogger,
		fx.Supply(roomy, sqlmod.Config{DSN: "postgres://app:s3cret@127.0.0.1:" + port + "/app", StartBackoff: 5 * time.Millisecond}),
		fx.Supply(zap.New(core)),
		lifecycle.Module,
		sqlmod.Module,
		fx.Populate(&c),
		fx.Invoke(func(*sql.DB) {}),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- app.Start(t.Context()) }() // no deadline: only the drain ends it
	waittest.Eventually(t, waitTimeout, func() bool {
		return logs.FilterMessage("database not reachable yet").Len() > 0
	}, "a failed ping")
	c.BeginDrain("test")
	err := waittest.Recv(t, started, waitTimeout, "the start to end")
	if !errors.Is(err, sqlmod.ErrStartCut) {
		t.Fatalf("start: %v, want ErrStartCut", err)
	}
	mustContain(t, err.Error(), "sqlmod: start cut short: the drain began (test)", "postgres://app:xxxxx@127.0.0.1:"+port+"/app unreachable")
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if err := app.Stop(t.Context()); err != nil {
		t.Fatalf("stop after a failed start: %v", err)
	}
}

// A query that outlives the pool's teardown deadline is cut and reported
// ("queries"); the next teardown hook still runs, on time.
func TestModuleQueryOutlivingTheDeadlineIsCut(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		var (
			c  *lifecycle.Coordinator
			db *sql.DB
			mu sync.Mutex
			ok []string
		)
		clk := clocktest.New()
		app := fxtest.New(t,
			fx.Supply(tight, b.config(t)),
			fx.Supply(fx.Annotate(clk, fx.As(new(lifecycle.Clock)))),
			lifecycle.Module,
			sqlmod.Module,
			// Registered before the pool's teardown hook: runs after it.
			fx.Invoke(func(c *lifecycle.Coordinator) {
				c.AtTeardown("next", func(context.Context) error {
					mu.Lock()
					ok = append(ok, "next")
					mu.Unlock()
					return nil
				})
			}),
			fx.Invoke(func(*sql.DB) {}),
			fx.Populate(&c, &db),
		)
		app.RequireStart()
		release, res := b.runBlocked(t, db)

		stopped := make(chan error, 1)
		go func() { stopped <- app.Stop(t.Context()) }()
		// The sql hook runs, with its deadline on the clock: half of the
		// teardown (two hooks), and the moment shortly before it when the
		// pool gives up on the query.
		waittest.Recv(t, c.Reached(lifecycle.StateTearingDown), waitTimeout, "the teardown")
		waittest.BlockUntil(t, clk.FakeClock, 2, waitTimeout)
		waittest.Eventually(t, waitTimeout, func() bool { return db.Ping() != nil }, "the pool to refuse new queries")
		clk.Advance(tight.GracePeriod/2 - time.Millisecond)
		// The query is counted as cut before the hook's deadline: the
		// coordinator writes the report as soon as the hooks are done.
		waittest.Eventually(t, waitTimeout, func() bool {
			return c.Telemetry().Report().Cut[sqlmod.CutKind] == 1
		}, "the query to be counted as cut")
		if c.State() != lifecycle.StateTearingDown {
			t.Fatalf("state %v before the sql hook's deadline, want tearing down", c.State())
		}
		clk.Advance(time.Millisecond)
		err := waittest.Recv(t, stopped, waitTimeout, "the app to stop")
		if !errors.Is(err, lifecycle.ErrHookOverran) || !errors.Is(err, lifecycle.ErrUnclean) {
			t.Fatalf("Stop = %v, want the sql hook overran and an unclean report", err)
		}
		r := report(t, c)
		if r.Cut[sqlmod.CutKind] != 1 || r.Cut[lifecycle.CutHooks] != 1 {
			t.Fatalf("report cut %v, want queries=1 hooks=1", r.Cut)
		}
		if len(r.Hooks) != 2 || r.Hooks[0].Name != "sql" || !r.Hooks[0].Overran || r.Hooks[1].Name != "next" || r.Hooks[1].Overran {
			t.Fatalf("report hooks %+v, want sql overran, then next on time", r.Hooks)
		}
		if sql := r.Hooks[0]; sql.Planned != tight.GracePeriod/2 || sql.Actual != sql.Planned {
			t.Fatalf("sql hook planned %v actual %v, want both %v", sql.Planned, sql.Actual, tight.GracePeriod/2)
		}
		if teardown := r.Hooks[0].Actual + r.Hooks[1].Actual; teardown > tight.GracePeriod {
			t.Fatalf("teardown took %v, past the budget %v", teardown, tight.GracePeriod)
		}
		mu.Lock()
		if len(ok) != 1 {
			t.Fatalf("next hook ran %d times", len(ok))
		}
		mu.Unlock()

		// The query was left to finish on its own.
		release()
		if err := <-res; err != nil {
			t.Fatalf("the cut query: %v", err)
		}
		waittest.Eventually(t, waitTimeout, func() bool { return db.Stats().OpenConnections == 0 }, "the last connection to close")
	})
}

// /readyz?verbose, which anyone who reaches the admin port can read, shows
// that the database check fails, and not the user, the database or the
// host:port that pgx's error names; the log keeps them, password masked.
func TestReadinessShowsNoConnectionDetails(t *testing.T) {
	t.Parallel()
	port := closedPort(t) // nothing listens there
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	c, err := lifecycle.New(roomy)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sqlmod.New(sqlmod.Config{DSN: "postgres://orders_app:s3cret@127.0.0.1:" + port + "/orders_db?sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.DB().Close() })
	admin, err := probemod.New(probemod.Config{Addr: "127.0.0.1:0"}, c, []probemod.Check{{Name: "db", Check: pool.Check}}, probemod.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Stop(context.Background()) })
	t.Cleanup(func() { // first: the coordinator's timeline, then the admin server
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ctx)
		waittest.Recv(t, c.Reached(lifecycle.StateStopped), waitTimeout, "the report")
	})
	c.MarkStarted()

	resp, err := http.Get("http://" + admin.Addr().String() + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "[-]db failed: ping failed\n") {
		t.Errorf("/readyz?verbose = %d\n%s\nwant 503 with [-]db failed: ping failed", resp.StatusCode, body)
	}
	for _, detail := range []string{"orders_app", "orders_db", "127.0.0.1", port, "s3cret"} {
		if strings.Contains(body, detail) {
			t.Errorf("/readyz?verbose shows %q:\n%s", detail, body)
		}
	}
	failed := logs.FilterMessage("check failed").All()
	if len(failed) != 1 {
		t.Fatalf("%d \"check failed\" lines, want 1", len(failed))
	}
	logged := fmt.Sprint(failed[0].ContextMap()["error"])
	mustContain(t, logged, "orders_app", "127.0.0.1:"+port)
	if strings.Contains(logged, "s3cret") {
		t.Errorf("the log shows the password: %s", logged)
	}
}

// A malformed database URL fails as the pool is built, at once, with one
// error naming the DSN (password masked) and the fault: no start, no
// "not reachable" retries against a server that could never be reached.
func TestModuleRefusesAMalformedDSNAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want string
	}{
		{"postgres://u:s3cret@127.0.0.1:99999/db", `DSN="postgres://u:xxxxx@127.0.0.1:99999/db": port "99999": not a port number (1-65535)`},
		{"postgres://u:s3cret%zz@127.0.0.1:5432/db", `DSN="postgres://u:xxxxx@127.0.0.1:5432/db": the password: a '%' not followed by two hex digits`},
		{"postgres://u:s3cret@[::1:5432/db", `DSN="postgres://u:xxxxx@[::1:5432/db": an IPv6 host with '[' and no ']'`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.DebugLevel)
			app := fx.New(fx.NopLogger,
				fx.Supply(roomy, sqlmod.Config{DSN: tt.give, StartBackoff: time.Millisecond}, zap.New(core)),
				lifecycle.Module,
				sqlmod.Module,
				fx.Invoke(func(*sql.DB) {}),
			)
			err := app.Err()
			if err == nil {
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				defer cancel()
				err = app.Start(ctx)
				_ = app.Stop(t.Context())
				t.Errorf("fx.New accepted it; the start: %v; %d \"not reachable\" lines", err, logs.FilterMessage("database not reachable yet").Len())
				return
			}
			if !errors.Is(err, sqlmod.ErrConfig) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("fx.New: %v\nwant an ErrConfig naming %s, password masked", err, tt.want)
			}
			if n := logs.FilterMessage("database not reachable yet").Len(); n != 0 {
				t.Errorf("%d retries", n)
			}
		})
	}
}
