package probemod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

func TestPrestopToken(t *testing.T) {
	t.Parallel()
	cfg := testLifecycle
	cfg.PrestopToken = "s3cret"
	c := newCoordinator(t, cfg)
	c.MarkStarted()
	_, url := startAdmin(t, c, probemod.Config{}, nil)

	tests := []struct {
		name      string
		method    string
		header    []string
		wantCode  int
		wantReady int
	}{
		{"missing token", http.MethodGet, nil, 401, 200},
		{"wrong token", http.MethodPost, []string{probemod.PrestopHeader, "guess"}, 401, 200},
		{"wrong method", http.MethodPut, []string{probemod.PrestopHeader, "s3cret"}, 405, 200},
		{"right token", http.MethodPost, []string{probemod.PrestopHeader, "s3cret"}, 200, 503},
		{"again, GET", http.MethodGet, []string{probemod.PrestopHeader, "s3cret"}, 200, 503},
	}
	for _, tt := range tests {
		code, body := do(t, tt.method, url+"/prestop", tt.header...)
		if code != tt.wantCode {
			t.Errorf("%s: %s /prestop = %d %s, want %d", tt.name, tt.method, code, body, tt.wantCode)
		}
		if code == 200 && !strings.Contains(body, `"reason":"prestop"`) {
			t.Errorf("%s: /prestop body %s, want the drain's reason", tt.name, body)
		}
		if code, _ := get(t, url+"/readyz"); code != tt.wantReady {
			t.Errorf("%s: /readyz = %d after the call, want %d", tt.name, code, tt.wantReady)
		}
	}
	select {
	case <-c.Reached(lifecycle.StateDrained): // the right token answered once the drain was over
	default:
		t.Error("/prestop answered 200 before the drain ended")
	}
}

func TestStopEndsAPrestopStillWaiting(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, lifecycle.Config{DrainDelay: time.Hour, GracePeriod: 2 * time.Hour, IgnoreSignals: true})
	c.MarkStarted()
	a, err := probemod.New(probemod.Config{Addr: "127.0.0.1:0"}, c, nil, probemod.WithStopTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	called := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + a.Addr().String() + "/prestop")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		called <- err
	}()
	<-c.Reached(lifecycle.StateDraining) // the preStop call is in, waiting for an hour's drain

	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Stop = %v, want nil (the preStop handler returned when its connection closed)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hangs on a preStop call in flight")
	}
	if err := <-called; err == nil {
		t.Error("the preStop call got an answer, want its connection closed")
	}
}

// Addr is a net.Addr, as httpmod's Server.Addr: nil before Start, then
// the listener's address with the port the kernel chose.
func TestAdminAddr(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	a, err := probemod.New(probemod.Config{Addr: "127.0.0.1:0"}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var addr net.Addr = a.Addr()
	if addr != nil {
		t.Errorf("Addr before Start = %v, want nil", addr)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	tcp, ok := a.Addr().(*net.TCPAddr)
	if !ok || tcp.Port == 0 || !tcp.IP.IsLoopback() {
		t.Fatalf("Addr after Start = %#v, want 127.0.0.1 with the port chosen", a.Addr())
	}
	conn, err := net.Dial(tcp.Network(), tcp.String())
	if err != nil {
		t.Fatalf("dial Addr: %v", err)
	}
	conn.Close()
}

func TestBusyPortFailsStart(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	c := newCoordinator(t, testLifecycle)
	a, err := probemod.New(probemod.Config{Addr: addr}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("listen %q", addr)) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Start on a busy port = %v, want it to name %s and EADDRINUSE", err, addr)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start = %v", err)
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "drain_requests_cut_total 0\n")
	})
	item := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.PathValue("id"))
	})
	_, url := startAdmin(t, c, probemod.Config{}, nil,
		probemod.WithHandler("GET /metrics", metrics),
		probemod.WithRoutes(probemod.AdminRoute{Pattern: "/items/{id}", Handler: item}))
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{http.MethodGet, "/metrics", 200, "drain_requests_cut_total 0\n"},
		{http.MethodHead, "/metrics", 200, ""},
		{http.MethodPost, "/metrics", 405, "Method Not Allowed\n"},
		{http.MethodGet, "/items/7", 200, "GET 7"},
		{http.MethodDelete, "/items/7", 200, "DELETE 7"}, // no method in the pattern: every method
		{http.MethodGet, "/nothing", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		if code, body := do(t, tt.method, url+tt.path); code != tt.wantCode || body != tt.wantBody {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}
}

func TestAdminRoutesValidated(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	h := http.NotFoundHandler()
	tests := []struct {
		name string
		give []probemod.AdminRoute
		want string
	}{
		{"probe path", []probemod.AdminRoute{{Pattern: "GET /readyz", Handler: h}}, `path "/readyz" is taken`},
		{"probe path, any method", []probemod.AdminRoute{{Pattern: "/startupz", Handler: h}}, `path "/startupz" is taken`},
		{"prestop", []probemod.AdminRoute{{Pattern: "POST /prestop", Handler: h}}, `path "/prestop" is taken`},
		{"no slash", []probemod.AdminRoute{{Pattern: "GET metrics", Handler: h}}, `Pattern="GET metrics": the path does not start with /`},
		{"host", []probemod.AdminRoute{{Pattern: "example.com/metrics", Handler: h}}, `the path does not start with /`},
		{"empty", []probemod.AdminRoute{{Handler: h}}, `Pattern="" is not "[METHOD ]/path"`},
		{"three fields", []probemod.AdminRoute{{Pattern: "GET /a /b", Handler: h}}, `Pattern="GET /a /b" is not`},
		{"twice", []probemod.AdminRoute{{Pattern: "GET /metrics", Handler: h}, {Pattern: "GET  /metrics", Handler: h}}, `"GET /metrics" registered twice`},
		{"conflict", []probemod.AdminRoute{{Pattern: "GET /{name}", Handler: h}}, `admin route "GET /{name}": pattern "GET /{name}"`},
		{"bad wildcard", []probemod.AdminRoute{{Pattern: "/items/{id", Handler: h}}, `admin route "/items/{id": `},
		{"no handler", []probemod.AdminRoute{{Pattern: "GET /metrics"}}, `"GET /metrics": Handler is nil`},
	}
	for _, tt := range tests {
		_, err := probemod.New(probemod.Config{}, c, nil, probemod.WithRoutes(tt.give...))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, probemod.ErrConfig) {
			t.Errorf("%s: %v, want an ErrConfig naming %s", tt.name, err, tt.want)
		}
	}
}

func TestStartTwiceFails(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	a, _ := startAdmin(t, c, probemod.Config{}, nil)
	if err := a.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
}

// The admin server bounds a request header to 64 KiB, not net/http's 1 MB:
// a header of 100 KiB gets 431, one of 32 KiB is served.
func TestAdminBoundsHeaders(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	_, url := startAdmin(t, c, probemod.Config{}, nil)
	tests := []struct {
		give int // bytes of one header's value
		want int
	}{
		{32 << 10, http.StatusOK},
		{100 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		if code, _ := get(t, url+"/livez", "X-Big", strings.Repeat("a", tt.give)); code != tt.want {
			t.Errorf("/livez with a %d KiB header = %d, want %d", tt.give>>10, code, tt.want)
		}
	}
}
