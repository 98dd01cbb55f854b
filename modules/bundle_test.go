package modules_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() modules.Config {
	return modules.Config{
		// A fixed drain of 50ms: the tests here are about the bundle, not
		// the adaptive drain's timing.
		Lifecycle: lifecycle.Config{DrainDelay: 50 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true},
		HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
		Probe:     probemod.Config{Addr: "127.0.0.1:0"},
	}
}

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The bundle marks the service started once fx says every OnStart hook ran,
// serves routes, and drains on stop.
func TestWebBundle(t *testing.T) {
	t.Parallel()
	var (
		srv   *httpmod.Server
		admin *probemod.Admin
		c     *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		modules.Web(testConfig()),
		httpmod.AsRoute(func() httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			})
		}),
		probemod.AsCheck("always", func(context.Context) error { return nil }),
		fx.Populate(&srv, &admin, &c),
	)
	if got := c.State(); got != lifecycle.StateStarting {
		t.Fatalf("state before start = %v", got)
	}
	app.RequireStart()
	base := "http://" + admin.Addr().String()
	if code, _ := status(t, base+"/startupz"); code != http.StatusOK {
		t.Errorf("/startupz after start = %d, want 200", code)
	}
	if code, body := status(t, base+"/readyz?verbose"); code != http.StatusOK {
		t.Errorf("/readyz after start = %d\n%s", code, body)
	}
	if code, body := status(t, "http://"+srv.Addr().String()+"/"); code != http.StatusOK || body != "ok" {
		t.Errorf("GET / = %d %q", code, body)
	}
	app.RequireStop()
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok || r.ExitCode != 0 || r.Reason == "" || len(r.Phases) == 0 {
		t.Errorf("report after stop = %+v (ok=%v)", r, ok)
	}
}

// An invalid budget fails fx.New with the fields named.
func TestWebBundleInvalidBudget(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Lifecycle.GracePeriod = 2 * time.Second
	cfg.Lifecycle.DrainDelay = 5 * time.Second
	app := fx.New(modules.Web(cfg), fx.NopLogger)
	err := app.Err()
	if !errors.Is(err, lifecycle.ErrBudget) {
		t.Fatalf("fx.New error = %v, want ErrBudget", err)
	}
	for _, want := range []string{"DrainDelay=5s", "GracePeriod=2s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
