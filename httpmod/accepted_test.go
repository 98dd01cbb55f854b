package httpmod_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// echoMux serves POST /echo with the request's body and GET / with "ok".
func echoMux() *http.ServeMux {
	return muxOf(map[string]http.HandlerFunc{
		"GET /": okHandler,
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(w, r.Body)
		},
	})
}

// serveWithStates serves h through a drain of c, on an http.Server of the
// test's own whose ConnState hook reports every change of a connection's
// state on the channel returned (Drain.Manage keeps an app's hook). The
// drain's stop participant shuts the server down.
func serveWithStates(t *testing.T, c *lifecycle.Coordinator, h http.Handler) (net.Addr, <-chan http.ConnState) {
	t.Helper()
	d, err := httpmod.NewDrain(c)
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan http.ConnState, 1024) // more than any test makes
	srv := &http.Server{
		Handler:           d.Handler(h),
		ReadHeaderTimeout: time.Minute,
		ConnState:         func(_ net.Conn, st http.ConnState) { states <- st },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Serve(srv, ln); err != nil {
		t.Fatal(err)
	}
	return ln.Addr(), states
}

// awaitStates receives from states until it has seen n changes to want.
func awaitStates(t *testing.T, states <-chan http.ConnState, want http.ConnState, n int) {
	t.Helper()
	for n > 0 {
		if waittest.Recv(t, states, waitTimeout, fmt.Sprintf("%d more connections %v", n, want)) == want {
			n--
		}
	}
}

// stopAtCleanup stops c when the test ends, if the test has not.
func stopAtCleanup(t *testing.T, c *lifecycle.Coordinator) {
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // at once: a test that failed half-way has nothing to wait for
		_ = c.Stop(ctx)
		<-c.Reached(lifecycle.StateStopped)
	})
}

// A connection that the server accepted during the drain is the server's:
// its first request, sent after the drain has ended and the stop phase has
// closed the listener, is served (with Connection: close), not dropped.
// (net/http's Shutdown drops a request it reads after it began: the
// connection closes without a response.)
func TestRequestOnAConnectionAcceptedDuringTheDrain(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, lifecycle.Config{GracePeriod: 10 * time.Second, DrainDelay: 200 * time.Millisecond,
		DrainQuiet: lifecycle.None, IgnoreSignals: true})
	stopAtCleanup(t, c)
	addr, states := serveWithStates(t, c, echoMux())
	c.MarkStarted()

	c.BeginDrain("test")
	const n = 10
	conns := make([]*servertest.RawConn, n)
	for i := range conns {
		conns[i] = servertest.Dial(t, addr)
	}
	awaitStates(t, states, http.StateNew, n) // accepted during the drain

	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	// The listener is closed: the stop participant is at work.
	waittest.Eventually(t, waitTimeout, func() bool {
		conn, err := net.Dial("tcp", addr.String())
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, "the listener to close")

	for i, rc := range conns {
		body := fmt.Sprintf("request %d", i)
		if _, err := io.WriteString(rc.Conn, fmt.Sprintf(
			"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s", len(body), body)); err != nil {
			t.Fatalf("connection %d: write: %v", i, err)
		}
		resp, err := http.ReadResponse(rc.R, nil)
		if err != nil {
			t.Errorf("connection %d: no response: %v", i, err)
			continue
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != body || !resp.Close {
			t.Errorf("connection %d: %d %q close=%v (%v), want 200 %q with Connection: close",
				i, resp.StatusCode, got, resp.Close, err, body)
		}
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatal(err)
	}
	if r := c.Telemetry().Report(); r.ExitCode != 0 || r.Hooks[0].Err != "" {
		t.Errorf("report: cut %v, hooks %+v; want clean", r.Cut, r.Hooks)
	}
}

// The adaptive drain judges the proxies by what they send: the first
// request on a new connection, not a TCP accept. A TCP health check (a
// bare connect and close every 500ms, as an NLB's) does not hold the drain
// to MaxDrainDelay; a request on a new connection does extend it.
func TestAdaptiveDrainCountsRequestsNotConnects(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name         string
		giveRequest  bool // a GET on a new connection at D0+500ms
		wantLasted   time.Duration
		wantArrivals int64
	}{
		{"bare connects", false, time.Second, 0}, // DrainDelay: nothing arrived
		{"a request", true, 1500 * ms, 1},        // the request at 500ms + DrainQuiet
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktest.New()
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: 30 * time.Second, DrainDelay: time.Second,
				DrainQuiet: time.Second, MaxDrainDelay: 10 * time.Second, IgnoreSignals: true}, lifecycle.WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			stopAtCleanup(t, c)
			addr, states := serveWithStates(t, c, okMux())
			c.MarkStarted()
			c.BeginDrain("test")
			waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout) // the drain's timer

			// A health check at D0 and at D0+500ms; the request, if
			// any, at D0+500ms.
			for at := time.Duration(0); at < time.Second; at += 500 * ms {
				conn, err := net.Dial("tcp", addr.String())
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				awaitStates(t, states, http.StateClosed, 1)
				if tt.giveRequest && at == 500*ms {
					client := servertest.NewClient(t)
					if status, _ := servertest.Get(t, client, "http://"+addr.String()+"/"); status != http.StatusOK {
						t.Fatalf("GET = %d", status)
					}
					awaitStates(t, states, http.StateClosed, 1) // Connection: close
				}
				clk.Advance(500 * ms)
			}
			if tt.giveRequest {
				waittest.BlockUntil(t, clk.FakeClock, 1, waitTimeout) // asleep again, until D0+1.5s
				if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
					t.Fatal("the drain ended 500ms after a request on a new connection")
				}
				clk.Advance(500 * ms)
			}
			waittest.Recv(t, c.Reached(lifecycle.StateDrained), waitTimeout, "the drain's end")
			if err := c.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := c.Telemetry().Report()
			if r.DrainEndedBy != lifecycle.DrainEndedQuiet || r.Phases[0].Actual != tt.wantLasted ||
				r.Drain.Arrivals != tt.wantArrivals {
				t.Errorf("drain ended by %q after %v with %d arrivals; want quiet after %v with %d",
					r.DrainEndedBy, r.Phases[0].Actual, r.Drain.Arrivals, tt.wantLasted, tt.wantArrivals)
			}
			if tt.giveRequest && r.Drain.LastArrival != 500*ms {
				t.Errorf("last arrival %v, want 500ms", r.Drain.LastArrival)
			}
			if r.ExitCode != 0 || strings.Contains(fmt.Sprint(r.Hooks), "overran") {
				t.Errorf("report: cut %v, hooks %+v", r.Cut, r.Hooks)
			}
		})
	}
}

// A connection still in the kernel's accept queue when the stop phase
// closes the listener — here because the server is at its MaxConns — is
// taken from the queue and served, not reset with the listener.
func TestConnectionInTheAcceptQueueAtTheStop(t *testing.T) {
	t.Parallel()
	h := newStuck()
	mux := h.mux()
	mux.HandleFunc("GET /{$}", okHandler)
	s, c := servertest.Start(t, lifecycle.Config{GracePeriod: 10 * time.Second, DrainDelay: lifecycle.None,
		DrainQuiet: lifecycle.None, IgnoreSignals: true}, httpmod.Config{MaxConns: 1}, mux)
	held := h.request(t, s) // the one connection the bound allows, in its handler
	queued := servertest.Dial(t, s.Addr())
	if _, err := io.WriteString(queued.Conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	waittest.Eventually(t, waitTimeout, func() bool {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, "the listener to close")
	close(h.release) // the held request ends; the queued one runs at once
	if err := waittest.Recv(t, held, waitTimeout, "the held request"); err != nil {
		t.Errorf("held request: %v", err)
	}
	resp, err := http.ReadResponse(queued.R, nil)
	if err != nil {
		t.Fatalf("queued connection: no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("queued connection: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatal(err)
	}
	if r := c.Telemetry().Report(); r.ExitCode != 0 {
		t.Errorf("report: cut %v", r.Cut)
	}
}
