package sqlmod

import (
	"strings"
	"testing"
)

// An app that forgot its driver import gets an error that names the import.
func TestNewWithoutTheDriverImport(t *testing.T) {
	registered := registeredDrivers
	registeredDrivers = func() []string { return nil }
	defer func() { registeredDrivers = registered }()
	tests := []struct {
		give Config
		want string
	}{
		{Config{DataDir: t.TempDir()}, `import _ "modernc.org/sqlite"`},
		{Config{DSN: "postgres://app:s3cret@127.0.0.1:1/db"}, `import _ "github.com/jackc/pgx/v5/stdlib"`},
	}
	for _, tt := range tests {
		_, err := New(tt.give)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q) = %v, want an error naming %s (and no password)", tt.give.DSN, err, tt.want)
		}
	}
}
