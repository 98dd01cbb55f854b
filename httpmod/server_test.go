package httpmod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// greeter is a route with a dependency, as an app's handler struct is.
type greeter struct{ greeting string }

func newGreeter(greeting string) *greeter { return &greeter{greeting} }

func (g *greeter) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /greet", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, g.greeting) })
}

func TestModule(t *testing.T) {
	t.Parallel()
	var (
		srv   *httpmod.Server
		coord *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		lifecycle.Module,
		httpmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: 50 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		lifecycle.AppOptions, // serving once started: the drain is a drain
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		fx.Supply("hello"),
		httpmod.AsRoute(newGreeter),
		httpmod.AsRoute(func() httpmod.RouteFunc {
			return func(mux *http.ServeMux) { mux.HandleFunc("GET /{$}", okHandler) }
		}),
		fx.Populate(&srv, &coord),
	).RequireStart()
	if st := coord.State(); st != lifecycle.StateServing {
		t.Fatalf("state after start = %v, want serving", st)
	}

	client := servertest.NewClient(t)
	tests := []struct {
		givePath string
		wantBody string
	}{
		{"/", "ok"},
		{"/greet", "hello"},
	}
	for _, tt := range tests {
		status, body := servertest.Get(t, client, "http://"+srv.Addr().String()+tt.givePath)
		if status != http.StatusOK || body != tt.wantBody {
			t.Errorf("GET %s = %d %q, want 200 %q", tt.givePath, status, body, tt.wantBody)
		}
	}
	app.RequireStop()
	if got := srv.InFlight(); got != 0 {
		t.Errorf("InFlight after stop = %d, want 0", got)
	}
	// The server took part in the stop phase, after a real drain.
	r := coord.Telemetry().Report()
	if r.DrainEndedBy != lifecycle.DrainEndedDelay || len(r.Hooks) != 1 || r.Hooks[0].Name != "http" ||
		r.Hooks[0].Phase != lifecycle.StateStopping.String() || r.Hooks[0].Err != "" {
		t.Errorf("report: drain ended by %q, hooks %+v; want delay and the http stop participant", r.DrainEndedBy, r.Hooks)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give httpmod.Config
		want string
	}{
		{"address without port", httpmod.Config{Addr: "nope"}, `Addr="nope": address nope: missing port in address`},
		{"negative timeout", httpmod.Config{ReadHeaderTimeout: -time.Second}, "ReadHeaderTimeout=-1s is negative"},
		{"negative idle", httpmod.Config{IdleTimeout: -1}, "IdleTimeout=-1ns is negative"},
		{"negative header bytes", httpmod.Config{MaxHeaderBytes: -1}, "MaxHeaderBytes=-1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := lifecycle.New(lifecycle.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = httpmod.New(tt.give, c, nil)
			if !errors.Is(err, httpmod.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestNewRequiresCoordinator(t *testing.T) {
	t.Parallel()
	if _, err := httpmod.New(httpmod.Config{}, nil, nil); err == nil {
		t.Error("New with a nil coordinator succeeded")
	}
}

func TestStartFailsOnBadAddress(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests

	tests := []struct {
		name     string
		giveAddr string
		wantErr  error // matched with errors.Is, if set
	}{
		{"busy port", busy.Addr().String(), syscall.EADDRINUSE},
		{"port out of range", "127.0.0.1:99999", nil},
		{"address not on this host", "192.0.2.1:8080", syscall.EADDRNOTAVAIL}, // TEST-NET-1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := lifecycle.New(lifecycle.Config{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := httpmod.New(httpmod.Config{Addr: tt.giveAddr}, c, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = s.Start(context.Background())
			if err == nil {
				_ = s.Stop(context.Background())
				t.Fatal("Start succeeded")
			}
			if want := fmt.Sprintf("listen %q: ", tt.giveAddr); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Start error = %q, want it to begin with %q", err, want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Start error = %v, want it to match %v", err, tt.wantErr)
			}
			if s.Addr() != nil {
				t.Errorf("Addr after a failed Start = %v, want nil", s.Addr())
			}
			// The coordinator calls the stop participant all the same: it
			// returns at once, and the service stops cleanly.
			if err := s.Stop(context.Background()); err != nil {
				t.Errorf("Stop after a failed Start: %v", err)
			}
			if r := c.Telemetry().Report(); r.ExitCode != 0 || len(r.Hooks) != 1 || r.Hooks[0].Err != "" {
				t.Errorf("report after a failed Start: %+v", r)
			}
			if err := s.Start(context.Background()); err == nil {
				t.Error("Start after Stop succeeded")
			}
		})
	}
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	s, _ := servertest.Start(t, quick, httpmod.Config{}, nil)
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
}

// From the stop phase on, responses end their connection. The switch is
// made in the transition into the stop phase, before any stop participant
// (the server's Shutdown among them) runs: a request that arrived while
// serving, answered from a callback registered after the server's in that
// transition, gets Connection: close although the server is not shutting
// down yet.
func TestKeepAlivesOffInTheStopPhase(t *testing.T) {
	t.Parallel()
	h := newStuck()
	s, c := servertest.Start(t, quick, httpmod.Config{}, h.mux())
	rc := servertest.Dial(t, s.Addr())
	if _, err := io.WriteString(rc.Conn, "GET /block HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waittest.Recv(t, h.entered, waitTimeout, "the handler") // arrived while serving
	type result struct {
		status int
		close  bool
		err    error
	}
	got := make(chan result, 1)
	c.OnState(lifecycle.StateStopping, func() {
		close(h.release)
		resp, err := http.ReadResponse(rc.R, nil)
		if err != nil {
			got <- result{err: err}
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, resp.Close, err}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	res := waittest.Recv(t, got, waitTimeout, "the response in the transition")
	if res.err != nil || res.status != http.StatusOK || !res.close {
		t.Errorf("response as the stop phase began: %d close=%v %v, want 200 with Connection: close", res.status, res.close, res.err)
	}
}

// Before the drain, a keep-alive connection carries request after request;
// during it, every response says Connection: close and the server closes
// the connection after it.
func TestDrainClosesKeepAliveConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveDrain bool
		wantClose bool
	}{
		{"serving", false, false},
		{"draining", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := servertest.Start(t, quick, httpmod.Config{}, okMux())
			rc := servertest.Dial(t, s.Addr())
			if resp := rc.Do("GET", "/"); resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("first response: %d close=%v, want 200 keep-alive", resp.StatusCode, resp.Close)
			}
			if tt.giveDrain {
				c.BeginDrain("test")
			}
			resp := rc.Do("GET", "/", "Connection: keep-alive")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			// ReadResponse moves Connection: close into resp.Close
			if resp.Close != tt.wantClose {
				t.Errorf("Connection: close = %v, want %v", resp.Close, tt.wantClose)
			}
			if !tt.wantClose {
				// the connection is reused: a third request on it works
				if resp := rc.Do("GET", "/"); resp.StatusCode != http.StatusOK {
					t.Errorf("reused connection: status %d", resp.StatusCode)
				}
				return
			}
			if !rc.ClosedByServer() {
				t.Error("the server kept the connection open after Connection: close")
			}
		})
	}
}

// A protocol switch during the drain keeps Connection: Upgrade. The handler
// writes its 101 from the response header after hijacking, as
// httputil.ReverseProxy does for a proxied WebSocket, so a Connection: close
// set by the middleware would show.
func TestDrainKeepsUpgrade(t *testing.T) {
	t.Parallel()
	s, c := servertest.Start(t, quick, httpmod.Config{},
		muxOf(map[string]http.HandlerFunc{"GET /ws": switchProtocols}))
	c.BeginDrain("test")

	rc := servertest.Dial(t, s.Addr())
	resp := rc.Do("GET", "/ws", "Connection: Upgrade", "Upgrade: websocket")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Values("Connection"); len(got) != 1 || got[0] != "Upgrade" {
		t.Errorf("Connection = %q, want [Upgrade]", got)
	}
	// the switched connection works: the handler echoes one line
	if _, err := io.WriteString(rc.Conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := rc.R.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("echo = %q, %v; want ping", line, err)
	}
}

// switchProtocols answers 101 and echoes one line on the raw connection.
func switchProtocols(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Add("Upgrade", "websocket")
	h.Add("Connection", "Upgrade")
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	res := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: h}
	if err := res.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	line, err := brw.ReadString('\n')
	if err != nil {
		return
	}
	if _, err := brw.WriteString(line); err != nil {
		return
	}
	_ = brw.Flush()
}

// A 1.5 s request begun before the drain ends completes with 200, and the
// exit follows it: Stop returns after the handler and before the stop
// deadline, and nothing is cut.
func TestSlowRequestOutlivesTheDrain(t *testing.T) {
	t.Parallel()
	const (
		drainDelay = 300 * time.Millisecond
		slow       = 1500 * time.Millisecond
	)
	entered := make(chan struct{})
	handlerDone := make(chan time.Time, 1)
	var (
		srv   *httpmod.Server
		coord *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		lifecycle.Module,
		httpmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: drainDelay, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		httpmod.AsRoute(func() httpmod.RouteFunc {
			return func(mux *http.ServeMux) {
				mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
					close(entered)
					defer func() { handlerDone <- time.Now() }()
					select {
					case <-time.After(slow):
					case <-r.Context().Done():
						return
					}
					if !waittest.Closed(coord.Reached(lifecycle.StateDrained)) {
						http.Error(w, "the request did not outlive the drain", http.StatusInternalServerError)
						return
					}
					_, _ = io.WriteString(w, "done")
				})
			}
		}),
		fx.Populate(&srv, &coord),
	).RequireStart()
	coord.MarkStarted() // lifecycle.AppOptions does it in an app

	coord.BeginDrain("test")
	d0 := coord.Telemetry().Report().D0
	// Begin the request just before the drain ends: a point on the
	// timeline, not a guess at an event.
	time.Sleep(time.Until(d0.Add(drainDelay - 100*time.Millisecond)))
	type result struct {
		status int
		close  bool
		body   string
		err    error
	}
	got := make(chan result, 1)
	client := servertest.NewClient(t)
	go func() {
		resp, err := client.Get("http://" + srv.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, resp.Close, string(body), err}
	}()
	waittest.Recv(t, entered, waitTimeout, "the slow handler")

	app.RequireStop() // fails if the shutdown was not clean
	stopped := time.Now()

	res := waittest.Recv(t, got, waitTimeout, "the slow response")
	if res.err != nil || res.status != http.StatusOK || res.body != "done" || !res.close {
		t.Errorf("GET /slow = %d %q close=%v %v, want 200 done with Connection: close", res.status, res.body, res.close, res.err)
	}
	if done := waittest.Recv(t, handlerDone, waitTimeout, "the handler's end"); stopped.Before(done) {
		t.Errorf("Stop returned %v before the handler ended", done.Sub(stopped))
	}
	if deadline := d0.Add(coord.Plan().StopDeadline); !stopped.Before(deadline) {
		t.Errorf("Stop returned %v after the stop deadline", stopped.Sub(deadline))
	}
	if r := coord.Telemetry().Report(); r.ExitCode != 0 {
		t.Errorf("report not clean: %+v", r)
	}
}

// A request still running at the stop deadline is cut: Stop returns at the
// deadline and the report counts it.
func TestStopCutsAtTheDeadline(t *testing.T) {
	t.Parallel()
	h := newStuck()
	core, logs := observer.New(zap.InfoLevel)
	// stop deadline = D0 + 1s − 200ms − 100ms = D0 + 700ms
	s, c := servertest.Start(t,
		lifecycle.Config{GracePeriod: time.Second, DrainDelay: 100 * time.Millisecond, DrainQuiet: lifecycle.None,
			TeardownReserve: 200 * time.Millisecond, Margin: 100 * time.Millisecond},
		httpmod.Config{}, h.mux(),
		httpmod.WithLogger(zap.New(core)))
	clientErr := h.request(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopped := time.Now()
	r := c.Telemetry().Report()
	deadline := r.D0.Add(c.Plan().StopDeadline)
	if stopped.Before(deadline) {
		t.Errorf("Stop returned %v before the stop deadline", deadline.Sub(stopped))
	}
	// generous: the point is that Stop does not wait for the handler
	if late := stopped.Sub(deadline); late > 2*time.Second {
		t.Errorf("Stop returned %v after the stop deadline", late)
	}
	if err := waittest.Recv(t, clientErr, waitTimeout, "the client"); err == nil {
		t.Error("the cut request succeeded")
	}
	if r.Cut[httpmod.CutRequests] != 1 || r.ExitCode != 1 {
		t.Errorf("report cut %v exit %d, want requests=1 exit 1", r.Cut, r.ExitCode)
	}
	if r.InFlightAtD0[httpmod.InFlightGauge] != 1 {
		t.Errorf("report in flight at D0 = %v, want requests=1", r.InFlightAtD0)
	}
	if cuts := logs.FilterMessage("requests cut").All(); len(cuts) != 1 || cuts[0].ContextMap()["count"] != int64(1) {
		t.Errorf("requests cut logs = %v, want one with count 1", cuts)
	}

	close(h.release)
	waittest.Eventually(t, waitTimeout, func() bool { return s.InFlight() == 0 }, "the cut handler to return")
}

// Stop is bounded by its context too, even when the stop deadline is far:
// it returns the context's error and cuts what is in flight.
func TestStopHonoursItsContext(t *testing.T) {
	t.Parallel()
	h := newStuck()
	s, c := servertest.Start(t, lifecycle.Config{}, // 5s drain at least, stop deadline 26s after D0
		httpmod.Config{}, h.mux())
	clientErr := h.request(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want context.DeadlineExceeded", err)
	}
	if err := waittest.Recv(t, clientErr, waitTimeout, "the client"); err == nil {
		t.Error("the cut request succeeded")
	}
	// The rest of the timeline hurries on: the drain was cut short and
	// the stop deadline came at once.
	if r := servertest.WaitReport(t, c); r.Cut[httpmod.CutRequests] != 1 || r.DrainEndedBy != lifecycle.DrainEndedAbort {
		t.Errorf("report cut %v, drain ended by %q; want requests=1, abort", r.Cut, r.DrainEndedBy)
	}
	close(h.release)
	waittest.Eventually(t, waitTimeout, func() bool { return s.InFlight() == 0 }, "the cut handler to return")
}

func TestPanicAnswers500(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	s, _ := servertest.Start(t, quick, httpmod.Config{},
		muxOf(map[string]http.HandlerFunc{
			"GET /{$}":   okHandler,
			"GET /panic": func(http.ResponseWriter, *http.Request) { panic("boom") },
			"GET /abort": func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "10")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("part"))
				_ = http.NewResponseController(w).Flush()
				panic(http.ErrAbortHandler)
			},
		}),
		httpmod.WithLogger(zap.New(core)))
	base := "http://" + s.Addr().String()
	client := servertest.NewClient(t)

	tests := []struct {
		givePath   string
		wantStatus int
		wantErr    bool // the response is aborted: reading the body fails
	}{
		{"/panic", http.StatusInternalServerError, false},
		{"/", http.StatusOK, false},
		{"/abort", http.StatusOK, true},
		{"/", http.StatusOK, false},
	}
	for _, tt := range tests {
		resp, err := client.Get(base + tt.givePath)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.givePath, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || (err != nil) != tt.wantErr {
			t.Errorf("GET %s = %d, body error %v; want %d, error %v", tt.givePath, resp.StatusCode, err, tt.wantStatus, tt.wantErr)
		}
	}
	waittest.Eventually(t, waitTimeout, func() bool { return s.InFlight() == 0 }, "in-flight back to 0")

	panics := logs.FilterMessage("handler panic").All()
	if len(panics) != 1 {
		t.Fatalf("%d handler panic logs, want 1 (ErrAbortHandler is not logged)", len(panics))
	}
	if f := panics[0].ContextMap(); f["component"] != "http" || f["panic"] != "boom" || f["path"] != "/panic" {
		t.Errorf("panic log fields = %v", f)
	}
}

func TestH2C(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveH2C   bool
		giveDrain bool
		wantProto int // 0: the HTTP/2 client fails
	}{
		{"enabled", true, false, 2},
		// Connection: close becomes a GOAWAY; the response is unharmed
		{"enabled, draining", true, true, 2},
		{"disabled", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := servertest.Start(t, quick, httpmod.Config{H2C: tt.giveH2C}, okMux())
			if tt.giveDrain {
				c.BeginDrain("test")
			}
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true) // prior knowledge, no HTTP/1
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: waitTimeout}

			resp, err := client.Get("http://" + s.Addr().String() + "/")
			if tt.wantProto == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("HTTP/2 request to an HTTP/1 server got %s", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "ok" {
				t.Errorf("body = %q, %v; want ok", body, err)
			}
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tt.wantProto {
				t.Errorf("GET = %d over HTTP/%d, want 200 over HTTP/%d", resp.StatusCode, resp.ProtoMajor, tt.wantProto)
			}
		})
	}
}

// By default the server bounds a request header to 64 KiB
// (DefaultMaxHeaderBytes), what proxies accept, not net/http's 1 MB: a
// header of 100 KiB gets 431, one of 32 KiB is served.
func TestDefaultMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	s, _ := servertest.Start(t, quick, httpmod.Config{}, okMux())
	client := servertest.NewClient(t)
	tests := []struct {
		give int // bytes of one header's value
		want int
	}{
		{32 << 10, http.StatusOK},
		{100 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr().String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Big", strings.Repeat("a", tt.give))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a %d KiB header: %v", tt.give>>10, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("a %d KiB header: %d, want %d", tt.give>>10, resp.StatusCode, tt.want)
		}
	}
}
