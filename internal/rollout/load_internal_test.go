package rollout

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests check how the clients of the load judge what they see, against
// plain httptest servers (no HAProxy).

func testLoad(t *testing.T, h http.Handler) *load {
	t.Helper()
	return testLoadCfg(t, h, func(*Load) {})
}

// testLoadCfg is testLoad with the load's configuration changed by set
// before the defaults apply.
func testLoadCfg(t *testing.T, h http.Handler, set func(*Load)) *load {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{Bin: "x"}
	set(&cfg.Load)
	lc := cfg.withDefaults().Load
	lc.Interval = 5 * time.Millisecond
	return newLoad(lc, target{addr: strings.TrimPrefix(srv.URL, "http://")}, time.Now())
}

func TestSSESession(t *testing.T) {
	t.Parallel()
	stream := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, body)
		}
	}
	tests := []struct {
		name       string
		give       http.Handler
		wantLost   int64
		wantEvents int64
		wantErr    string
		wantRetry  time.Duration
	}{
		{"final event then end", stream("data: 0\n\ndata: 1\n\nevent: shutdown\nretry: 1000\ndata: bye\n\n"), 0, 2, "", time.Second},
		{"end without final event", stream("data: 0\n\n"), 1, 1, "without the final event", 0},
		{"final event not last", stream("event: shutdown\ndata: bye\n\ndata: 3\n\n"), 1, 1, "without the final event", 0},
		{"final event not terminated", stream("data: 0\n\nevent: shutdown\ndata: bye\n"), 1, 1, "without the final event", 0},
		{"connection cut", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: 0\n\n")
			http.NewResponseController(w).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no chunked terminator
			}
		}), 1, 1, "unexpected EOF", 0},
		{"refused", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		}), 1, 0, "503", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLoad(t, tt.give)
			c := &http.Client{Transport: l.transport(true)}
			var retry time.Duration
			l.sseSession(context.Background(), c, 0, &retry)
			l.wait()
			if got := l.sseLost.Load(); got != tt.wantLost {
				t.Errorf("lost %d, want %d (samples %q)", got, tt.wantLost, l.samples)
			}
			if got := l.sseEvents.Load(); got != tt.wantEvents {
				t.Errorf("events %d, want %d", got, tt.wantEvents)
			}
			if retry != tt.wantRetry {
				t.Errorf("retry %v, want %v", retry, tt.wantRetry)
			}
			if tt.wantErr != "" && (len(l.samples) != 1 || !strings.Contains(l.samples[0], tt.wantErr)) {
				t.Errorf("samples %q, want one naming %q", l.samples, tt.wantErr)
			}
			// An opened stream is noted with its connection's port, for the
			// proxy's log; a refused one is not.
			opens, wantOpens := l.sessionOpens(), 1
			if tt.wantEvents == 0 {
				wantOpens = 0
			}
			if len(opens) != wantOpens || (wantOpens == 1 && opens[0].port == 0) {
				t.Errorf("opens %+v, want %d with a port", opens, wantOpens)
			}
		})
	}
}

func TestWebSocketSession(t *testing.T) {
	t.Parallel()
	var up websocket.Upgrader
	// server answers the first message with reply (nil: echo), then ends the
	// session with end.
	server := func(reply []byte, end func(*websocket.Conn)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			mt, p, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if reply != nil {
				p = reply
			}
			if conn.WriteMessage(mt, p) != nil {
				return
			}
			end(conn)
		}
	}
	closeWith := func(code int) func(*websocket.Conn) {
		return func(conn *websocket.Conn) {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye"), time.Now().Add(time.Second))
			for { // until the client's close reply
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}
	}
	drop := func(conn *websocket.Conn) { conn.NetConn().Close() }
	tests := []struct {
		name     string
		give     http.Handler
		wantLost int64
		wantCode int
	}{
		{"1001 going away", server(nil, closeWith(websocket.CloseGoingAway)), 0, 1001},
		{"1012 service restart", server(nil, closeWith(websocket.CloseServiceRestart)), 0, 1012},
		{"1011 internal error", server(nil, closeWith(websocket.CloseInternalServerErr)), 1, 1011},
		{"connection dropped", server(nil, drop), 1, 1006},
		{"wrong echo", server([]byte("something else"), closeWith(websocket.CloseGoingAway)), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLoad(t, tt.give)
			l.wsURL = "ws" + strings.TrimPrefix(l.base, "http") + "/"
			if !l.wsSession(context.Background(), &websocket.Dialer{}, 0) {
				t.Fatalf("dial failed: %q", l.samples)
			}
			if got := l.wsLost.Load(); got != tt.wantLost {
				t.Errorf("lost %d, want %d (samples %q)", got, tt.wantLost, l.samples)
			}
			if got := l.wsCodes[tt.wantCode]; got != 1 {
				t.Errorf("codes %v, want one %d", l.wsCodes, tt.wantCode)
			}
			if opens := l.sessionOpens(); len(opens) != 1 || opens[0].port == 0 {
				t.Errorf("opens %+v, want one with its connection's port", opens)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		give     http.HandlerFunc
		wantLost int64
	}{
		{"echoed", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) }, 0},
		{"wrong body", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }, 1},
		{"500", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.Copy(w, r.Body)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLoad(t, tt.give)
			c := &http.Client{Transport: l.transport(false)}
			const row = 4 // new-conn POST /echo
			if l.rowNames[row] != "new-conn POST /echo" {
				t.Fatalf("rows %q", l.rowNames)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			l.request(context.Background(), c, 0, rng, 0, row, l.cfg.NewConnRequests[1])
			l.wait()
			if seen, lost := l.http[row].seen.Load(), l.http[row].lost.Load(); seen != 1 || lost != tt.wantLost {
				t.Errorf("seen %d lost %d, want 1 and %d (samples %q)", seen, lost, tt.wantLost, l.samples)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		want    Range
		wantErr bool
	}{
		{"0.5s-2.5s", Range{500 * time.Millisecond, 2500 * time.Millisecond}, false},
		{"4s - 6s", Range{4 * time.Second, 6 * time.Second}, false},
		{"3s", Range{3 * time.Second, 3 * time.Second}, false},
		{"6s-4s", Range{}, true},
		{"soon", Range{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParsePreStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		want    PreStop
		wantErr bool
	}{
		{"http", PreStop{Kind: PreStopHTTP}, false},
		{"none", PreStop{Kind: PreStopNone}, false},
		{"sleep=3s", PreStop{Kind: PreStopSleep, Sleep: 3 * time.Second}, false},
		{"sleep 5s", PreStop{Kind: PreStopSleep, Sleep: 5 * time.Second}, false},
		{"sleep", PreStop{}, true},
		{"exec", PreStop{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePreStop(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePreStop(%q) = %v, %v; want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	body := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(body, []byte(`{"item":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give    string
		want    string // method, path, body
		wantErr string
	}{
		{"GET /", "GET / ", ""},
		{"post /orders @" + body, `POST /orders {"item":1}`, ""},
		{"GET", "", "want METHOD PATH"},
		{"GET orders", "", "want METHOD PATH"},
		{"POST /orders order.json", "", "want METHOD PATH"},
		{"POST /orders @/nonexistent", "", "no such file"},
	}
	for _, tt := range tests {
		r, err := ParseRequest(tt.give)
		if got := r.Method + " " + r.Path + " " + string(r.Body); err == nil && got != tt.want || err != nil && (tt.wantErr == "" || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ParseRequest(%q) = %q, %v; want %q, %q", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

// Client counts: none set is 4 of each kind; once one is set, the others
// are as given.
func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give Load
		want [4]int
	}{
		{Load{}, [4]int{4, 4, 4, 4}},
		{Load{NewConn: 2}, [4]int{0, 2, 0, 0}},
	}
	for _, tt := range tests {
		l := Config{Bin: "x", Load: tt.give}.withDefaults().Load
		if got := [4]int{l.KeepAlive, l.NewConn, l.WebSocket, l.SSE}; got != tt.want {
			t.Errorf("%+v: counts %v, want %v", tt.give, got, tt.want)
		}
	}
}

// A request of the user's own: its headers are sent, any 2xx answer is
// right, and the row is named after it.
func TestUserRequest(t *testing.T) {
	t.Parallel()
	l := testLoadCfg(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Tenant") != "a" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}), func(c *Load) {
		c.Requests = []Request{{Method: http.MethodPost, Path: "/orders?x=1", Body: []byte("{}"), Header: http.Header{"X-Tenant": {"a"}}}}
		c.NewConnRequests = nil
		c.Header = http.Header{"Content-Type": {"application/json"}}
	})
	c := &http.Client{Transport: l.transport(true)}
	l.request(context.Background(), c, 0, rand.New(rand.NewPCG(1, 2)), 0, 0, l.cfg.Requests[0])
	l.wait()
	if rows := l.rows(); rows[0].Name != "keep-alive POST /orders" || rows[0].Seen != 1 || rows[0].Lost != 0 {
		t.Errorf("row %+v, want keep-alive POST /orders seen 1, lost 0 (samples %q)", rows[0], l.samples)
	}
}
