// Package sqlmod provides a [database/sql.DB] pool as a drainfx module:
// embedded SQLite by default, PostgreSQL for a postgres:// DSN, pinged until
// reachable at start, checked for readiness, and closed last, within a
// deadline of its own.
//
// # Drivers
//
// sqlmod imports no driver, as database/sql expects: the app imports the one
// it uses, so that a service links only that one —
//
//	import _ "modernc.org/sqlite"            // the embedded default
//	import _ "github.com/jackc/pgx/v5/stdlib" // postgres:// DSNs
//
// Without it, [New] fails naming the import.
//
// An empty [Config.DSN] opens an embedded SQLite database
// (modernc.org/sqlite: pure Go, no cgo, nothing to install) in a file in
// [Config.DataDir] ("./data/app.db" by default), in WAL mode so readers do
// not block the writer, with a busy timeout and foreign keys on. A
// postgres:// or postgresql:// DSN connects through pgx
// (github.com/jackc/pgx/v5/stdlib). A file: DSN opens that SQLite file as
// given.
//
// # Start, readiness, stop
//
// A malformed postgres:// URL — a port outside 1-65535, a bad %-escape, an
// IPv6 host with no ']' — fails [New] at once ([Config.Validate], read with
// pgx's own URI grammar), with an error naming the fault and the DSN with
// its password masked; it is never retried as an unreachable server.
//
// [Pool.Start] (OnStart) pings with a backoff until the database answers or
// the start context ends (a DSN the driver itself refuses to read fails the
// first ping, matching [ErrConfig]); then it fails start-up with an error naming the
// database with its password masked ([RedactDSN]), the attempts and the
// last failure, so app.Run exits 1. Under Fx the start also ends when the
// coordinator's drain begins — a SIGTERM during start-up — with an error
// matching [ErrStartCut], so the process exits at once instead of at fx's
// start timeout, which may come after the grace period. For the embedded
// file, a DataDir the process cannot write fails the start at once (it is
// not retried as an unreachable database). [Module] registers [Pool.Check] as the
// readiness check "db" ([probemod.AsCheck]): /readyz?verbose lists
// "[+]db ok" while pings pass, and "[-]db failed: ping failed" (or "ping
// timed out") when they fail — the driver's error, which names the user,
// the database and the host, goes to the log only.
//
// [Pool.Close] is the teardown hook "sql" ([lifecycle.Coordinator.AtTeardown],
// registered when [Module] builds the pool): the coordinator runs it in the
// teardown phase, after the servers have stopped, and it closes the pool
// and waits for the queries running to finish, within the hook's share of
// the teardown reserve. Note that [database/sql.DB.Close] alone does not
// wait for connections in use — it returns at once and closes each when
// its query is done — so without that wait a process can exit in the
// middle of a query. A query still running at the deadline is cut (the pool
// gives up on it a moment before, so that the report counts it): counted
// ("queries" in the shutdown report), the hook reported as overrun, and
// the next hook runs all the same. A pool whose start failed or never ran
// is closed all the same, at once.
//
// The coordinator runs the teardown hooks in reverse order of
// registration, and the pool registers its hook when it is built: before
// every component that depends on it — the handlers, workers — so it is
// closed after them.
//
// # Limits
//
// Close cannot cancel a query it did not start: one still running at the
// deadline goes on until the process exits, and a server then rolls its
// transaction back. Give long queries contexts of their own.
package sqlmod
