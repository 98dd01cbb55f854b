package wsmod_test

import (
	"net/http"
	"testing"

	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// The shutdown report counts how the sessions ended from D0 on: a session
// the client closed before D0 is not the shutdown's.
func TestReportCountsSessionEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{}, func(mux *http.ServeMux, r *wsmod.Registry) {
		mux.Handle("GET /ws", r.WebSocket(demo.Echo))
	})
	early := dial(t, f.srv.WSURL("/ws"), nil)
	_ = early.Close() // the peer goes away: aborted, before D0
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Stats().WebSocket.Aborted == 1 }, "the early session to end")

	const n = 3
	results := make(chan closeResult, n)
	for range n {
		conn := dial(t, f.srv.WSURL("/ws"), nil)
		go func() { results <- readUntilClose(conn); _ = conn.Close() }()
	}
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == n }, "the sessions to register")
	f.stop(t)
	for range n {
		<-results
	}
	r := report(t, f.c)
	if got, want := r.Sessions["websocket"], (lifecycle.SessionEnds{Clean: n}); got != want {
		t.Errorf("Report.Sessions[websocket] = %+v, want %+v (all: %v)", got, want, r.Sessions)
	}
	if got := r.Sessions["sse"]; got != (lifecycle.SessionEnds{}) {
		t.Errorf("Report.Sessions[sse] = %+v", got)
	}
}
