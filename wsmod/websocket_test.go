package wsmod_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// The main case: 200 clients, the app stopped through fxtest; every
// client reads 1001 and every handler returns.
func TestWebSocketStopThroughFx(t *testing.T) {
	const clients = 200
	var (
		r        *wsmod.Registry
		c        *lifecycle.Coordinator
		srv      *testServer
		returned atomic.Int64
	)
	handler := func(ctx context.Context, conn wsmod.Conn) error {
		defer returned.Add(1)
		return demo.Echo(ctx, conn)
	}
	app := fxtest.New(t,
		fx.NopLogger,
		lifecycle.Module,
		lifecycle.AppOptions, // serving once started: the drain runs its course
		wsmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: 20 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		// The HTTP server as httpmod runs it: a stop participant that shuts
		// the server down, in parallel with the registry's, and an OnStop
		// that asks for the stop.
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator, r *wsmod.Registry) {
			e := newMux(func(mux *http.ServeMux) { mux.Handle("GET /ws", r.WebSocket(handler)) })
			var started atomic.Pointer[testServer]
			c.AtStop("http", func(ctx context.Context) error {
				if s := started.Load(); s != nil {
					return s.Shutdown(ctx)
				}
				return nil // never started
			})
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error { srv = listen(t, e); started.Store(srv); return nil },
				OnStop:  c.Stop,
			})
		}),
		fx.Populate(&r, &c),
	)
	app.RequireStart()

	conns := make([]*websocket.Conn, clients)
	results := make([]closeResult, clients)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = dial(t, srv.WSURL("/ws"), nil)
		wg.Go(func() { results[i] = readUntilClose(conns[i]) })
	}
	defer func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}()
	waittest.Eventually(t, waitTimeout, func() bool { return r.Len(wsmod.KindWebSocket) == clients }, "200 sessions")
	// A message round trip on one of them, so the sessions are known to work.
	if err := conns[0].WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}

	app.RequireStop()
	wg.Wait()

	for i, res := range results {
		if res.code != websocket.CloseGoingAway || res.text != wsmod.DefaultCloseReason {
			t.Errorf("client %d: close %d %q (%v), want 1001 %q", i, res.code, res.text, res.err, wsmod.DefaultCloseReason)
		}
	}
	if got := returned.Load(); got != clients {
		t.Errorf("%d handlers returned, want %d", got, clients)
	}
	st := r.Stats().WebSocket
	if st.Active != 0 || st.Clean != clients || st.Forced != 0 || st.Aborted != 0 {
		t.Errorf("stats %+v, want %d clean", st, clients)
	}
	rep := report(t, c)
	if rep.ExitCode != 0 || rep.InFlightStop["websocket"] != clients {
		t.Errorf("report: clean=%v cut=%v in flight at stop=%v", rep.ExitCode == 0, rep.Cut, rep.InFlightStop)
	}
	if rep.DrainEndedBy != lifecycle.DrainEndedDelay {
		t.Errorf("the drain ended by %q, want %q", rep.DrainEndedBy, lifecycle.DrainEndedDelay)
	}
	for _, h := range rep.Hooks {
		if h.Err != "" || h.Overran {
			t.Errorf("stop participant %q: err %q, overran %v", h.Name, h.Err, h.Overran)
		}
	}
}

// A handler writing as fast as it can while the close frame goes out: no
// race (run with -race), no panic, 1001 delivered.
func TestWebSocketCloseWhileWriting(t *testing.T) {
	const clients = 10
	start := make(chan struct{}) // all dialed: flood
	var writing sync.WaitGroup
	writing.Add(clients)
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{},
		func(mux *http.ServeMux, r *wsmod.Registry) {
			mux.Handle("GET /flood", r.WebSocket(func(ctx context.Context, conn wsmod.Conn) error {
				msg := []byte(strings.Repeat("x", 512))
				var once sync.Once
				<-start
				for {
					if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
						return err
					}
					once.Do(writing.Done)
				}
			}))
		})
	results := make([]closeResult, clients)
	var wg sync.WaitGroup
	for i := range clients {
		conn := dial(t, f.srv.WSURL("/flood"), nil)
		defer conn.Close()
		wg.Go(func() { results[i] = readUntilClose(conn) })
	}
	close(start)
	writing.Wait()
	f.stop(t)
	wg.Wait()
	for i, res := range results {
		if res.code != websocket.CloseGoingAway {
			t.Errorf("client %d: close %d (%v) after %d messages, want 1001", i, res.code, res.err, res.messages)
		}
		if res.messages == 0 {
			t.Errorf("client %d: no message before the close", i)
		}
	}
	if st := f.r.Stats().WebSocket; st.Clean != clients {
		t.Errorf("stats %+v, want %d clean", st, clients)
	}
}

// A peer that never answers the close frame is force-closed at the close
// deadline — CloseTimeout, or the coordinator's stop deadline when that
// comes first — and counted as a cut session. The clock is fake: the
// deadline is reached by advancing it, not by waiting.
func TestWebSocketForceCloseAtDeadline(t *testing.T) {
	lcfg := lifecycle.Config{GracePeriod: 30 * time.Second, DrainDelay: time.Second}
	tests := []struct {
		name         string
		closeTimeout time.Duration
		wantForceAt  time.Duration // after the stop phase began
	}{
		{name: "CloseTimeout", closeTimeout: 2 * time.Second, wantForceAt: 2 * time.Second},
		// 30s grace − 3s teardown − 1s margin = stop deadline at D0+26s, 25s into the stop phase
		{name: "clipped to the stop deadline", closeTimeout: time.Hour, wantForceAt: 25 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New()
			// All at once: the clock stands still between the test's
			// moves, and a close window would wait on it (the window is
			// the spread tests').
			f := newFixture(t, lcfg, wsmod.Config{CloseTimeout: tt.closeTimeout, CloseRate: wsmod.AllAtOnce},
				func(mux *http.ServeMux, r *wsmod.Registry) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) },
				lifecycle.WithClock(clk))
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()

			polite := dial(t, f.srv.WSURL("/ws"), nil)
			defer polite.Close()
			politeDone := make(chan closeResult, 1)
			go func() { politeDone <- readUntilClose(polite) }()
			mute := dial(t, f.srv.WSURL("/ws"), nil) // never reads: never replies to the close frame
			defer mute.Close()
			waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 2 }, "2 sessions")

			f.c.BeginDrain("test")
			stopped := make(chan error, 1)
			go func() { stopped <- f.r.Stop(ctx) }()
			waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout) // the drain's end
			clk.Advance(lcfg.DrainDelay)
			waittest.Recv(t, f.c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
			stopAt := clk.Now()

			if res := waittest.Recv(t, politeDone, waitTimeout, "the polite client's close"); res.code != websocket.CloseGoingAway {
				t.Fatalf("polite client: close %d (%v), want 1001", res.code, res.err)
			}
			waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 1 }, "the polite session to end")
			// The stop deadline, the teardown deadline (the coordinator's) and
			// the close deadline (the registry's, set before its close frames).
			waittest.BlockUntil(t, clk.FakeClock, 3, waitTimeout)
			clk.Advance(tt.wantForceAt - time.Millisecond)
			select {
			case err := <-stopped:
				t.Fatalf("stop returned %v before the close deadline", err)
			default:
			}
			if st := f.r.Stats().WebSocket; st.Forced != 0 {
				t.Fatalf("stats %+v before the close deadline, want none forced", st)
			}
			clk.Advance(time.Millisecond)
			if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
				t.Fatalf("stop: %v", err)
			}
			rep := report(t, f.c)
			if took := clk.Since(stopAt); took != tt.wantForceAt {
				t.Errorf("stopped %v into the stop phase, want %v", took, tt.wantForceAt)
			}
			if now, dl := clk.Now(), rep.D0.Add(f.c.Plan().StopDeadline); now.After(dl) {
				t.Errorf("stop ended at %v, after the stop deadline %v", now, dl)
			}
			st := f.r.Stats().WebSocket
			if st.Clean != 1 || st.Forced != 1 || st.Active != 0 {
				t.Errorf("stats %+v, want 1 clean, 1 forced", st)
			}
			if rep.Cut[wsmod.CutSessions] != 1 || rep.ExitCode != 1 {
				t.Errorf("report cut %v exit %d, want 1 session cut, exit 1", rep.Cut, rep.ExitCode)
			}
			var stopPhase *lifecycle.Phase
			for i, p := range rep.Phases {
				if p.Name == lifecycle.StateStopping.String() {
					stopPhase = &rep.Phases[i]
				}
			}
			switch {
			case stopPhase == nil:
				t.Errorf("no stop phase in %+v", rep.Phases)
			case stopPhase.Actual != tt.wantForceAt || stopPhase.Actual > stopPhase.Planned:
				t.Errorf("stop phase took %v, planned %v; want it to end at the force-close, %v", stopPhase.Actual, stopPhase.Planned, tt.wantForceAt)
			}
		})
	}
}

// The drain phase still accepts sessions (the proxies may still route
// here); the stop phase refuses them with 503 and Retry-After. The clock is
// fake: the hour of drain passes by advancing it.
func TestNewSessionsDuringDrainAndStop(t *testing.T) {
	clk := clocktest.New()
	// All at once: the fake clock stands still once the stop phase begins.
	f := newFixture(t, lifecycle.Config{DrainDelay: time.Hour, GracePeriod: 2 * time.Hour}, wsmod.Config{RetryAfter: 1500 * time.Millisecond, CloseRate: wsmod.AllAtOnce},
		func(mux *http.ServeMux, r *wsmod.Registry) {
			mux.Handle("GET /ws", r.WebSocket(demo.Echo))
			mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
				<-ctx.Done()
				return nil
			}))
		}, lifecycle.WithClock(clk))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	f.c.BeginDrain("test")
	conn := dial(t, f.srv.WSURL("/ws"), nil)
	defer conn.Close()
	wsDone := make(chan closeResult, 1)
	go func() { wsDone <- readUntilClose(conn) }()
	resp, err := client.Get(f.srv.URL("/events"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE during the drain: %s", resp.Status)
	}
	sseDone := make(chan error, 1)
	go func() {
		_, err := readSSE(resp.Body, nil)
		sseDone <- err
	}()
	waittest.Eventually(t, waitTimeout, func() bool {
		return f.r.Len(wsmod.KindWebSocket) == 1 && f.r.Len(wsmod.KindSSE) == 1
	}, "sessions opened during the drain")
	if f.r.Stopping() {
		t.Fatal("registry stopping during the drain")
	}

	// The registry's Stop (its OnStop) asks for the stop; the stop phase
	// begins once the hour of drain has passed.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- f.r.Stop(ctx) }()
	waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout) // the drain's end
	clk.Advance(time.Hour)
	waittest.Recv(t, f.c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	if !f.r.Stopping() {
		t.Fatal("registry not stopping in the stop phase")
	}
	tests := []struct {
		name string
		give func() (*http.Response, error)
	}{
		{"websocket", func() (*http.Response, error) {
			c, resp, err := websocket.DefaultDialer.Dial(f.srv.WSURL("/ws"), nil)
			if err == nil {
				c.Close()
				return nil, errors.New("upgrade accepted in the stop phase")
			}
			return resp, nil
		}},
		{"sse", func() (*http.Response, error) { return client.Get(f.srv.URL("/events")) }},
	}
	for _, tt := range tests {
		resp, err := tt.give()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s in the stop phase: %s, Retry-After %q; want 503, 2", tt.name, resp.Status, resp.Header.Get("Retry-After"))
		}
	}

	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatal(err)
	}
	if res := waittest.Recv(t, wsDone, waitTimeout, "the websocket's close"); res.code != websocket.CloseGoingAway {
		t.Errorf("websocket opened during the drain: close %d (%v), want 1001", res.code, res.err)
	}
	if err := waittest.Recv(t, sseDone, waitTimeout, "the stream's end"); err != io.EOF {
		t.Errorf("SSE opened during the drain ended with %v, want EOF", err)
	}
	st := f.r.Stats()
	if st.WebSocket.Rejected != 1 || st.SSE.Rejected != 1 || st.WebSocket.Clean != 1 || st.SSE.Clean != 1 {
		t.Errorf("stats %+v", st)
	}
}

// With the keep-alive on, a peer that stops answering pings leaves the
// registry; one that answers stays.
func TestWebSocketKeepAliveRemovesDeadPeer(t *testing.T) {
	cfg := wsmod.Config{PingInterval: 20 * time.Millisecond, PongTimeout: 20 * time.Millisecond}
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, cfg,
		func(mux *http.ServeMux, r *wsmod.Registry) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) })

	dead := dial(t, f.srv.WSURL("/ws"), nil) // never reads, so never answers a ping
	defer dead.Close()
	live := dial(t, f.srv.WSURL("/ws"), nil)
	defer live.Close()
	var pings atomic.Int64
	live.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	liveDone := make(chan closeResult, 1)
	go func() { liveDone <- readUntilClose(live) }()

	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Stats().WebSocket.Aborted == 1 }, "the dead peer to be removed")
	// Five pings answered span 100ms, beyond the 40ms read deadline: the
	// pongs extend it.
	waittest.Eventually(t, waitTimeout, func() bool { return pings.Load() >= 5 }, "five pings")
	if n := f.r.Len(wsmod.KindWebSocket); n != 1 {
		t.Fatalf("%d sessions, want the live one", n)
	}
	f.stop(t)
	if res := <-liveDone; res.code != websocket.CloseGoingAway {
		t.Errorf("live peer: close %d (%v), want 1001", res.code, res.err)
	}
	if st := f.r.Stats().WebSocket; st.Clean != 1 || st.Aborted != 1 {
		t.Errorf("stats %+v, want 1 clean, 1 aborted", st)
	}
}

// A handler that returns on its own closes its session: 1000, or 1011 for
// an error.
func TestWebSocketHandlerReturns(t *testing.T) {
	tests := []struct {
		name     string
		give     error
		wantCode int
	}{
		{"nil", nil, websocket.CloseNormalClosure},
		{"error", errors.New("boom"), websocket.CloseInternalServerErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{},
				func(mux *http.ServeMux, r *wsmod.Registry) {
					mux.Handle("GET /ws/{name}", r.WebSocket(func(ctx context.Context, conn wsmod.Conn) error {
						name := wsmod.Request(ctx).PathValue("name")
						if err := conn.WriteMessage(websocket.TextMessage, []byte("hello "+name)); err != nil {
							return err
						}
						return tt.give
					}))
				})
			conn := dial(t, f.srv.WSURL("/ws/ann"), nil)
			defer conn.Close()
			_, p, err := conn.ReadMessage()
			if err != nil || string(p) != "hello ann" {
				t.Fatalf("read %q, %v", p, err)
			}
			if res := readUntilClose(conn); res.code != tt.wantCode {
				t.Errorf("close %d (%v), want %d", res.code, res.err, tt.wantCode)
			}
			waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 0 }, "the session to end")
			if st := f.r.Stats().WebSocket; st.Clean != 1 {
				t.Errorf("stats %+v, want 1 clean", st)
			}
		})
	}
}

func TestWebSocketOrigin(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		wantOK  bool
	}{
		{"no Origin", nil, "", true},
		{"same origin", nil, "http://HOST", true},
		{"cross origin refused by default", nil, "https://evil.example", false},
		{"allowed by full origin", []string{"https://App.example"}, "https://app.example", true},
		{"allowed by host", []string{"app.example"}, "https://app.example", true},
		{"other origin", []string{"app.example"}, "https://evil.example", false},
		{"any", []string{"*"}, "https://evil.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{AllowedOrigins: tt.allowed},
				func(mux *http.ServeMux, r *wsmod.Registry) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) })
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", strings.Replace(tt.origin, "HOST", f.srv.Addr, 1))
			}
			conn, resp, err := websocket.DefaultDialer.Dial(f.srv.WSURL("/ws"), hdr)
			if conn != nil {
				conn.Close()
			}
			if resp != nil {
				resp.Body.Close()
			}
			if gotOK := err == nil; gotOK != tt.wantOK {
				t.Fatalf("upgrade ok=%v (%v), want %v", gotOK, err, tt.wantOK)
			}
			if !tt.wantOK && resp.StatusCode != http.StatusForbidden {
				t.Errorf("refused with %s, want 403", resp.Status)
			}
		})
	}
}

// A peer that drops its connection without a close frame ends its session
// as aborted, not clean.
func TestWebSocketPeerVanishes(t *testing.T) {
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{},
		func(mux *http.ServeMux, r *wsmod.Registry) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) })
	conn := dial(t, f.srv.WSURL("/ws"), nil)
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 1 }, "the session")
	_ = conn.NetConn().Close()
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 0 }, "the session to end")
	if st := f.r.Stats().WebSocket; st.Aborted != 1 || st.Clean != 0 {
		t.Errorf("stats %+v, want 1 aborted", st)
	}
}

// The seams: an upgrader of one's own (here gorilla with a subprotocol), and
// an origin check supplied to the module.
func TestWebSocketOptions(t *testing.T) {
	t.Run("WithUpgrader", func(t *testing.T) {
		c := newCoordinator(t, lifecycle.Config{DrainDelay: lifecycle.None})
		r, err := wsmod.New(wsmod.Config{}, c,
			wsmod.WithUpgrader(wsmod.Gorilla(&websocket.Upgrader{Subprotocols: []string{"chat"}})),
			wsmod.WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		srv := listen(t, newMux(func(mux *http.ServeMux) {
			mux.Handle("GET /ws", r.WebSocket(func(ctx context.Context, conn wsmod.Conn) error {
				return conn.WriteMessage(wsmod.TextMessage, []byte(conn.Subprotocol()))
			}))
		}))
		d := websocket.Dialer{Subprotocols: []string{"chat"}}
		conn, resp, err := d.Dial(srv.WSURL("/ws"), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		defer conn.Close()
		if _, p, err := conn.ReadMessage(); err != nil || string(p) != "chat" {
			t.Errorf("read %q, %v; want the subprotocol", p, err)
		}
		if res := readUntilClose(conn); res.code != websocket.CloseNormalClosure {
			t.Errorf("close %d, want 1000", res.code)
		}
		waittest.Eventually(t, waitTimeout, func() bool { return r.Len(wsmod.KindWebSocket) == 0 }, "the session to end")
		if st := r.Stats(); st.Kind(wsmod.KindWebSocket) != st.WebSocket || st.Kind(wsmod.KindSSE) != st.SSE {
			t.Errorf("Stats.Kind disagrees with %+v", st)
		}
	})
	t.Run("CheckOrigin through fx", func(t *testing.T) {
		var r *wsmod.Registry
		app := fxtest.New(t,
			fx.NopLogger,
			lifecycle.Module,
			wsmod.Module,
			fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
			fx.Supply(wsmod.CheckOrigin(func(r *http.Request) bool { return r.Header.Get("Origin") == "https://ok.example" })),
			fx.Populate(&r),
		)
		app.RequireStart()
		defer app.RequireStop()
		srv := listen(t, newMux(func(mux *http.ServeMux) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) }))
		for _, tt := range []struct {
			origin string
			wantOK bool
		}{{"https://ok.example", true}, {"https://evil.example", false}} {
			conn, resp, err := websocket.DefaultDialer.Dial(srv.WSURL("/ws"), http.Header{"Origin": {tt.origin}})
			if conn != nil {
				conn.Close()
			}
			if resp != nil {
				resp.Body.Close()
			}
			if (err == nil) != tt.wantOK {
				t.Errorf("origin %s: %v, want ok=%v", tt.origin, err, tt.wantOK)
			}
		}
	})
}

// A message over the read limit closes the session with 1009 (message too
// big) once its frame header announces it; the default limit is 1 MiB, and a
// negative one turns the limit off.
func TestWebSocketReadLimit(t *testing.T) {
	tests := []struct {
		name      string
		giveLimit int64
		giveSize  int
		wantClose int // 0: the message is echoed
	}{
		{"default, at the limit", 0, wsmod.DefaultReadLimit, 0},
		{"default, over the limit", 0, wsmod.DefaultReadLimit + 1, websocket.CloseMessageTooBig},
		{"default, far over the limit", 0, 8 << 20, websocket.CloseMessageTooBig},
		{"small limit", 10, 11, websocket.CloseMessageTooBig},
		{"no limit", -1, 2 * wsmod.DefaultReadLimit, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{ReadLimit: tt.giveLimit},
				func(mux *http.ServeMux, r *wsmod.Registry) { mux.Handle("GET /ws", r.WebSocket(demo.Echo)) })
			conn := dial(t, f.srv.WSURL("/ws"), nil)
			defer conn.Close()
			// The write runs apart: the server may close before it has taken
			// the whole message, and the write then fails; what counts is the
			// close frame the client reads.
			wrote := make(chan error, 1)
			go func() { wrote <- conn.WriteMessage(websocket.BinaryMessage, make([]byte, tt.giveSize)) }()
			if tt.wantClose == 0 {
				_, p, err := conn.ReadMessage()
				if err != nil || len(p) != tt.giveSize {
					t.Fatalf("echo of %d bytes: %d bytes, %v", tt.giveSize, len(p), err)
				}
				if err := waittest.Recv(t, wrote, waitTimeout, "the write"); err != nil {
					t.Fatalf("write: %v", err)
				}
				return
			}
			res := readUntilClose(conn)
			if res.code != tt.wantClose {
				t.Errorf("close %d (%v), want %d", res.code, res.err, tt.wantClose)
			}
			waittest.Recv(t, wrote, waitTimeout, "the write to end")
			waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindWebSocket) == 0 }, "the session to end")
		})
	}
}
