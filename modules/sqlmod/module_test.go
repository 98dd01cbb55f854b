package sqlmod_test

import (
	"context"
	"database/sql"
	"errors"
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

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/sqlmod"
	"github.com/drainfx/drainfx/probemod"
)

var (
	roomy = lifecycle.Config{DrainDelay: lifecycle.NoDelay, IgnoreSignals: true}
	// tight: the teardown ends 600ms after D0.
	tight = lifecycle.Config{
		GracePeriod:     600 * time.Millisecond,
		DrainDelay:      lifecycle.NoDelay,
		TeardownReserve: 200 * time.Millisecond,
		Margin:          lifecycle.NoDelay,
		IgnoreSignals:   true,
	}
)

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
	c.MarkStarted() // the modules.Web bundle does this once fx has started
	if db != pool.DB() {
		t.Fatal("the *sql.DB provided is not the pool's")
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + admin.Addr() + "/readyz?verbose")
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
}

// An unreachable database fails start-up within the start timeout, with
// the DSN named and its password masked: app.Run exits 1 with this error.
func TestModuleStartFailsWhenUnreachable(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	app := fx.New(fx.NopLogger,
		fx.Supply(roomy, sqlmod.Config{DSN: "postgres://app:s3cret@127.0.0.1:" + port + "/app", StartBackoff: 5 * time.Millisecond}),
		lifecycle.Module,
		sqlmod.Module,
		fx.Invoke(func(*sql.DB) {}),
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

// A query that outlives the pool's stop deadline is cut and reported; the
// next stop hook still runs, on time.
func TestModuleQueryOutlivingTheDeadlineIsCut(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		var (
			c  *lifecycle.Coordinator
			db *sql.DB
			mu sync.Mutex
			ok []string
		)
		app := fxtest.New(t,
			fx.Supply(tight, b.config(t)),
			lifecycle.Module,
			sqlmod.Module,
			// Appended before the pool's hooks: runs after them.
			fx.Invoke(func(c *lifecycle.Coordinator, lc fx.Lifecycle) {
				lc.Append(fx.Hook{OnStop: c.StopHook("next", func(context.Context) error {
					mu.Lock()
					ok = append(ok, "next")
					mu.Unlock()
					return nil
				})})
			}),
			fx.Invoke(func(*sql.DB) {}),
			fx.Populate(&c, &db),
		)
		app.RequireStart()
		release, res := b.runBlocked(t, db)

		err := app.Stop(t.Context())
		if !errors.Is(err, lifecycle.ErrHookOverran) || !errors.Is(err, lifecycle.ErrUnclean) {
			t.Fatalf("Stop = %v, want the sql hook overran and an unclean report", err)
		}
		r, _ := c.Report()
		if r.Cut[sqlmod.CutKind] != 1 || r.Cut["hooks"] != 1 {
			t.Fatalf("report cut %v, want queries=1 hooks=1", r.Cut)
		}
		if len(r.Hooks) != 2 || r.Hooks[0].Name != "sql" || !r.Hooks[0].Overran || r.Hooks[1].Name != "next" || r.Hooks[1].Overran {
			t.Fatalf("report hooks %+v, want sql overran, then next on time", r.Hooks)
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
