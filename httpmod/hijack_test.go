package httpmod_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// A WebSocket handler written with gorilla directly, not through wsmod:
// Shutdown neither waits for its hijacked connection nor closes it. The
// stop participant waits for it until the stop deadline, then closes it,
// counts it as cut ("hijacked") and says to use wsmod; the report is not
// clean. A hijacked connection that its handler closes in time costs
// nothing.
func TestHijackedConnectionsCutAtTheStopDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveQuit bool // the handler ends its session when the stop phase begins
		wantCut  int64
	}{
		{"left open", false, 1},
		{"closed by its handler", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.WarnLevel)
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: 2 * time.Second, DrainDelay: lifecycle.None,
				DrainQuiet: lifecycle.None, TeardownReserve: 500 * time.Millisecond, Margin: 100 * time.Millisecond,
				IgnoreSignals: true})
			if err != nil {
				t.Fatal(err)
			}
			var up websocket.Upgrader
			mux := http.NewServeMux()
			mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
				conn, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer conn.Close()
				if tt.giveQuit {
					go func() {
						<-c.Reached(lifecycle.StateStopping)
						_ = conn.WriteControl(websocket.CloseMessage,
							websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
						_ = conn.Close()
					}()
				}
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
				}
			})
			srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, mux, httpmod.WithLogger(zap.New(core)))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.MarkStarted()
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			read := make(chan error, 1)
			go func() {
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						read <- err
						return
					}
				}
			}()

			if err := c.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := c.Telemetry().Report()
			if got := r.Cut[httpmod.CutHijacked]; got != tt.wantCut || r.ExitCode == 0 != (tt.wantCut == 0) {
				t.Errorf("cut %v, clean %v; want %d hijacked", r.Cut, r.ExitCode == 0, tt.wantCut)
			}
			warned := logs.FilterMessageSnippet("hijacked connections cut").Len() > 0
			if warned != (tt.wantCut > 0) {
				t.Errorf("warning logged %v, want %v", warned, tt.wantCut > 0)
			}
			select {
			case err := <-read:
				if tt.wantCut == 0 && !websocket.IsCloseError(err, websocket.CloseGoingAway) {
					t.Errorf("client read %v, want close 1001", err)
				}
				if tt.wantCut > 0 && !strings.Contains(err.Error(), "1006") && !strings.Contains(err.Error(), "EOF") {
					t.Errorf("client read %v, want the connection cut", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("the client's connection is still open after the stop")
			}
		})
	}
}

// A WebSocket session of wsmod's registry is the registry's: at the stop
// deadline the registry force-closes it and counts it as a cut session.
// httpmod, which tracks every hijacked connection, must neither count it
// again as "hijacked" nor close it first (the registry would then see the
// session end by itself and count it as aborted, not forced), nor count
// its handler, still running at the deadline, as a request cut when a
// plain request holds Shutdown to the deadline: each session is counted
// once, under "sessions", and no warning blames a handler outside wsmod.
// The clients never read, so they never answer the registry's close
// frame, and the stop phase (1.4 s) ends before the registry's
// CloseTimeout (5 s): both force-close at the same deadline.
func TestSessionsOfTheRegistryAreCountedOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveStuck bool // a plain request is stuck in its handler too
		wantReqs  int64
	}{
		{"sessions only", false, 0},
		{"and a stuck request", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.WarnLevel)
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: 2 * time.Second, DrainDelay: lifecycle.None,
				DrainQuiet: lifecycle.None, TeardownReserve: 500 * time.Millisecond, Margin: 100 * time.Millisecond,
				IgnoreSignals: true})
			if err != nil {
				t.Fatal(err)
			}
			reg, err := wsmod.New(wsmod.Config{}, c)
			if err != nil {
				t.Fatal(err)
			}
			st := newStuck()
			mux := st.mux()
			mux.Handle("GET /ws", reg.WebSocket(func(_ context.Context, conn wsmod.Conn) error {
				for { // reads until the connection ends; ignores its context
					if _, _, err := conn.ReadMessage(); err != nil {
						return err
					}
				}
			}))
			srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, mux, httpmod.WithLogger(zap.New(core)))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.MarkStarted()
			const n = 25
			for range n {
				ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close() // never read: the close frame is never answered
			}
			waittest.Eventually(t, waitTimeout, func() bool { return reg.Len(wsmod.KindWebSocket) == n }, "the sessions to register")
			if got := srv.InFlight(); got != 0 {
				t.Errorf("InFlight = %d with %d sessions open, want 0: a session is not a request", got, n)
			}
			if tt.giveStuck {
				clientErr := st.request(t, srv)
				defer func() { <-clientErr }()
				go func() { <-c.Reached(lifecycle.StateStopped); close(st.release) }()
			}

			if err := c.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := c.Telemetry().Report()
			if r.Cut[wsmod.CutSessions] != n || r.Cut[httpmod.CutHijacked] != 0 || r.Cut[httpmod.CutRequests] != tt.wantReqs {
				t.Errorf("cut %v, want %d sessions, %d requests and no hijacked", r.Cut, n, tt.wantReqs)
			}
			if got, want := r.Sessions["websocket"], (lifecycle.SessionEnds{Forced: n}); got != want {
				t.Errorf("websocket sessions ended %+v, want %+v", got, want)
			}
			if logs.FilterMessageSnippet("hijacked connections cut").Len() > 0 {
				t.Error("warned of hijacked connections cut, though every one was a session of wsmod's registry")
			}
		})
	}
}
