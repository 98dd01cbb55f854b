package modules

import (
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// TestConfig is a [Config] for the tests of an app built on [Web]: both
// servers on a free loopback port (127.0.0.1:0: read the real ones from
// httpmod.Server.Addr and probemod.Admin.Addr), signals left alone (the
// test ends the app, not a SIGTERM to the test binary), a short budget — a
// fixed 50ms drain in a 2s grace period, so that a test's stop takes
// milliseconds — and fx's events at debug, so that a test logger at info
// (zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))) shows drainfx's
// lines and not fx's. Change what a test needs:
//
//	cfg := modules.TestConfig()
//	cfg.Lifecycle.DrainDelay = time.Second
func TestConfig() Config {
	return Config{
		Lifecycle: lifecycle.Config{
			GracePeriod:     2 * time.Second,
			DrainDelay:      50 * time.Millisecond,
			DrainQuiet:      lifecycle.None,
			TeardownReserve: 500 * time.Millisecond,
			Margin:          200 * time.Millisecond,
			IgnoreSignals:   true,
		},
		HTTP:  httpmod.Config{Addr: "127.0.0.1:0"},
		Probe: probemod.Config{Addr: "127.0.0.1:0"},
	}
}
