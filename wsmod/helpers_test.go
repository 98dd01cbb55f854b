package wsmod_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// waitTimeout bounds every wait on an event in these tests; reaching it is a
// failure, not a timing.
const waitTimeout = 10 * time.Second

// testServer is a net/http server on a real loopback listener, as httpmod
// runs one.
type testServer struct {
	Addr string // 127.0.0.1:port
	srv  *http.Server
	done chan struct{}
}

// newMux returns a ServeMux with the routes register adds.
func newMux(register func(mux *http.ServeMux)) *http.ServeMux {
	mux := http.NewServeMux()
	register(mux)
	return mux
}

// listen starts serving h; Close (also a test cleanup) stops it.
func listen(t testing.TB, h http.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{
		Addr: ln.Addr().String(),
		srv:  &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	_ = s.srv.Close()
	<-s.done
}

// Shutdown is what httpmod's OnStop does once the drain is over.
func (s *testServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

func (s *testServer) URL(path string) string   { return "http://" + s.Addr + path }
func (s *testServer) WSURL(path string) string { return "ws://" + s.Addr + path }

// fixture is a coordinator, a registry and a server with the routes under
// test.
type fixture struct {
	c   *lifecycle.Coordinator
	r   *wsmod.Registry
	srv *testServer
}

// newCoordinator returns a serving coordinator for lcfg (signals ignored; a
// fixed drain unless lcfg sets DrainQuiet), stopped at cleanup.
func newCoordinator(t testing.TB, lcfg lifecycle.Config, opts ...lifecycle.Option) *lifecycle.Coordinator {
	t.Helper()
	c := coordinator(t, lcfg, opts...)
	t.Cleanup(func() { stopNow(t, c) })
	return c
}

// coordinator is newCoordinator without the cleanup.
func coordinator(t testing.TB, lcfg lifecycle.Config, opts ...lifecycle.Option) *lifecycle.Coordinator {
	t.Helper()
	lcfg.IgnoreSignals = true
	if lcfg.DrainQuiet == 0 {
		lcfg.DrainQuiet = lifecycle.None
	}
	c, err := lifecycle.New(lcfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.MarkStarted() // serving: the drain runs its course
	return c
}

// stopNow ends whatever the test left running: the drain is cut short, the
// stop participants' deadline comes at once; it then waits for the report,
// so that no goroutine of the coordinator outlives the test.
func stopNow(t testing.TB, c *lifecycle.Coordinator) {
	t.Helper()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(cancelled)
	ctx, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel2()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("the coordinator did not stop: %v", err)
	}
}

// report returns the shutdown report of a coordinator that has stopped.
func report(t testing.TB, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report: the coordinator has not stopped")
	}
	return r
}

func newFixture(t testing.TB, lcfg lifecycle.Config, cfg wsmod.Config, routes func(mux *http.ServeMux, r *wsmod.Registry), opts ...lifecycle.Option) *fixture {
	t.Helper()
	c := coordinator(t, lcfg, opts...)
	r, err := wsmod.New(cfg, c)
	if err != nil {
		stopNow(t, c)
		t.Fatal(err)
	}
	f := &fixture{c: c, r: r}
	f.srv = listen(t, newMux(func(mux *http.ServeMux) { routes(mux, r) }))
	// Registered after the server's cleanup (Close), so it runs first:
	// whatever the test did, the stop phase ends the sessions, then the
	// server closes.
	t.Cleanup(func() { stopNow(t, c) })
	return f
}

// stop plays a shutdown as httpmod and the registry take part in it: D0,
// the drain, then the stop phase, where the HTTP server's Shutdown runs in
// parallel with the registry closing its sessions; the registry's Stop (its
// OnStop) waits for the whole of it.
func (f *fixture) stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	f.c.BeginDrain("test")
	shut := make(chan error, 1)
	go func() {
		select {
		case <-f.c.Reached(lifecycle.StateStopping):
			shut <- f.srv.Shutdown(ctx)
		case <-ctx.Done():
			shut <- ctx.Err()
		}
	}()
	if err := f.r.Stop(ctx); err != nil {
		t.Errorf("registry stop: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("server shutdown: %v", err)
	}
}

func dial(t testing.TB, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = resp.Body.Close()
	return conn
}

// closeResult is how a client saw its session end.
type closeResult struct {
	code     int // -1: no close frame
	text     string
	messages int
	err      error
}

// readUntilClose reads (replying to pings and to the close frame, as
// gorilla does inside reads) until the session ends.
func readUntilClose(conn *websocket.Conn) closeResult {
	res := closeResult{code: -1}
	for {
		_, _, err := conn.ReadMessage()
		if err != nil {
			res.err = err
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				res.code, res.text = ce.Code, ce.Text
			}
			return res
		}
		res.messages++
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	id, event, data, retry string
}

// readSSE parses events until the body ends, returning them and the error
// the body ended with (io.EOF for a clean end).
func readSSE(body io.Reader, first chan<- struct{}) ([]sseEvent, error) {
	br := bufio.NewReader(body)
	var evs []sseEvent
	var cur sseEvent
	var once sync.Once
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return evs, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			evs = append(evs, cur)
			cur = sseEvent{}
			if first != nil {
				once.Do(func() { close(first) })
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id = value
		case "event":
			cur.event = value
		case "data":
			if cur.data != "" {
				cur.data += "\n"
			}
			cur.data += value
		case "retry":
			cur.retry = value
		}
	}
}
