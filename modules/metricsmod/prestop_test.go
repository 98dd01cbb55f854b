package metricsmod_test

import (
	"net/http"
	"sync"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/probemod"
)

// 300 preStop calls with a wrong token on the admin server: all refused,
// all counted in drainfx_prestop_refused_total, a handful of WARN lines.
func TestPrestopRefusedCounted(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	var admin *probemod.Admin
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(
			lifecycle.Config{PrestopToken: "s3cret", IgnoreSignals: true},
			probemod.Config{Addr: "127.0.0.1:0"},
			zap.New(core),
		),
		lifecycle.Module, probemod.Module, metricsmod.Module,
		fx.Populate(&admin),
	)
	app.RequireStart()
	base := "http://" + admin.Addr().String()

	const calls = 300
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			for range calls / 10 {
				req, err := http.NewRequest(http.MethodPost, base+"/prestop", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set(probemod.PrestopHeader, "guess")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("wrong token: %d, want 401", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()

	f := scrape(t, base+"/metrics")
	if v, ok := f.value("drainfx_prestop_refused_total"); !ok || v != calls {
		t.Errorf("drainfx_prestop_refused_total = %v (present %v), want %d", v, ok, calls)
	}
	if got := f.state(t); got != "starting" { // no bundle here to mark it started
		t.Errorf("state %s after refused calls, want starting", got)
	}
	// One line per 10 s: these calls take well
	// under that, but a slow machine may see a second line.
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n < 1 || n > 3 {
		t.Errorf("%d WARN lines for %d refused calls, want 1 to 3", n, calls)
	}
	app.RequireStop()
}
