package sqlmod_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/modules/sqlmod"
)

// dsnCorpus are postgres:// DSNs, well formed or not.
var dsnCorpus = []string{
	"postgres://u:pw@127.0.0.1:5432/db",
	"postgres://u:pw@127.0.0.1:99999/db",
	"postgres://u:pw@127.0.0.1:0/db",
	"postgres://u:pw@127.0.0.1:port/db",
	"postgres://u:pw@127.0.0.1:/db",
	"postgres://u:s3%zzcret@127.0.0.1:5432/db",
	"postgres://u:s3cret%@h/db",
	"postgres://u:s3cret%4@h/db",
	"postgres://u:s3%00cret@h/db",
	"postgres://u%zz:pw@h/db",
	"postgres://u:pw@[::1/db",
	"postgres://u:pw@[::1]:5432/db",
	"postgres://u:pw@[]:5432/db",
	"postgres://u:pw@[::1]x/db",
	"postgres://u:pw@[::1]:5432,h2:5433,h3/db",
	"postgres://u:pw@h1:5432,h2:99999/db",
	"postgres://u:12345?s3cret@127.0.0.1:1/db?sslmode=disable",
	"postgresql://u@h/db?sslmode=disable&connect_timeout=5",
	"postgres://h/db?sslmode",
	"postgres://h/db?a=b=c",
	"postgres://h/db?password=s3%zz",
	"postgres://h/db?port=70000",
	"postgres://h/d%zzb",
	"postgres://h%zz/db",
	"postgres://u:s3 cret@h/db",
	"postgres:///db?host=/var/run/postgresql",
	"postgres://",
	"postgres://h",
	"postgres://h/",
	"postgres://h/db?",
}

// sqlmod refuses no URL that pgx reads, and every URL pgx cannot parse as
// a URL (its grammar, a port) is refused by Validate, before any connect.
func TestValidateAgreesWithPgx(t *testing.T) {
	t.Parallel()
	for _, dsn := range dsnCorpus {
		verr := sqlmod.Config{DSN: dsn}.Validate()
		_, perr := pgconn.ParseConfig(dsn)
		urlFault := perr != nil && (strings.Contains(perr.Error(), "failed to parse as URL") || strings.Contains(perr.Error(), "invalid port"))
		switch {
		case verr != nil && perr == nil:
			t.Errorf("%s: refused (%v), but pgx reads it", dsn, verr)
		case verr == nil && urlFault:
			t.Errorf("%s: accepted, but pgx cannot parse it: %v", dsn, perr)
		case verr != nil && strings.Contains(verr.Error(), "s3cret"):
			t.Errorf("%s: the error shows the password: %v", dsn, verr)
		}
	}
}

// The same, for any string: Validate never refuses a postgres:// URL that
// pgx reads (go test -fuzz FuzzValidateAgreesWithPgx ./modules/sqlmod).
func FuzzValidateAgreesWithPgx(f *testing.F) {
	for _, dsn := range dsnCorpus {
		f.Add(strings.TrimPrefix(dsn, "postgres://"))
	}
	f.Fuzz(func(t *testing.T, rest string) {
		dsn := "postgres://" + rest
		verr := sqlmod.Config{DSN: dsn}.Validate()
		if _, perr := pgconn.ParseConfig(dsn); verr != nil && perr == nil && !strings.Contains(verr.Error(), "after the user info") {
			t.Errorf("%q: refused (%v), but pgx reads it", dsn, verr)
		}
	})
}

// A DSN pgx refuses to read for a reason Validate does not know (a bad
// sslmode) fails the start at its first attempt, with an error matching
// ErrConfig that masks the password, not after retries as an unreachable
// server. Nothing listens on the port: a retry would say "not reachable".
func TestStartDoesNotRetryADSNTheDriverRefuses(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	core, logs := observer.New(zapcore.DebugLevel)
	p, err := sqlmod.New(sqlmod.Config{
		DSN:          "postgres://app:s3cret@127.0.0.1:" + port + "/app?sslmode=bogus",
		StartBackoff: time.Millisecond,
	}, sqlmod.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.DB().Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	err = p.Start(ctx)
	if !errors.Is(err, sqlmod.ErrConfig) {
		t.Fatalf("Start = %v, want an error matching ErrConfig", err)
	}
	mustContain(t, err.Error(), `sqlmod: DSN="postgres://app:xxxxx@127.0.0.1:`+port+`/app?sslmode=bogus": the driver cannot read it: `, "sslmode is invalid")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
	if n := logs.FilterMessage("database not reachable yet").Len(); n != 0 {
		t.Errorf("%d retries, want none", n)
	}
}
