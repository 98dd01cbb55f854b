package main_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/proctest"
)

var bin string

func TestMain(m *testing.M) { proctest.Main(m, ".", &bin) }

func start(t *testing.T, env ...string) proctest.Service {
	t.Helper()
	// A fixed drain: these tests time the drain to the DrainDelay they set
	// (the adaptive drain, on by default, is timed by the rollout check).
	return proctest.StartService(t, bin, append([]string{"SHUTDOWN_DRAIN_QUIET=0s"}, env...)...)
}

func TestSIGTERMDrainsThenExits(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=2s")
	if resp, body := proctest.Get(t, s.URL("/")); resp.StatusCode != 200 || body != "ok" || resp.Close {
		t.Fatalf("before drain: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	sent := s.Signal(t, syscall.SIGTERM)
	s.WaitHTTP(t, s.AdminURL("/readyz"), http.StatusServiceUnavailable, 200*time.Millisecond)
	if resp, _ := proctest.Get(t, s.AdminURL("/livez")); resp.StatusCode != 200 {
		t.Errorf("/livez during drain = %d, want 200", resp.StatusCode)
	}
	resp, body := proctest.Get(t, s.URL("/"))
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("GET / during drain = %d %q, want 200 ok", resp.StatusCode, body)
	}
	if !resp.Close { // net/http sets Close from "Connection: close" and drops the header
		t.Error("GET / during drain: no Connection: close")
	}
	code, at := s.Wait(t, 10*time.Second)
	took := at.Sub(sent)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took < 2*time.Second || took > 2600*time.Millisecond {
		t.Errorf("SIGTERM→exit %v, want between 2.0s and 2.6s", took)
	}
	if !strings.Contains(s.Output(), `"shutdown report"`) {
		t.Errorf("no shutdown report in the log:\n%s", s.Output())
	}
}

func TestPrestopThenSIGTERM(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=1s")
	began := time.Now()
	resp, body := proctest.Get(t, s.AdminURL("/prestop"))
	waited := time.Since(began)
	if resp.StatusCode != 200 || !strings.Contains(body, `"reason":"prestop"`) {
		t.Fatalf("/prestop = %d %s", resp.StatusCode, body)
	}
	if waited < time.Second {
		t.Errorf("/prestop answered after %v, before the 1s drain delay", waited)
	}
	sent := s.Signal(t, syscall.SIGTERM)
	code, at := s.Wait(t, 10*time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took := at.Sub(sent); took > 500*time.Millisecond {
		t.Errorf("SIGTERM after preStop → exit took %v, want ≤ 0.5s (no second drain)", took)
	}
}

// A preStop call that no SIGTERM follows (someone else's call, or a
// kubelet that gave up) does not leave the pod unready for good: at
// GracePeriod after D0 the service stops by itself, with a whole stop
// phase, exits 0 (Kubernetes restarts the container), and its report says
// why.
func TestPrestopWithoutSIGTERMStopsByItself(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s := start(t, "SHUTDOWN_GRACE_PERIOD=2s", "SHUTDOWN_DRAIN_DELAY=200ms", "SHUTDOWN_TEARDOWN_RESERVE=0s")
	began := time.Now()
	if resp, _ := proctest.Get(t, s.AdminURL("/prestop")); resp.StatusCode != http.StatusOK {
		t.Fatalf("/prestop = %d, want 200 after the drain", resp.StatusCode)
	}
	if resp, _ := proctest.Get(t, s.AdminURL("/readyz")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz after preStop = %d, want 503", resp.StatusCode)
	}
	code, at := s.Wait(t, 10*time.Second)
	took := at.Sub(began)
	t.Logf("preStop, no SIGTERM → exit %d after %v", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took < grace {
		t.Errorf("exited %v after preStop, before the grace period %v: a slow SIGTERM would have found it gone", took, grace)
	}
	for _, want := range []string{"nothing asked for the stop within the grace period", `"stopReason":"no stop followed the drain"`} {
		if !strings.Contains(s.Output(), want) {
			t.Errorf("no %q in the output", want)
		}
	}
}

func TestPrestopToken(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=200ms", "PRESTOP_TOKEN=s3cret")
	tests := []struct {
		name   string
		header []string
	}{
		{"missing", nil},
		{"wrong", []string{"X-Prestop-Token", "guess"}},
	}
	for _, tt := range tests {
		if resp, _ := proctest.Get(t, s.AdminURL("/prestop"), tt.header...); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: /prestop = %d, want 401", tt.name, resp.StatusCode)
		}
		if resp, _ := proctest.Get(t, s.AdminURL("/readyz")); resp.StatusCode != 200 {
			t.Errorf("%s token: /readyz = %d after a refused preStop, want 200", tt.name, resp.StatusCode)
		}
	}
	if strings.Contains(s.Output(), "s3cret") {
		t.Error("the token appears in the log")
	}
	if resp, _ := proctest.Get(t, s.AdminURL("/prestop"), "X-Prestop-Token", "s3cret"); resp.StatusCode != 200 {
		t.Errorf("right token: /prestop = %d, want 200", resp.StatusCode)
	}
	s.Signal(t, syscall.SIGTERM)
	if code, _ := s.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=10s")
	s.Signal(t, syscall.SIGTERM)
	s.WaitHTTP(t, s.AdminURL("/readyz"), http.StatusServiceUnavailable, time.Second)
	sent := s.Signal(t, syscall.SIGTERM)
	code, at := s.Wait(t, 5*time.Second)
	if code != 143 {
		t.Errorf("exit code %d, want 143", code)
	}
	if took := at.Sub(sent); took > time.Second {
		t.Errorf("second SIGTERM → exit took %v, want at once", took)
	}
	if !strings.Contains(s.Output(), "second signal") {
		t.Errorf("the second signal is not logged:\n%s", s.Output())
	}
}

func TestBadConfigExits1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"not a duration", []string{"SHUTDOWN_DRAIN_DELAY=abc"}, `SHUTDOWN_DRAIN_DELAY="abc"`},
		{"drain longer than grace", []string{"SHUTDOWN_DRAIN_DELAY=40s"}, `SHUTDOWN_DRAIN_DELAY="40s"`},
		{"negative", []string{"SHUTDOWN_GRACE_PERIOD=-3s"}, `SHUTDOWN_GRACE_PERIOD="-3s"`},
		{"bad port", []string{"PORT=http"}, `PORT="http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := proctest.Start(t, bin, tt.give...)
			code, _ := p.Wait(t, 5*time.Second)
			out := strings.TrimSpace(p.Output())
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out, tt.want) || strings.Count(out, "\n") != 0 {
				t.Errorf("output %q, want one line naming %s", out, tt.want)
			}
		})
	}
}

func TestBusyPortExits1(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	began := time.Now()
	p := proctest.Start(t, bin, fmt.Sprintf("PORT=%d", busy), fmt.Sprintf("ADMIN_PORT=%d", proctest.FreePort(t)))
	code, at := p.Wait(t, 5*time.Second)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if took := at.Sub(began); took > time.Second {
		t.Errorf("busy port → exit took %v, want ≤ 1s", took)
	}
	if want := fmt.Sprintf(":%d", busy); !strings.Contains(p.Output(), want) || !strings.Contains(p.Output(), "address already in use") {
		t.Errorf("output does not name the port %s and the cause:\n%s", want, p.Output())
	}
}

// PORT = ADMIN_PORT is a bad configuration, not a busy port: one line
// naming both variables and exit 1 at once, whatever the drain delay.
func TestSamePortExits1(t *testing.T) {
	t.Parallel()
	port := proctest.FreePort(t)
	began := time.Now()
	p := proctest.Start(t, bin, fmt.Sprintf("PORT=%d", port), fmt.Sprintf("ADMIN_PORT=%d", port), "SHUTDOWN_DRAIN_DELAY=12s")
	code, at := p.Wait(t, 20*time.Second)
	took := at.Sub(began)
	t.Logf("PORT = ADMIN_PORT → exit %d after %v", code, took.Round(time.Millisecond))
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if took > 2*time.Second {
		t.Errorf("PORT = ADMIN_PORT → exit took %v, want at once", took)
	}
	out := strings.TrimSpace(p.Output())
	for _, want := range []string{fmt.Sprintf("PORT=\"%d\"", port), fmt.Sprintf("ADMIN_PORT=\"%d\"", port)} {
		if !strings.Contains(out, want) || strings.Count(out, "\n") != 0 {
			t.Errorf("output %q, want one line naming %s", out, want)
		}
	}
}

// A busy admin port fails the start after the public server has started:
// exit 1 at once with the address named, in a few lines, not after the
// drain delay: an app that never became ready has nothing to drain, so the
// public server's OnStop on the rollback does not wait for one.
func TestBusyAdminPortExits1(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	began := time.Now()
	p := proctest.Start(t, bin, fmt.Sprintf("PORT=%d", proctest.FreePort(t)), fmt.Sprintf("ADMIN_PORT=%d", busy),
		"SHUTDOWN_DRAIN_DELAY=12s")
	code, at := p.Wait(t, 30*time.Second)
	took := at.Sub(began)
	out := strings.TrimSpace(p.Output())
	lines := strings.Count(out, "\n") + 1
	t.Logf("busy ADMIN_PORT → exit %d after %v, %d lines", code, took.Round(time.Millisecond), lines)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := fmt.Sprintf(":%d", busy); !strings.Contains(out, want) || !strings.Contains(out, "address already in use") {
		t.Errorf("output does not name the address %s and the cause:\n%s", want, out)
	}
	if lines > 15 {
		t.Errorf("%d lines of output, want ≤ 15:\n%s", lines, out)
	}
	if took > 2*time.Second {
		t.Errorf("busy ADMIN_PORT → exit took %v, want ≤ 2s", took)
	}
}
