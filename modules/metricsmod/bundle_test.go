package metricsmod_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/probemod"
)

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d\n%s", url, resp.StatusCode, b)
	}
	return string(b)
}

// Module beside the modules.Web bundle serves /metrics on the bundle's
// admin server, from the start to the drain (here begun by fx.Shutdowner).
func TestWebBundleMetrics(t *testing.T) {
	t.Parallel()
	var (
		admin *probemod.Admin
		sd    fx.Shutdowner
	)
	app := fxtest.New(t,
		modules.Web(modules.Config{
			// A fixed drain of 50ms: the drain's timing is not the point.
			Lifecycle: lifecycle.Config{DrainDelay: 50 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true},
			HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
			Probe:     probemod.Config{Addr: "127.0.0.1:0"},
		}),
		metricsmod.Module,
		fx.Populate(&admin, &sd),
	)
	app.RequireStart()
	url := "http://" + admin.Addr().String() + "/metrics"
	text := scrapeText(t, url)
	for _, want := range []string{
		`drainfx_state{state="serving"} 1`,
		`drainfx_inflight_requests 0`,
		`drainfx_cut_total{kind="requests"} 0`,
		`drainfx_phase_planned_seconds{phase="draining"} 0.05`, // the fixed drain
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %q:\n%s", want, text)
		}
	}

	if err := sd.Shutdown(); err != nil {
		t.Fatal(err)
	}
	text = scrapeText(t, url)
	for _, want := range []string{`drainfx_state{state="draining"} 1`, `drainfx_drain_start_timestamp_seconds{reason="shutdowner"} `} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics after Shutdown has no %q:\n%s", want, text)
		}
	}
	app.RequireStop()
}
