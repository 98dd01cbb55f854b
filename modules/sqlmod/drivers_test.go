package sqlmod_test

// The tests use both drivers; sqlmod itself imports neither.
import (
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)
