package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/drainfx/drainfx/internal/proctest"
)

var bin string

func TestMain(m *testing.M) { proctest.Main(m, ".", &bin) }

// The route contract of examples/service, on the real process.
func TestRoutes(t *testing.T) {
	t.Parallel()
	s := proctest.StartService(t, bin, "SHUTDOWN_DRAIN_DELAY=0s", "SHUTDOWN_DRAIN_QUIET=0s")
	tests := []struct {
		name       string
		giveMethod string
		giveURL    string
		giveBody   string
		wantStatus int
		wantBody   string // "" = not checked
	}{
		{"root", "GET", s.URL("/"), "", 200, "ok"},
		{"not found", "GET", s.URL("/nope"), "", 404, ""},
		{"echo", "POST", s.URL("/echo"), "hello, drainfx", 200, "hello, drainfx"},
		{"echo is POST", "GET", s.URL("/echo"), "", 405, ""},
		{"slow", "GET", s.URL("/slow?ms=50"), "", 200, "ok"},
		{"slow bad", "GET", s.URL("/slow?ms=abc"), "", 400, ""},
		{"slow overflow", "GET", s.URL("/slow?ms=9223372036854775807"), "", 400, ""},
		{"livez", "GET", s.AdminURL("/livez"), "", 200, ""},
		{"readyz", "GET", s.AdminURL("/readyz"), "", 200, ""},
		{"startupz", "GET", s.AdminURL("/startupz"), "", 200, ""},
		{"metrics", "GET", s.AdminURL("/metrics"), "", 200, ""},
		{"not public", "GET", s.URL("/readyz"), "", 404, ""},
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.giveMethod, tt.giveURL, strings.NewReader(tt.giveBody))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && string(b) != tt.wantBody) {
			t.Errorf("%s: %s %s = %d %q, want %d %q", tt.name, tt.giveMethod, tt.giveURL, resp.StatusCode, b, tt.wantStatus, tt.wantBody)
		}
	}

	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(s.URL("/ws"), "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "ping" {
		t.Errorf("websocket echo = %q, %v", p, err)
	}

	resp, err := c.Get(s.URL("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("data: 0\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: 0\n\n" {
		t.Errorf("first event %q, %v", first, err)
	}
}

// A bad value exits 1 with one line naming the variable.
func TestBadEnvExits1(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, bin, "SHUTDOWN_DRAIN_DELAY=soon")
	code, _ := p.Wait(t, 10*time.Second)
	out := strings.TrimSpace(p.Output())
	if code != 1 || !strings.Contains(out, `SHUTDOWN_DRAIN_DELAY="soon"`) || strings.Count(out, "\n") != 0 {
		t.Errorf("exit %d, output %q; want 1 and one line naming the variable", code, out)
	}
}
