package sqlmod_test

import (
	"errors"
	"testing"
	"time"

	"github.com/drainfx/drainfx/modules/sqlmod"
)

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give, want string
	}{
		{"", ""},
		{"postgres://app:s3cret@db:5432/app?sslmode=disable", "postgres://app:xxxxx@db:5432/app?sslmode=disable"},
		{"postgresql://app@db/app", "postgresql://app@db/app"},
		{"postgres://db/app?user=app&password=s3cret", "postgres://db/app?user=app&password=xxxxx"},
		{"postgres://app:s%40cret@db/app", "postgres://app:xxxxx@db/app"},
		{"host=db user=app password=s3cret dbname=app", "host=db user=app password=xxxxx dbname=app"},
		{"host=db password='s3 cret' sslpassword=k3y", "host=db password=xxxxx sslpassword=xxxxx"},
		{"postgres://app:s3cret@db:badport/app", "postgres://app:xxxxx@db:badport/app"},
		{"file:/data/app.db?_pragma=journal_mode(WAL)", "file:/data/app.db?_pragma=journal_mode(WAL)"},
		// Passwords with characters that should have been percent-encoded:
		// a URL parser reads them as a host, a path, a query or a fragment.
		{"postgres://app:/s3cr3tpw@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:12345/pw@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:12345?pw@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:12#pw@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:p@ss@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:p:w@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:s3%zzcret@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://app:s3 cret@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://:s3cret@host/db", "postgres://:xxxxx@host/db"},
		{"postgres://app:s3cret@[::1]:5432/db", "postgres://app:xxxxx@[::1]:5432/db"},
		{"postgres://app:s3cret@h1:5432,h2:5433/db", "postgres://app:xxxxx@h1:5432,h2:5433/db"},
		{"POSTGRES://app:s3cret@host/db", "POSTGRES://app:xxxxx@host/db"},
		// No "//", or another scheme.
		{"postgres:/app:s3cret@host/db", "postgres:/app:xxxxx@host/db"},
		{"postgres:app:s3cret@host/db", "postgres:app:xxxxx@host/db"},
		{"mysql://root:s3cret@tcp(db:3306)/app", "mysql://root:xxxxx@tcp(db:3306)/app"},
		// Query parameters that do not parse.
		{"postgres://db/app?password=s3%zzcret&sslmode=disable", "postgres://db/app?password=xxxxx&sslmode=disable"},
		{"postgres://db/app?sslmode=disable;password=s3;cret", "postgres://db/app?sslmode=disable;password=xxxxx"},
		{"postgres://db/app?PASSWORD=s3cret#frag", "postgres://db/app?PASSWORD=xxxxx"},
		{"postgres://db/app?sslpassword=k3y@x&password=s3cret", "postgres://db/app?sslpassword=xxxxx&password=xxxxx"},
		{"postgres://app:s3cret@db/app?password=s3cret", "postgres://app:xxxxx@db/app?password=xxxxx"},
		// Keyword/value oddities.
		{"host=db password = s3cret", "host=db password = xxxxx"},
		{"host=db password='s3 cret", "host=db password=xxxxx"},
		{`host=db password='s3\' cret'`, "host=db password=xxxxx"},
	}
	for _, tt := range tests {
		if got := sqlmod.RedactDSN(tt.give); got != tt.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give sqlmod.Config
		want string // empty: valid
	}{
		{"zero", sqlmod.Config{}, ""},
		{"postgres", sqlmod.Config{DSN: "postgres://a:b@h/d"}, ""},
		{"sqlite file", sqlmod.Config{DSN: "file:/tmp/x.db"}, ""},
		{"slash in the password", sqlmod.Config{DSN: "postgres://app:/s3cr3tpw@host/db"},
			`sqlmod: DSN="postgres://app:xxxxx@host/db": an '@' after the user info (in a password, write '/' as %2F and '@' as %40)`},
		{"port-like password", sqlmod.Config{DSN: "postgres://app:12345/pw@host/db"},
			`sqlmod: DSN="postgres://app:xxxxx@host/db": an '@' after the user info (in a password, write '/' as %2F and '@' as %40)`},
		{"'@' in the password", sqlmod.Config{DSN: "postgresql://app:p@ss@host/db"},
			`sqlmod: DSN="postgresql://app:xxxxx@host/db": an '@' after the user info (in a password, write '/' as %2F and '@' as %40)`},
		{"'?' in the password", sqlmod.Config{DSN: "postgres://app:12345?pw@host/db"}, ""}, // libpq and pgx end the user info at '@'
		{"encoded password", sqlmod.Config{DSN: "postgres://app:%2Fs3cr3tpw@host/db"}, ""},
		// Malformed URLs fail here, at once, not at each ping of the start.
		{"port out of range", sqlmod.Config{DSN: "postgres://u:pw@127.0.0.1:99999/db"},
			`sqlmod: DSN="postgres://u:xxxxx@127.0.0.1:99999/db": port "99999": not a port number (1-65535)`},
		{"bad escape in the password", sqlmod.Config{DSN: "postgres://u:s3%zzcret@127.0.0.1:5432/db"},
			`sqlmod: DSN="postgres://u:xxxxx@127.0.0.1:5432/db": the password: a '%' not followed by two hex digits (write '%' itself as %25)`},
		{"unclosed '['", sqlmod.Config{DSN: "postgres://u:pw@[::1/db"},
			`sqlmod: DSN="postgres://u:xxxxx@[::1/db": an IPv6 host with '[' and no ']'`},
		{"valid IPv6 and several hosts", sqlmod.Config{DSN: "postgres://u:pw@[::1]:5432,db2:5433,db3/db?sslmode=disable"}, ""},
		{"unix socket", sqlmod.Config{DSN: "postgres:///db?host=/var/run/postgresql"}, ""},
		{"port 0", sqlmod.Config{DSN: "postgres://u:pw@h:0/db"}, `sqlmod: DSN="postgres://u:xxxxx@h:0/db": port "0": not a port number (1-65535)`},
		{"port in the query", sqlmod.Config{DSN: "postgres://u:pw@h1,h2/db?port=5432,70000"}, `sqlmod: DSN="postgres://u:xxxxx@h1,h2/db?port=5432,70000": port "70000": not a port number (1-65535)`},
		{"bad escape in a query password", sqlmod.Config{DSN: "postgres://h/db?password=s3%zzcret"},
			`sqlmod: DSN="postgres://h/db?password=xxxxx": the value of password: a '%' not followed by two hex digits (write '%' itself as %25)`},
		{"space in the password", sqlmod.Config{DSN: "postgres://u:s3 cret@h/db"},
			`sqlmod: DSN="postgres://u:xxxxx@h/db": the password: a space inside (write it %20)`},
		{"scheme in upper case", sqlmod.Config{DSN: "POSTGRES://u:pw@h/db"},
			`sqlmod: DSN="POSTGRES://u:xxxxx@h/db": scheme "POSTGRES": write it in lower case, postgres:// or postgresql://`},
		{"unknown scheme", sqlmod.Config{DSN: "mysql://root:s3cret@db/app"},
			`sqlmod: DSN="mysql://root:xxxxx@db/app": want empty (embedded SQLite), file:… (SQLite) or postgres://…`},
		{"negative ping", sqlmod.Config{PingTimeout: -time.Second}, "sqlmod: PingTimeout=-1s is negative"},
		{"negative backoff", sqlmod.Config{StartBackoff: -time.Second}, "sqlmod: StartBackoff=-1s is negative"},
		{"max below backoff", sqlmod.Config{StartBackoff: time.Second, MaxStartBackoff: time.Millisecond},
			"sqlmod: MaxStartBackoff=1ms is below StartBackoff=1s"},
		{"query in path", sqlmod.Config{DataDir: "data?x"}, `sqlmod: DataDir="data?x" SQLiteFile="app.db": a path may not contain '?' or '#'`},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, sqlmod.ErrConfig)):
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
	got := sqlmod.Config{}.WithDefaults()
	want := sqlmod.Config{
		DataDir: "./data", SQLiteFile: "app.db", BusyTimeout: 5 * time.Second,
		MaxOpenConns: 10, MaxIdleConns: 5, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute,
		PingTimeout: 2 * time.Second, StartBackoff: 100 * time.Millisecond, MaxStartBackoff: 2 * time.Second,
	}
	if got != want {
		t.Errorf("defaults = %+v\nwant       %+v", got, want)
	}
	if got := (sqlmod.Config{MaxOpenConns: 2}).WithDefaults().MaxIdleConns; got != 2 {
		t.Errorf("MaxIdleConns with MaxOpenConns=2 = %d, want 2", got)
	}
}

func TestPoolSettings(t *testing.T) {
	t.Parallel()
	p, err := sqlmod.New(sqlmod.Config{DataDir: t.TempDir(), MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.DB().Close()
	if got := p.DB().Stats().MaxOpenConnections; got != 3 {
		t.Errorf("MaxOpenConnections = %d, want 3", got)
	}
	p2, err := sqlmod.New(sqlmod.Config{DataDir: t.TempDir(), MaxOpenConns: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.DB().Close()
	if got := p2.DB().Stats().MaxOpenConnections; got != 0 {
		t.Errorf("MaxOpenConnections with -1 = %d, want 0 (no cap)", got)
	}
}
