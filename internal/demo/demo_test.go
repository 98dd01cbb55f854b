package demo_test

import (
	"bufio"
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

	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it is a failure.
const waitTimeout = 10 * time.Second

// The route contract's sessions, on a registry: the echo sends back every
// message with its type, the stream counts from 0, and the stop phase ends
// both cleanly (1001; the final event, then the end of the body).
func TestEchoAndTicks(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	r, err := wsmod.New(wsmod.Config{}, c)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", r.WebSocket(demo.Echo))
	mux.Handle("GET /events", r.SSE(demo.Ticks(time.Millisecond)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	for _, tt := range []struct {
		give int
		data string
	}{{websocket.TextMessage, "ping"}, {websocket.BinaryMessage, "\x00\x01"}} {
		if err := conn.WriteMessage(tt.give, []byte(tt.data)); err != nil {
			t.Fatal(err)
		}
		if mt, p, err := conn.ReadMessage(); err != nil || mt != tt.give || string(p) != tt.data {
			t.Errorf("echo of %d %q = %d %q, %v", tt.give, tt.data, mt, p, err)
		}
	}

	events, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	body := bufio.NewReader(events.Body)
	want := "data: 0\n\ndata: 1\n\ndata: 2\n\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(body, got); err != nil || string(got) != want {
		t.Fatalf("first events = %q, %v; want %q", got, err, want)
	}

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		stopped <- c.Stop(ctx)
	}()
	var ce *websocket.CloseError
	if _, _, err := conn.ReadMessage(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("WebSocket ended with %v, want close 1001", err)
	}
	rest, err := io.ReadAll(body)
	if err != nil || !strings.Contains(string(rest), "event: shutdown\n") {
		t.Errorf("stream ended with %v after %q, want the final event and the end of the body", err, rest)
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "the stop"); err != nil {
		t.Fatal(err)
	}
	if rep := c.Telemetry().Report(); rep.ExitCode != 0 {
		t.Errorf("the stop cut work: %+v", rep)
	}
}
