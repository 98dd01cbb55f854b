package sqlmod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/modules/sqlmod"
)

func newPool(t *testing.T, cfg sqlmod.Config) *sqlmod.Pool {
	t.Helper()
	p, err := sqlmod.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startPool(t *testing.T, cfg sqlmod.Config) *sqlmod.Pool {
	t.Helper()
	p := newPool(t, cfg)
	if err := p.Start(t.Context()); err != nil {
		p.DB().Close()
		t.Fatal(err)
	}
	return p
}

func TestStartQueryCheckClose(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		p := startPool(t, b.config(t))
		db := p.DB()
		ctx := t.Context()
		table := "t_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id, v) VALUES (1, 'kept')"); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE id = 1").Scan(&v); err != nil || v != "kept" {
			t.Fatalf("select: %q, %v", v, err)
		}
		if _, err := db.ExecContext(ctx, "DROP TABLE "+table); err != nil {
			t.Fatal(err)
		}
		if err := p.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := p.Check(ctx); err == nil {
			t.Fatal("Check passed after Close")
		}
	})
}

func TestEmbeddedSQLiteIsAFileInWALMode(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "data") // created at start
	p := startPool(t, sqlmod.Config{DataDir: dir})
	defer p.Close(context.Background())
	if p.Driver() != sqlmod.DriverSQLite {
		t.Fatalf("driver %q", p.Driver())
	}
	if _, err := os.Stat(filepath.Join(dir, sqlmod.DefaultSQLiteFile)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var mode string
	if err := p.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := p.DB().QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if got := p.String(); got != "sqlite "+filepath.Join(dir, "app.db") {
		t.Errorf("String() = %q", got)
	}
}

// A DataDir the process cannot write fails the start at once, naming it,
// instead of being retried as an unreachable database.
func TestStartFailsNamingTheDataDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(t *testing.T) string // the DataDir
		want string
	}{
		{"under a file", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "a-file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "data")
		}, "not a directory"},
		{"database file is a directory", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, sqlmod.DefaultSQLiteFile), 0o750); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "is a directory"},
		{"no files allowed", func(t *testing.T) string {
			if _, err := os.Stat("/proc/self"); err != nil {
				t.Skip("no /proc")
			}
			return "/proc" // even root cannot create a file there
		}, "/proc/app.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tt.give(t)
			p := newPool(t, sqlmod.Config{DataDir: dir})
			defer p.DB().Close()
			done := make(chan error, 1)
			go func() { done <- p.Start(t.Context()) }() // no deadline: a retry would never end
			err := waittest.Recv(t, done, waitTimeout, "the start to fail")
			if err == nil {
				t.Fatal("Start succeeded")
			}
			mustContain(t, err.Error(), fmt.Sprintf("sqlmod: DataDir=%q: ", dir), tt.want)
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

func TestStartGivesUpAtItsContextNamingTheDSNMasked(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	p := newPool(t, sqlmod.Config{
		DSN:          "postgres://app:s3cret@127.0.0.1:" + port + "/app?sslmode=disable",
		StartBackoff: 5 * time.Millisecond,
	})
	defer p.DB().Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := p.Start(ctx)
	if err == nil {
		t.Fatal("Start succeeded with nothing listening")
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Start took %v past its 300ms context", took)
	}
	msg := err.Error()
	mustContain(t, msg, "sqlmod: database postgres://app:xxxxx@127.0.0.1:"+port+"/app?sslmode=disable unreachable", "attempts in")
	if strings.Contains(msg, "s3cret") {
		t.Fatalf("error leaks the password: %s", msg)
	}
}

// A start cancelled with a cause ends at once with an error wrapping it.
func TestStartEndsWithItsContextsCause(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	p := newPool(t, sqlmod.Config{DSN: "postgres://app:s3cret@127.0.0.1:" + port + "/app", StartBackoff: time.Hour})
	defer p.DB().Close()
	ctx, cancel := context.WithCancelCause(t.Context())
	errStop := errors.New("stop asked")
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	cancel(errStop) // during the first ping or the hour-long backoff
	err := waittest.Recv(t, done, waitTimeout, "the start to end")
	if !errors.Is(err, errStop) {
		t.Fatalf("Start: %v, want the cause", err)
	}
	mustContain(t, err.Error(), "stop asked; database postgres://app:xxxxx@127.0.0.1:"+port+"/app unreachable: 1 attempts")
}

// database/sql's Close returns at once; Pool.Close waits for the query in
// flight, which completes, and refuses new ones.
func TestCloseWaitsForTheQueryInFlight(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		p := startPool(t, b.config(t))
		release, res := b.runBlocked(t, p.DB())

		var released atomic.Bool
		closed := make(chan error, 1)
		go func() {
			err := p.Close(context.Background())
			if !released.Load() {
				t.Error("Close returned before the query in flight was released")
			}
			closed <- err
		}()
		waittest.Eventually(t, waitTimeout, func() bool {
			return p.DB().Ping() != nil
		}, "the pool to refuse new queries")
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a query was running", err)
		default:
		}
		released.Store(true)
		release()
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-res; err != nil {
			t.Fatalf("the query in flight failed: %v", err)
		}
		if p.DB().Stats().OpenConnections != 0 {
			t.Fatalf("connections still open after Close: %+v", p.DB().Stats())
		}
	})
}

func TestCloseGivesUpAtItsContext(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		p := startPool(t, b.config(t))
		release, res := b.runBlocked(t, p.DB())
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		err := p.Close(ctx)
		if !errors.Is(err, sqlmod.ErrInUse) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want ErrInUse and DeadlineExceeded", err)
		}
		mustContain(t, err.Error(), "1 connections still in use")
		release()
		if err := <-res; err != nil {
			t.Fatalf("the query cut by Close's deadline failed: %v (it should finish on its own)", err)
		}
		if err := p.Close(t.Context()); err != nil { // waits for the connection to close
			t.Fatalf("second Close: %v", err)
		}
	})
}
