package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/modules/sqlmod"
)

// The schema works on SQLite and PostgreSQL alike. Times are Unix
// milliseconds, to keep to types both have.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)`,
	`INSERT INTO hits (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
	`CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, seen_at BIGINT NOT NULL)`,
}

// store is the service's data: a hit counter and the presence of the
// running instances.
type store struct {
	db       *sql.DB
	postgres bool
	log      *zap.Logger
}

type storeParams struct {
	fx.In

	Pool      *sqlmod.Pool
	Logger    *zap.Logger `optional:"true"`
	Lifecycle fx.Lifecycle
}

// newStore creates the schema in an OnStart hook, which fx runs after the
// pool's (the pool is built first, so its hook comes first).
func newStore(p storeParams) *store {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &store{db: p.Pool.DB(), postgres: p.Pool.Driver() == sqlmod.DriverPostgres,
		log: log.With(zap.String("component", "service"))}
	p.Lifecycle.Append(fx.Hook{OnStart: s.migrate})
	return s
}

// migrate creates the tables if they are missing. Two instances starting
// at once on PostgreSQL can collide on CREATE TABLE IF NOT EXISTS (a
// unique violation in the catalog): it is tried a few times.
func (s *store) migrate(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = s.migrateOnce(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("schema: %w", err)
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("schema: %w", err)
}

func (s *store) migrateOnce(ctx context.Context) error {
	for _, q := range schema {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// Hit adds one to the counter and returns the new count.
func (s *store) Hit(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `UPDATE hits SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("hit: %w", err)
	}
	return n, nil
}

// Hits returns the count.
func (s *store) Hits(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM hits WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("hits: %w", err)
	}
	return n, nil
}

// Instances returns the ids of the instances that have a presence row.
func (s *store) Instances(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("instances: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// q rewrites ? placeholders to $1, $2… for PostgreSQL.
func (s *store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// presenceInterval is how often the presence worker renews its row.
const presenceInterval = time.Second

// newPresence is the "presence" worker: it keeps a row for this process in
// the instances table while it runs, and deletes it when its context ends
// — in the teardown phase, after the servers have stopped, before the pool
// closes (fx stops the pool after the worker, since the worker uses it).
func newPresence(s *store) func(context.Context) error {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s-%d", host, os.Getpid())
	return func(ctx context.Context) error {
		started := time.Now().UnixMilli()
		seen := func() error {
			_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO instances (id, started_at, seen_at) VALUES (?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at`), id, started, time.Now().UnixMilli())
			return err
		}
		t := time.NewTicker(presenceInterval)
		defer t.Stop()
		for {
			if err := seen(); err != nil && ctx.Err() == nil {
				// A busy database is no reason to stop the service.
				s.log.Warn("presence: renew", zap.Error(err))
			}
			select {
			case <-ctx.Done():
				// ctx has ended: the delete gets a short deadline of its own,
				// well within the worker's share of the teardown reserve.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
				defer cancel()
				if _, err := s.db.ExecContext(dctx, s.q(`DELETE FROM instances WHERE id = ?`), id); err != nil {
					return fmt.Errorf("presence: delete %s: %w", id, err)
				}
				s.log.Info("presence: removed", zap.String("instance", id))
				return nil
			case <-t.C:
			}
		}
	}
}
