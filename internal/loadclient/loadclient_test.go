package loadclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSend(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
			return
		}
		_, _ = io.Copy(w, r.Body)
	}))
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()
	tests := []struct {
		name     string
		give     http.Header
		wantCode int
		wantErr  string
	}{
		{"with the header", http.Header{"Content-Type": {"application/json"}}, 200, ""},
		{"without", nil, 415, "answered 415 Unsupported Media Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Send(context.Background(), c, http.MethodPost, srv.URL, tt.give, []byte(`{"n":1}`))
			if a.Code != tt.wantCode || (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Fatalf("Send = %+v, %v; want %d, %q", a, err, tt.wantCode, tt.wantErr)
			}
			if err == nil && string(a.Body) != `{"n":1}` || a.Conns != 1 {
				t.Errorf("body %q on %d connections, want the echo on 1", a.Body, a.Conns)
			}
		})
	}
}

func TestEventReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      string
		wantTypes string
		wantEnd   error
		wantRetry time.Duration
	}{
		{"clean end", ": hi\ndata: 0\n\nevent: shutdown\nretry: 1000\ndata: bye\n\n", "message shutdown", io.EOF, time.Second},
		{"event without its empty line", "data: 0\n\nevent: shutdown\ndata: bye\n", "message", io.EOF, 0},
		{"cut mid-line", "data: 0\n\nda", "message", io.ErrUnexpectedEOF, 0},
		{"retry alone is no event", "retry: 5\n\ndata: x\r\n\r\n", "message", io.EOF, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewEventReader(strings.NewReader(tt.give))
			var types []string
			var err error
			for {
				var ev Event
				if ev, err = r.Next(); err != nil {
					break
				}
				types = append(types, ev.Type)
			}
			if got := strings.Join(types, " "); got != tt.wantTypes || !errors.Is(err, tt.wantEnd) || r.Retry() != tt.wantRetry {
				t.Errorf("events %q, end %v, retry %v; want %q, %v, %v", got, err, r.Retry(), tt.wantTypes, tt.wantEnd, tt.wantRetry)
			}
		})
	}
}

func TestCloseCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give      error
		wantCode  int
		wantClean bool
	}{
		{&websocket.CloseError{Code: 1001}, 1001, true},
		{&websocket.CloseError{Code: 1012}, 1012, true},
		{&websocket.CloseError{Code: 1011}, 1011, false},
		{io.ErrUnexpectedEOF, 1006, false},
	}
	for _, tt := range tests {
		if code := CloseCode(tt.give); code != tt.wantCode || CleanClose(code) != tt.wantClean {
			t.Errorf("CloseCode(%v) = %d (clean %v), want %d (%v)", tt.give, code, CleanClose(code), tt.wantCode, tt.wantClean)
		}
	}
}
