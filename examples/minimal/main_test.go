package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/proctest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minimal")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if bin, err = build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func build(dir string) (string, error) { return proctest.BuildErr(".", dir) }

type service struct {
	*proctest.Proc
	port, admin int
}

func start(t *testing.T, env ...string) service {
	t.Helper()
	s := service{port: proctest.FreePort(t), admin: proctest.FreePort(t)}
	env = append([]string{fmt.Sprintf("PORT=%d", s.port), fmt.Sprintf("ADMIN_PORT=%d", s.admin)}, env...)
	s.Proc = proctest.Start(t, bin, env...)
	s.WaitHTTP(t, proctest.URL(s.admin, "/readyz"), http.StatusOK, 10*time.Second)
	return s
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestSIGTERMDrainsThenExits(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=2s")
	if resp, body := get(t, proctest.URL(s.port, "/")); resp.StatusCode != 200 || body != "ok" || resp.Close {
		t.Fatalf("before drain: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	sent := s.Signal(t, syscall.SIGTERM)
	s.WaitHTTP(t, proctest.URL(s.admin, "/readyz"), http.StatusServiceUnavailable, 200*time.Millisecond)
	if resp, _ := get(t, proctest.URL(s.admin, "/livez")); resp.StatusCode != 200 {
		t.Errorf("/livez during drain = %d, want 200", resp.StatusCode)
	}
	resp, body := get(t, proctest.URL(s.port, "/"))
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
	resp, body := get(t, proctest.URL(s.admin, "/prestop"))
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
		if resp, _ := get(t, proctest.URL(s.admin, "/prestop"), tt.header...); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: /prestop = %d, want 401", tt.name, resp.StatusCode)
		}
		if resp, _ := get(t, proctest.URL(s.admin, "/readyz")); resp.StatusCode != 200 {
			t.Errorf("%s token: /readyz = %d after a refused preStop, want 200", tt.name, resp.StatusCode)
		}
	}
	if strings.Contains(s.Output(), "s3cret") {
		t.Error("the token appears in the log")
	}
	if resp, _ := get(t, proctest.URL(s.admin, "/prestop"), "X-Prestop-Token", "s3cret"); resp.StatusCode != 200 {
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
	s.WaitHTTP(t, proctest.URL(s.admin, "/readyz"), http.StatusServiceUnavailable, time.Second)
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
		{"drain longer than grace", []string{"SHUTDOWN_DRAIN_DELAY=40s"}, "SHUTDOWN_DRAIN_DELAY=40s"},
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
