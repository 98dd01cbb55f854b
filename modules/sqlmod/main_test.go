package sqlmod_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"modernc.org/sqlite"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/modules/sqlmod"
)

func TestMain(m *testing.M) {
	// drainfx_block(key) is a SQLite function that blocks until the test
	// releases it: a query that runs exactly as long as a test wants.
	sqlite.MustRegisterScalarFunction("drainfx_block", 1,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			v, ok := sqliteBlocks.Load(args[0])
			if !ok {
				return nil, fmt.Errorf("no block %v", args[0])
			}
			b := v.(*sqliteBlock)
			close(b.entered)
			<-b.release
			b.returned.Store(true)
			return int64(1), nil
		})
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event in these tests; reaching it is a
// failure, not a timing.
const waitTimeout = 5 * time.Second

// defaultPostgresDSN is what internal/ci/postgres.sh sets up.
const defaultPostgresDSN = "postgres://drainfx:drainfx@127.0.0.1:5432/drainfx?sslmode=disable"

var postgres = sync.OnceValues(func() (string, error) {
	dsn := os.Getenv("DRAINFX_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultPostgresDSN
	}
	db, err := sql.Open(sqlmod.DriverPostgres, dsn)
	if err != nil {
		return dsn, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return dsn, db.PingContext(ctx)
})

// postgresDSN returns the DSN of a reachable PostgreSQL server. Without one
// the test is skipped, or fails under CI=true.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn, err := postgres()
	if err != nil {
		msg := fmt.Sprintf("postgres: no server at %s: install Debian package postgresql and run internal/ci/postgres.sh, or set DRAINFX_TEST_POSTGRES_DSN (%s)",
			sqlmod.RedactDSN(dsn), strings.Join(strings.Fields(err.Error()), " "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// backend is a database the tests run against.
type backend struct {
	name string
	// config returns a Config for a fresh database.
	config func(t *testing.T) sqlmod.Config
	// block returns a query that blocks until release is called, and a
	// function that waits until the query is blocking.
	block func(t *testing.T) (query string, entered func(), release func())
}

var sqliteBackend = backend{
	name: "sqlite",
	config: func(t *testing.T) sqlmod.Config {
		return sqlmod.Config{DataDir: t.TempDir(), StartBackoff: time.Millisecond}
	},
	block: func(t *testing.T) (string, func(), func()) {
		b := newSQLiteBlock(t)
		return b.query, func() { waittest.Recv(t, b.entered, waitTimeout, "the query to block") }, b.unblock
	},
}

var postgresBackend = backend{
	name: "postgres",
	config: func(t *testing.T) sqlmod.Config {
		return sqlmod.Config{DSN: postgresDSN(t), StartBackoff: time.Millisecond}
	},
	block: func(t *testing.T) (string, func(), func()) {
		// The query waits for an advisory lock that another session holds.
		key := rand.Int32()
		holder, err := sql.Open(sqlmod.DriverPostgres, postgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { holder.Close() })
		conn, err := holder.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock($1)", key); err != nil {
			t.Fatal(err)
		}
		entered := func() {
			waittest.Eventually(t, waitTimeout, func() bool {
				var n int
				err := holder.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1::bigint`,
					int64(uint32(key))).Scan(&n)
				return err == nil && n == 1
			}, "the query to wait for the lock")
		}
		var once sync.Once
		release := func() {
			once.Do(func() {
				if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key); err != nil {
					t.Error(err)
				}
			})
		}
		t.Cleanup(release)
		return fmt.Sprintf("SELECT 1 FROM pg_advisory_lock(%d)", key), entered, release
	},
}

// runBlocked runs b's blocking query on db from a goroutine and waits
// until it blocks. It returns the function that releases the query and the
// channel its result arrives on.
func (b backend) runBlocked(t *testing.T, db *sql.DB) (release func(), res <-chan error) {
	t.Helper()
	query, entered, release := b.block(t)
	done := make(chan error, 1)
	go func() {
		var n int64
		done <- db.QueryRow(query).Scan(&n)
	}()
	entered()
	return release, done
}

// eachBackend runs f against SQLite, and against PostgreSQL when a server
// is reachable.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{sqliteBackend, postgresBackend} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			b.config(t) // skips without a server
			f(t, b)
		})
	}
}

type sqliteBlock struct {
	query    string
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	returned atomic.Bool
}

var (
	sqliteBlocks sync.Map
	blockSeq     atomic.Int64
)

func newSQLiteBlock(t *testing.T) *sqliteBlock {
	key := fmt.Sprintf("block-%d", blockSeq.Add(1))
	b := &sqliteBlock{
		query:   fmt.Sprintf("SELECT drainfx_block('%s')", key),
		entered: make(chan struct{}),
		release: make(chan struct{}),
	}
	sqliteBlocks.Store(key, b)
	t.Cleanup(b.unblock)
	return b
}

func (b *sqliteBlock) unblock() { b.once.Do(func() { close(b.release) }) }

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q does not contain %q", s, sub)
		}
	}
}
