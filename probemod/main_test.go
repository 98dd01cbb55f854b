package probemod_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait on an event in these tests; reaching it is a
// failure, not a timing.
const waitTimeout = 5 * time.Second

// client keeps no idle connection, so no transport goroutine outlives a test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// testLifecycle is a budget for tests: a short fixed drain, no signal
// handling.
var testLifecycle = lifecycle.Config{DrainDelay: 100 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true}

// newCoordinator returns a coordinator for cfg, stopped when the test ends
// ([stopNow]).
func newCoordinator(t *testing.T, cfg lifecycle.Config) *lifecycle.Coordinator {
	t.Helper()
	c, err := lifecycle.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNow(t, c) })
	return c
}

// stopNow runs what is left of c's timeline at once — a Stop whose ctx has
// ended cuts the drain short and brings the stop deadline forward — and
// waits for the report.
func stopNow(t *testing.T, c *lifecycle.Coordinator) {
	t.Helper()
	if err := hurry(c); err != nil {
		t.Errorf("waiting for the coordinator to stop: %v", err)
	}
}

// hurry is stopNow's work; its error says the report did not come within
// waitTimeout.
func hurry(c *lifecycle.Coordinator) error {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(ended) // returns at once
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.Stop(ctx)
}

// startAdmin starts an admin server on 127.0.0.1:0 and returns its base URL;
// it is stopped when the test ends (before the coordinator is).
func startAdmin(t *testing.T, c *lifecycle.Coordinator, cfg probemod.Config, checks []probemod.Check, opts ...probemod.Option) (*probemod.Admin, string) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	a, err := probemod.New(cfg, c, checks, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return a, "http://" + a.Addr().String()
}

// get sends method (GET if empty) to url with header pairs and returns the
// status and body.
func do(t *testing.T, method, url string, header ...string) (int, string) {
	t.Helper()
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, header...)
}

// lines joins want lines as a probe writes them.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func okCheck(name string) probemod.Check {
	return probemod.Check{Name: name, Check: func(context.Context) error { return nil }}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
