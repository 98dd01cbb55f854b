package wsmod_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// spreadRun is a registry with real WebSocket and SSE clients over
// loopback, each noting when its session ended.
type spreadRun struct {
	c    *lifecycle.Coordinator
	r    *wsmod.Registry
	srv  *testServer
	logs *observer.ObservedLogs

	wg     sync.WaitGroup
	mu     sync.Mutex
	ends   []time.Time
	codes  map[int]int // WebSocket close codes the clients read
	sseEOF int         // streams that ended cleanly after the final event
}

func newSpreadRun(t *testing.T, lcfg lifecycle.Config, cfg wsmod.Config, ws, sse int) *spreadRun {
	t.Helper()
	run := &spreadRun{codes: map[int]int{}}
	run.c = coordinator(t, lcfg)
	core, logs := observer.New(zapcore.InfoLevel)
	run.logs = logs
	r, err := wsmod.New(cfg, run.c, wsmod.WithLogger(zap.New(core)))
	if err != nil {
		stopNow(t, run.c)
		t.Fatal(err)
	}
	run.r = r
	run.srv = listen(t, newMux(func(mux *http.ServeMux) {
		mux.Handle("GET /ws", r.WebSocket(demo.Echo))
		mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
			<-ctx.Done()
			return nil
		}))
	}))
	t.Cleanup(func() { stopNow(t, run.c) })
	t.Cleanup(run.wg.Wait)

	for range ws {
		conn := dial(t, run.srv.WSURL("/ws"), nil)
		run.wg.Go(func() {
			defer conn.Close()
			res := readUntilClose(conn)
			run.ended(func() { run.codes[res.code]++ })
		})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sse}}
	t.Cleanup(client.CloseIdleConnections)
	for range sse {
		resp, err := client.Get(run.srv.URL("/events"))
		if err != nil {
			t.Fatal(err)
		}
		run.wg.Go(func() {
			defer resp.Body.Close()
			evs, err := readSSE(resp.Body, nil)
			run.ended(func() {
				if err == io.EOF && len(evs) > 0 && evs[len(evs)-1].event == "shutdown" {
					run.sseEOF++
				}
			})
		})
	}
	waittest.Eventually(t, waitTimeout, func() bool {
		return r.Len(wsmod.KindWebSocket) == ws && r.Len(wsmod.KindSSE) == sse
	}, "the sessions to open")
	return run
}

func (run *spreadRun) ended(note func()) {
	at := time.Now()
	run.mu.Lock()
	defer run.mu.Unlock()
	run.ends = append(run.ends, at)
	note()
}

// stop plays the shutdown (no drain) and waits for every client.
func (run *spreadRun) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	run.c.BeginDrain("test")
	shut := make(chan error, 1)
	go func() {
		<-run.c.Reached(lifecycle.StateStopping)
		shut <- run.srv.Shutdown(ctx)
	}()
	if err := run.r.Stop(ctx); err != nil {
		t.Errorf("registry stop: %v", err)
	}
	if err := waittest.Recv(t, shut, waitTimeout, "the server's shutdown"); err != nil {
		t.Errorf("server shutdown: %v", err)
	}
	run.wg.Wait()
}

// checkClean checks that every session ended cleanly: 1001 read by each
// WebSocket client, the final event then EOF by each SSE reader, none
// forced, nothing cut.
func (run *spreadRun) checkClean(t *testing.T, ws, sse int) {
	t.Helper()
	if run.codes[websocket.CloseGoingAway] != ws || run.sseEOF != sse {
		t.Errorf("clients read closes %v and %d clean streams; want %d × 1001 and %d", run.codes, run.sseEOF, ws, sse)
	}
	st := run.r.Stats()
	if st.WebSocket.Clean != int64(ws) || st.SSE.Clean != int64(sse) || st.WebSocket.Forced+st.SSE.Forced != 0 {
		t.Errorf("stats %+v, want every session clean", st)
	}
	if rep := report(t, run.c); rep.ExitCode != 0 {
		t.Errorf("report cut %v, want nothing", rep.Cut)
	}
}

// Real sessions at 400 a second: 200 WebSocket and 20 SSE sessions are
// ended over 550 ms, every one cleanly. The schedule waits on the real
// clock for each session's turn, so the last client cannot hear of its end
// before about 550 ms into the stop phase, however loaded the machine; all
// at once, they all hear within a few milliseconds.
func TestCloseSpreadRealSessions(t *testing.T) {
	const ws, sse = 200, 20
	run := newSpreadRun(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{CloseRate: 400}, ws, sse)
	began := time.Now() // the stop phase begins after this
	run.stop(t)

	run.checkClean(t, ws, sse)
	last := began
	for _, at := range run.ends {
		if at.After(last) {
			last = at
		}
	}
	// The last of 220 slots of 2.5 ms begins at 547.5 ms; it may be
	// ended a millisecond early.
	if got := last.Sub(began); got < 546*time.Millisecond {
		t.Errorf("the last session ended %v after the stop began, want the 550ms window", got)
	}
	if e := run.logs.FilterMessage("closing sessions").All(); len(e) != 1 || e[0].ContextMap()["window"] != 550*time.Millisecond {
		t.Errorf("plan log %v, want one line with window 550ms", e)
	}
}

// A stop phase too short for the close rate: 110 sessions at 50 a second
// want 2.2 s; the stop deadline is 1 s after D0 (grace period 3 s, less 1 s
// of teardown reserve and 1 s of margin), so the window is compressed to a
// quarter of that (half kept for the handshakes, half of the rest for the
// schedule to slip into), and every session still ends cleanly before the
// deadline.
func TestCloseSpreadShortStopPhase(t *testing.T) {
	const ws, sse = 100, 10
	lcfg := lifecycle.Config{GracePeriod: 3 * time.Second, DrainDelay: lifecycle.None, TeardownReserve: time.Second, Margin: time.Second}
	run := newSpreadRun(t, lcfg, wsmod.Config{CloseRate: 50}, ws, sse)
	run.stop(t)

	run.checkClean(t, ws, sse)
	warn := run.logs.FilterMessageSnippet("compressed window").All()
	if len(warn) != 1 || warn[0].Level != zapcore.WarnLevel {
		t.Fatalf("logs %v, want one warning of the compressed window", run.logs.All())
	}
	m := warn[0].ContextMap()
	window, _ := m["window"].(time.Duration)
	if m["wanted"] != 2200*time.Millisecond || window <= 0 || window > 250*time.Millisecond {
		t.Errorf("warning fields %v, want wanted 2.2s and a window of at most 250ms", m)
	}
}
