package rollout

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests check how the clients of the load judge what they see, against
// plain httptest servers (no HAProxy).

func testLoad(t *testing.T, h http.Handler) *load {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{Bin: "x"}.withDefaults().Load
	cfg.Interval = 5 * time.Millisecond
	return newLoad(cfg, strings.TrimPrefix(srv.URL, "http://"), time.Now())
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
			body := []byte("hello")
			l.request(context.Background(), c, 0, rowNewEcho, http.MethodPost, "/echo", body, body)
			l.wait()
			if seen, lost := l.http[rowNewEcho].seen.Load(), l.http[rowNewEcho].lost.Load(); seen != 1 || lost != tt.wantLost {
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
