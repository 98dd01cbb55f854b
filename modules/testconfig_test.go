package modules_test

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

// TestConfig boots an app on free loopback ports, stops it within its
// short budget, and leaves signals alone.
func TestTestConfig(t *testing.T) {
	t.Parallel()
	var (
		srv   *httpmod.Server
		admin *probemod.Admin
		c     *lifecycle.Coordinator
	)
	app := fxtest.New(t, modules.Web(modules.TestConfig()),
		fx.Supply(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))),
		fx.Populate(&srv, &admin, &c))
	app.RequireStart()
	if !c.Plan().IgnoreSignals {
		t.Error("signals handled in a test config")
	}
	resp, err := http.Get("http://" + admin.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	if srv.Addr().String() == "127.0.0.1:0" {
		t.Error("no real port")
	}
	began := time.Now()
	app.RequireStop()
	t.Logf("stopped in %v", time.Since(began))
	if r := c.Telemetry().Report(); r.ExitCode != 0 {
		t.Errorf("report %+v", r)
	}
}
