package sqlmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultDataDir         = "./data"
	DefaultSQLiteFile      = "app.db"
	DefaultMaxOpenConns    = 10
	DefaultMaxIdleConns    = 5
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultConnMaxIdleTime = 5 * time.Minute
	DefaultPingTimeout     = 2 * time.Second
	DefaultStartBackoff    = 100 * time.Millisecond
	DefaultMaxStartBackoff = 2 * time.Second
	DefaultBusyTimeout     = 5 * time.Second
)

// Config selects the database and sizes the pool.
type Config struct {
	// DSN selects the database. Default empty: an embedded SQLite file in
	// DataDir (no server, no cgo). "postgres://…" or "postgresql://…": a
	// PostgreSQL server through pgx (any pgx connection URL, e.g.
	// postgres://app:secret@db:5432/app?sslmode=disable). "file:…": a SQLite
	// database at that path, with the query parameters modernc.org/sqlite
	// knows (_pragma=…), used as given. The DSN is never logged or returned
	// in an error with its password ([RedactDSN]); it is not marshalled to
	// JSON either. A postgres URL with an '@' after its user info (which
	// ends at the first '@' before any '/') is refused: a password's '/'
	// and '@' must be percent-encoded. So is one pgx could not parse —
	// read with pgx's (libpq's) URI grammar: a port outside 1-65535, a
	// bad %-escape, an IPv6 host with no ']' — so that it fails at once,
	// naming the fault, instead of at each ping of the start.
	DSN string `yaml:"dsn" json:"-"`
	// DataDir is where the embedded SQLite file lives when DSN is empty; it
	// is created (0750) at start if missing. Default "./data".
	DataDir string `yaml:"dataDir" json:"dataDir"`
	// SQLiteFile is the embedded database's file name within DataDir.
	// Default "app.db". The file is opened in WAL mode, with a busy timeout
	// (BusyTimeout) and foreign keys on.
	SQLiteFile string `yaml:"sqliteFile" json:"sqliteFile"`
	// BusyTimeout is how long an embedded SQLite connection waits for a
	// lock held by another before failing with SQLITE_BUSY. Default 5s.
	BusyTimeout time.Duration `yaml:"busyTimeout" json:"busyTimeout"`

	// MaxOpenConns caps the connections open at once
	// ([database/sql.DB.SetMaxOpenConns]). Default 10; negative: no cap.
	MaxOpenConns int `yaml:"maxOpenConns" json:"maxOpenConns"`
	// MaxIdleConns caps the idle connections kept for reuse. Default 5
	// (never above MaxOpenConns); negative: none kept.
	MaxIdleConns int `yaml:"maxIdleConns" json:"maxIdleConns"`
	// ConnMaxLifetime closes a connection this long after it was opened, so
	// connections move to a new server after a failover. Default 30m;
	// negative: never.
	ConnMaxLifetime time.Duration `yaml:"connMaxLifetime" json:"connMaxLifetime"`
	// ConnMaxIdleTime closes a connection idle this long. Default 5m;
	// negative: never.
	ConnMaxIdleTime time.Duration `yaml:"connMaxIdleTime" json:"connMaxIdleTime"`

	// PingTimeout bounds one ping: each attempt at start and each readiness
	// check. Default 2s.
	PingTimeout time.Duration `yaml:"pingTimeout" json:"pingTimeout"`
	// StartBackoff is the wait after the first failed ping at start; it
	// doubles after each failure, up to MaxStartBackoff. Pings go on until
	// the start context (fx's start timeout) ends or, under Fx, the drain
	// begins. Default 100ms.
	StartBackoff time.Duration `yaml:"startBackoff" json:"startBackoff"`
	// MaxStartBackoff caps the wait between pings at start. Default 2s.
	MaxStartBackoff time.Duration `yaml:"maxStartBackoff" json:"maxStartBackoff"`
}

// ErrConfig is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrConfig = errors.New("sqlmod: invalid config")

// configErrorf returns an error matching [ErrConfig] whose message is
// "sqlmod: " and the formatted phrase.
func configErrorf(format string, args ...any) error {
	return confcheck.NewError(ErrConfig, "sqlmod: "+fmt.Sprintf(format, args...))
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.SQLiteFile == "" {
		c.SQLiteFile = DefaultSQLiteFile
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = DefaultMaxIdleConns
		if c.MaxOpenConns > 0 {
			c.MaxIdleConns = min(c.MaxIdleConns, c.MaxOpenConns)
		}
	}
	if c.ConnMaxLifetime == 0 {
		c.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if c.ConnMaxIdleTime == 0 {
		c.ConnMaxIdleTime = DefaultConnMaxIdleTime
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.StartBackoff == 0 {
		c.StartBackoff = DefaultStartBackoff
	}
	if c.MaxStartBackoff == 0 {
		c.MaxStartBackoff = max(DefaultMaxStartBackoff, c.StartBackoff)
	}
	return c
}

// Validate resolves defaults and checks c; the error names the field and
// its value (a DSN with its password masked).
func (c Config) Validate() error {
	c = c.WithDefaults()
	if _, err := driverFor(c.DSN); err != nil {
		return err
	}
	if strings.ContainsAny(c.DataDir+c.SQLiteFile, "?#") {
		return configErrorf("DataDir=%q SQLiteFile=%q: a path may not contain '?' or '#'", c.DataDir, c.SQLiteFile)
	}
	var bad confcheck.Problems
	bad.Negative("BusyTimeout", c.BusyTimeout)
	bad.Negative("PingTimeout", c.PingTimeout)
	bad.Negative("StartBackoff", c.StartBackoff)
	bad.Negative("MaxStartBackoff", c.MaxStartBackoff)
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "sqlmod: "+bad.String())
	}
	if c.MaxStartBackoff < c.StartBackoff {
		return configErrorf("MaxStartBackoff=%v is below StartBackoff=%v", c.MaxStartBackoff, c.StartBackoff)
	}
	return nil
}

// PrepareDataDir readies DataDir for the embedded SQLite file (an empty
// DSN; for another it does nothing): it creates DataDir (0750) if missing,
// opens the database file for writing (creating it empty if missing) and
// creates and removes a file beside it, as SQLite's WAL does. A directory
// the process cannot write — a path under a regular file, a read-only
// file system — fails here, at once, with an error naming DataDir, where
// SQLite's own "unable to open database file" would be retried as an
// unreachable database. [Pool.Start] calls it; a main may call it first,
// to report a bad directory before anything starts.
func (c Config) PrepareDataDir() error {
	if c.DSN != "" {
		return nil
	}
	c = c.WithDefaults()
	if err := prepareDir(c.DataDir, filepath.Join(c.DataDir, c.SQLiteFile)); err != nil {
		return fmt.Errorf("sqlmod: DataDir=%q: %w", c.DataDir, err)
	}
	return nil
}

func prepareDir(dir, file string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644) // SQLite's own mode
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return err
	}
	return errors.Join(probe.Close(), os.Remove(probe.Name()))
}

// The drivers [Pool.Driver] reports.
const (
	DriverSQLite   = "sqlite" // modernc.org/sqlite
	DriverPostgres = "pgx"    // github.com/jackc/pgx/v5/stdlib
)

// driverPackage is the package an app imports for each driver: sqlmod
// imports none (as database/sql expects), so that a service links only the
// driver it uses.
var driverPackage = map[string]string{
	DriverSQLite:   "modernc.org/sqlite",
	DriverPostgres: "github.com/jackc/pgx/v5/stdlib",
}

func driverFor(dsn string) (string, error) {
	lower := strings.ToLower(dsn)
	switch {
	case dsn == "", strings.HasPrefix(lower, "file:"):
		return DriverSQLite, nil
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if strayAt(dsn) {
			return "", configErrorf("DSN=%q: an '@' after the user info (in a password, write '/' as %%2F and '@' as %%40)", RedactDSN(dsn))
		}
		if bad := checkPostgresURL(dsn); bad != "" {
			return "", configErrorf("DSN=%q: %s", RedactDSN(dsn), bad)
		}
		return DriverPostgres, nil
	}
	return "", configErrorf("DSN=%q: want empty (embedded SQLite), file:… (SQLite) or postgres://…", RedactDSN(dsn))
}

// strayAt reports whether a postgres:// URL has an '@' after its user info,
// which pgx (as libpq) ends at the first '@' before any '/'. Such an '@' is
// almost always a password with a character that should have been
// percent-encoded ("app:/s3cret@db", "app:12/pw@db"): pgx would take part
// of the password for a host or a database name, and print it in its
// errors.
func strayAt(dsn string) bool {
	_, rest, _ := strings.Cut(dsn, "://")
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		rest = rest[i+1:]
	}
	return strings.Contains(rest, "@")
}
