package sqlmod

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"slices"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/probemod"
)

// registeredDrivers is [sql.Drivers]; a variable so a test can see the app
// that forgot its driver import.
var registeredDrivers = sql.Drivers

// ErrInUse is matched by the error of [Pool.Close] when connections were
// still in use (queries running) as its context ended.
var ErrInUse = errors.New("sqlmod: connections still in use")

type inUseError struct {
	db    string
	inUse int
	cause error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("sqlmod: close %s: %d connections still in use: %v", e.db, e.inUse, e.cause)
}
func (e *inUseError) Is(target error) bool { return target == ErrInUse }
func (e *inUseError) Unwrap() error        { return e.cause }

// Option configures a [Pool].
type Option func(*options)

type options struct {
	log *zap.Logger
}

// WithLogger sets the logger (default [zap.NewNop]); the pool adds the
// field component=sql.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Pool is a [database/sql.DB] with a start (ping until reachable), a
// readiness check and a bounded close. Build it with [New].
type Pool struct {
	db       *sql.DB
	cfg      Config
	driver   string
	redacted string // what logs and errors call the database
	sqlite   string // the embedded file, or empty
	log      *zap.Logger
}

// New opens the pool for cfg. It does not connect: [Pool.Start] does. It
// fails with an error matching [ErrConfig] if cfg is invalid.
func New(cfg Config, opts ...Option) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	p := &Pool{cfg: cfg, log: o.log.With(zap.String("component", "sql"))}
	p.driver, _ = driverFor(cfg.DSN)
	dsn := cfg.DSN
	p.redacted = RedactDSN(dsn)
	if dsn == "" {
		p.sqlite = filepath.Join(cfg.DataDir, cfg.SQLiteFile)
		q := url.Values{"_pragma": {
			"journal_mode(WAL)",
			fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()),
			"foreign_keys(1)",
		}}
		dsn = p.sqlite + "?" + q.Encode()
		p.redacted = "sqlite " + p.sqlite
	}
	if !slices.Contains(registeredDrivers(), p.driver) {
		// sqlmod imports no driver: the app links only the one it uses.
		return nil, fmt.Errorf("sqlmod: open %s: database/sql driver %q not registered: import _ %q in the app",
			p.redacted, p.driver, driverPackage[p.driver])
	}
	db, err := sql.Open(p.driver, dsn)
	if err != nil {
		// A driver's open error may quote the DSN: name it ourselves.
		return nil, fmt.Errorf("sqlmod: open %s: invalid DSN", p.redacted)
	}
	db.SetMaxOpenConns(max(cfg.MaxOpenConns, 0))
	db.SetMaxIdleConns(cfg.MaxIdleConns)
	db.SetConnMaxLifetime(max(cfg.ConnMaxLifetime, 0))
	db.SetConnMaxIdleTime(max(cfg.ConnMaxIdleTime, 0))
	p.db = db
	return p, nil
}

// DB returns the pool.
func (p *Pool) DB() *sql.DB { return p.db }

// Driver returns the database/sql driver name: [DriverSQLite] or
// [DriverPostgres].
func (p *Pool) Driver() string { return p.driver }

// String names the database as logs and errors do: the DSN with its
// password masked, or "sqlite PATH" for the embedded file.
func (p *Pool) String() string { return p.redacted }

// Start pings the database until it answers, waiting StartBackoff (doubled
// after each failure, up to MaxStartBackoff) between attempts, each bounded
// by PingTimeout. Only an unreachable database is retried: a DSN the
// driver refuses to read (a setting [Config.Validate] does not know, such
// as sslmode=bogus) fails the first attempt with an error matching
// [ErrConfig]. It gives up shortly before ctx's deadline — under fx, the
// start timeout — with an error naming the database (password masked), the
// attempts and the last failure: fx reports a hook still running at its
// deadline with the bare context error, which would name nothing. For the
// embedded SQLite file it first creates DataDir.
//
// If ctx is cancelled with a cause ([context.WithCancelCause]), Start
// returns at once (a ping in flight is cancelled) with an error that wraps
// that cause: under Fx, [Module] cancels the start so when the drain begins
// (a SIGTERM during start-up), with a cause matching [ErrStartCut].
func (p *Pool) Start(ctx context.Context) error {
	if p.sqlite != "" {
		if err := p.cfg.PrepareDataDir(); err != nil {
			return err
		}
	}
	began := time.Now()
	var giveUp time.Time // zero: only when ctx ends
	if dl, ok := ctx.Deadline(); ok {
		giveUp = dl.Add(-min(dl.Sub(began)/10, time.Second))
	}
	backoff := p.cfg.StartBackoff
	for attempt := 1; ; attempt++ {
		err := p.ping(ctx, giveUp)
		if err == nil {
			p.log.Info("database ready", zap.String("db", p.redacted), zap.String("driver", p.driver),
				zap.Int("attempts", attempt), zap.Duration("took", time.Since(began)))
			return nil
		}
		if reason, ok := driverConfigError(err, p.cfg.DSN); ok {
			// The DSN itself: no retry mends it.
			if reason == "" {
				reason = "its words would show a password"
			}
			return configErrorf("DSN=%q: the driver cannot read it: %s", p.redacted, reason)
		}
		unreachable := func() error {
			took := time.Since(began).Round(time.Millisecond)
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				return fmt.Errorf("%w; database %s unreachable: %d attempts in %v: %w", cause, p.redacted, attempt, took, err)
			}
			return fmt.Errorf("sqlmod: database %s unreachable: %d attempts in %v: %w", p.redacted, attempt, took, err)
		}
		if ctx.Err() != nil || !giveUp.IsZero() && time.Now().Add(backoff).After(giveUp) {
			return unreachable()
		}
		p.log.Warn("database not reachable yet", zap.String("db", p.redacted), zap.Int("attempt", attempt),
			zap.Error(err), zap.Duration("retryIn", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return unreachable()
		}
		backoff = min(2*backoff, p.cfg.MaxStartBackoff)
	}
}

// ping pings once, bounded by PingTimeout and by until (if not zero).
func (p *Pool) ping(ctx context.Context, until time.Time) error {
	dl := time.Now().Add(p.cfg.PingTimeout)
	if !until.IsZero() && until.Before(dl) {
		dl = until
	}
	ctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	return p.db.PingContext(ctx)
}

// Check is the readiness check: one ping, bounded by PingTimeout and ctx.
// Its error never carries the DSN's password, but the driver's words name
// the user, the database and the host: they go to the log, while probe
// output shows the fixed reason "ping failed" or "ping timed out"
// ([probemod.WithReason]).
func (p *Pool) Check(ctx context.Context) error {
	if err := p.ping(ctx, time.Time{}); err != nil {
		reason := "ping failed"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "ping timed out"
		}
		return probemod.WithReason(fmt.Errorf("ping: %w", err), reason)
	}
	return nil
}

// InUse returns the number of connections in use (running a query or held
// by a transaction or a [database/sql.Conn]).
func (p *Pool) InUse() int { return p.db.Stats().InUse }

// Close closes the pool: new queries fail at once with "sql: database is
// closed", idle connections are closed, and Close then waits until every
// connection in use has been released and closed — the queries and
// transactions running finish — or until ctx ends.
//
// [database/sql.DB.Close] itself does not wait: it returns at once and
// closes a connection in use only when its query is done, so a process
// exiting right after it cuts those queries (a server rolls their
// transactions back). Close does the waiting, bounded by ctx. If ctx ends
// first, it returns an error matching [ErrInUse] and ctx.Err(); the
// queries still running are left to finish on their own (their own
// contexts may end them). Close may be called again to wait longer.
func (p *Pool) Close(ctx context.Context) error {
	err := p.db.Close()
	if err != nil {
		err = fmt.Errorf("sqlmod: close %s: %w", p.redacted, err)
	}
	// database/sql has no event for "connection released"; its stats are
	// cheap to read (one mutex).
	const poll = 5 * time.Millisecond
	var tick *time.Ticker
	for {
		s := p.db.Stats()
		if s.OpenConnections == 0 {
			if tick != nil {
				tick.Stop()
			}
			return err
		}
		if tick == nil {
			tick = time.NewTicker(poll)
			defer tick.Stop()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			s = p.db.Stats()
			if s.OpenConnections == 0 {
				return err
			}
			return errors.Join(err, &inUseError{db: p.redacted, inUse: s.InUse, cause: ctx.Err()})
		}
	}
}
