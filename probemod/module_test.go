package probemod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// testApp is lifecycle + probemod on 127.0.0.1:0, with opts.
func testApp(t *testing.T, opts ...fx.Option) *fxtest.App {
	return fxtest.New(t, append([]fx.Option{
		lifecycle.Module,
		probemod.Module,
		fx.Supply(testLifecycle, probemod.Config{Addr: "127.0.0.1:0"}),
	}, opts...)...)
}

func TestModuleBoots(t *testing.T) {
	t.Parallel()
	var (
		c     *lifecycle.Coordinator
		admin *probemod.Admin
		p     *probemod.Probes
	)
	app := testApp(t,
		probemod.AsCheck("db", func(context.Context) error { return nil }),
		fx.Populate(&c, &admin, &p),
	).RequireStart()
	url := "http://" + admin.Addr().String()
	if admin.Probes() != p {
		t.Error("the *Probes provided are not the admin server's")
	}
	if code, _ := get(t, url+"/startupz"); code != 503 {
		t.Errorf("/startupz before MarkStarted = %d, want 503", code)
	}
	c.MarkStarted()
	if code, body := get(t, url+"/readyz?verbose"); code != 200 || body != lines("[+]serving ok", "[+]db ok", "readyz check passed") {
		t.Errorf("/readyz?verbose = %d %q", code, body)
	}
	app.RequireStop()
	if conn, err := net.Dial("tcp", admin.Addr().String()); err == nil {
		conn.Close()
		t.Error("the admin server still accepts connections after the app stopped")
	}
}

// TestAdminStopsLast records what the admin server answers during another
// module's stop participant, during its teardown hook and once the
// shutdown report has been logged, then checks that it is closed once the
// app has stopped. fx calls the admin server's OnStop first here (its hook
// was appended after the coordinator's): its wait for the coordinator's
// timeline is what keeps it up.
func TestAdminStopsLast(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []string
		admin  *probemod.Admin
	)
	// status is get without t: it runs on the coordinator's goroutines.
	status := func(path string) int {
		resp, err := client.Get("http://" + admin.Addr().String() + path)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	record := func(when string) {
		livez, readyz := status("/livez"), status("/readyz")
		mu.Lock()
		events = append(events, fmt.Sprintf("%s: livez %d readyz %d", when, livez, readyz))
		mu.Unlock()
	}
	// The report is logged on the coordinator's goroutine before its Stop
	// returns.
	core, _ := observer.New(zapcore.InfoLevel) // a core that is enabled: hooks see its entries
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "shutdown report" {
			record("after the report")
		}
		return nil
	}))
	app := testApp(t,
		fx.Supply(log),
		fx.Populate(&admin),
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator, _ *probemod.Admin) {
			c.AtStop("sessions", func(context.Context) error { record("stop phase"); return nil })
			c.AtTeardown("db", func(context.Context) error { record("teardown hook"); return nil })
			lc.Append(fx.Hook{OnStart: func(context.Context) error { c.MarkStarted(); return nil }})
		}),
	).RequireStart()
	record("serving")
	app.RequireStop()

	want := []string{
		"serving: livez 200 readyz 200",
		"stop phase: livez 200 readyz 503",
		"teardown hook: livez 200 readyz 503",
		"after the report: livez 200 readyz 503",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	if conn, err := net.Dial("tcp", admin.Addr().String()); err == nil {
		conn.Close()
		t.Error("the admin server still accepts connections after the app stopped")
	}
}

func TestModuleBusyPortFailsStart(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	app := fxtest.New(t,
		lifecycle.Module,
		probemod.Module,
		fx.Supply(testLifecycle, probemod.Config{Addr: l.Addr().String()}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = app.Start(ctx)
	if want := fmt.Sprintf("listen %q", l.Addr().String()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Start = %v, want an error naming %s", err, want)
	}
}

type database struct{ err error }

func (d *database) Ping(context.Context) error { return d.err }

type pinger func(context.Context) error

func TestAsCheck(t *testing.T) {
	t.Parallel()
	down := errors.New("down")
	fail := func(context.Context) error { return down }
	tests := []struct {
		name     string
		give     fx.Option
		wantErr  string // from fx.New
		wantBody string // /readyz?verbose
	}{
		{
			name:     "a func",
			give:     probemod.AsCheck("db", fail),
			wantBody: lines("[+]serving ok", "[-]db failed: reason withheld", "readyz check failed"),
		},
		{
			name:     "a constructor with a dependency",
			give:     fx.Options(fx.Supply(&database{}), probemod.AsCheck("db", func(d *database) func(context.Context) error { return d.Ping })),
			wantBody: lines("[+]serving ok", "[+]db ok", "readyz check passed"),
		},
		{
			name:     "a constructor of a named func type, with an error",
			give:     probemod.AsCheck("db", func() (pinger, error) { return pinger(fail), nil }),
			wantBody: lines("[+]serving ok", "[-]db failed: reason withheld", "readyz check failed"),
		},
		{
			name:     "a Check",
			give:     probemod.AsCheck("db", probemod.Check{Check: fail, FailureThreshold: 3}),
			wantBody: lines("[+]serving ok", "[-]db failed: reason withheld", "readyz check failed"),
		},
		{
			name:     "a constructor of a Check",
			give:     probemod.AsCheck("db", func() probemod.Check { return probemod.Check{Name: "db", Check: fail} }),
			wantBody: lines("[+]serving ok", "[-]db failed: reason withheld", "readyz check failed"),
		},
		{
			name:     "two checks",
			give:     fx.Options(probemod.AsCheck("db", fail), probemod.AsCheck("cache", func(context.Context) error { return nil })),
			wantBody: lines("[+]serving ok", "[+]cache ok", "[-]db failed: reason withheld", "readyz check failed"),
		},
		{name: "not a func", give: probemod.AsCheck("db", 42), wantErr: `probemod.AsCheck("db"): got int`},
		{name: "a bad name", give: probemod.AsCheck("my db", fail), wantErr: `probemod.AsCheck("my db"): name has a space`},
		{name: "a Check named otherwise", give: probemod.AsCheck("db", probemod.Check{Name: "cache", Check: fail}), wantErr: `Check.Name="cache" differs`},
		{name: "a constructor of something else", give: probemod.AsCheck("db", func() error { return nil }), wantErr: "returns error, want func(context.Context) error or Check"},
		{name: "a constructor failing", give: probemod.AsCheck("db", func() (func(context.Context) error, error) { return nil, down }), wantErr: `probemod.AsCheck("db"): down`},
		{name: "a constructor of nil", give: probemod.AsCheck("db", func() func(context.Context) error { return nil }), wantErr: "constructor returned a nil check"},
		{name: "twice", give: fx.Options(probemod.AsCheck("db", fail), probemod.AsCheck("db", fail)), wantErr: `Name="db" registered twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				c *lifecycle.Coordinator
				p *probemod.Probes
			)
			app := fx.New(fx.NopLogger, lifecycle.Module, probemod.Module, fx.Supply(testLifecycle), tt.give, fx.Populate(&c, &p))
			if tt.wantErr != "" {
				if err := app.Err(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("fx.New error = %v, want one containing %s", err, tt.wantErr)
				}
				return
			}
			if err := app.Err(); err != nil {
				t.Fatal(err)
			}
			defer closeProbes(t, p) // the app is not started: its probes serve through a ServeMux alone
			c.MarkStarted()
			mux := http.NewServeMux()
			p.Register(mux)
			if rec := serve(mux, "/readyz?verbose"); rec.Body.String() != tt.wantBody {
				t.Errorf("/readyz?verbose = %d\n%s\nwant\n%s", rec.Code, rec.Body, tt.wantBody)
			}
		})
	}
}

func TestAsAdminRoute(t *testing.T) {
	t.Parallel()
	hello := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, s) })
	}
	var admin *probemod.Admin
	app := testApp(t,
		fx.Supply("from the graph"),
		probemod.AsAdminRoute(probemod.AdminRoute{Pattern: "GET /value", Handler: hello("value")}),
		probemod.AsAdminRoute(func(s string) probemod.AdminRoute {
			return probemod.AdminRoute{Pattern: "GET /ctor", Handler: hello(s)}
		}),
		probemod.AsAdminRoute(func() (probemod.AdminRoute, error) {
			return probemod.AdminRoute{Pattern: "POST /post", Handler: hello("posted")}, nil
		}),
		fx.Populate(&admin),
	).RequireStart()
	defer app.RequireStop()
	url := "http://" + admin.Addr().String()
	tests := []struct {
		method, path string
		want         string
	}{
		{http.MethodGet, "/value", "value"},
		{http.MethodGet, "/ctor", "from the graph"},
		{http.MethodPost, "/post", "posted"},
	}
	for _, tt := range tests {
		if code, body := do(t, tt.method, url+tt.path); code != 200 || body != tt.want {
			t.Errorf("%s %s = %d %q, want 200 %q", tt.method, tt.path, code, body, tt.want)
		}
	}

	bad := fx.New(fx.NopLogger, lifecycle.Module, probemod.Module, probemod.AsAdminRoute(func() string { return "" }))
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "probemod.AsAdminRoute: got func() string") {
		t.Errorf("AsAdminRoute(func() string) = %v, want an error", err)
	}
}
