package probemod_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

type prestopResult struct {
	status int
	header http.Header
	body   probemod.PrestopResponse
	raw    string
	err    error
}

func callPrestop(ctx context.Context, method, url, token string) prestopResult {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return prestopResult{err: err}
	}
	if token != "" {
		req.Header.Set(probemod.PrestopHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return prestopResult{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := prestopResult{status: resp.StatusCode, header: resp.Header, raw: string(raw), err: err}
	if resp.StatusCode == http.StatusOK {
		r.err = errors.Join(r.err, json.Unmarshal(raw, &r.body))
	}
	return r
}

func goPrestop(ctx context.Context, method, url, token string) <-chan prestopResult {
	ch := make(chan prestopResult, 1)
	go func() { ch <- callPrestop(ctx, method, url, token) }()
	return ch
}

func newPrestopServer(t *testing.T, c *lifecycle.Coordinator, log ...*zap.Logger) *httptest.Server {
	t.Helper()
	l := zap.NewNop()
	if len(log) > 0 {
		l = log[0]
	}
	srv := httptest.NewServer(probemod.NewPrestopHandler(c, l))
	t.Cleanup(srv.Close) // waits for the handlers to return
	return srv
}

func TestPrestopBlocksUntilDrainEnd(t *testing.T) {
	t.Parallel()
	c, clk, _, _ := newFake(t, testConfig())
	c.MarkStarted()
	srv := newPrestopServer(t, c)

	first := goPrestop(context.Background(), http.MethodGet, srv.URL, "")
	waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "the preStop call to begin the drain")
	if c.State() == lifecycle.StateServing {
		t.Error("Ready() during the drain")
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2*s - ms)
	select {
	case r := <-first:
		t.Fatalf("preStop answered before the drain ended: %+v", r)
	default:
	}
	clk.Advance(ms)
	r := waittest.Recv(t, first, eventTimeout, "the preStop answer")
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("preStop = %d %q, %v", r.status, r.raw, r.err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	d0 := report(c).D0
	want := probemod.PrestopResponse{State: "drained", Reason: "prestop", D0: d0, DrainEndedBy: "delay", Waited: "2s"}
	if !r.body.D0.Equal(want.D0) {
		t.Errorf("d0 = %v, want %v", r.body.D0, want.D0)
	}
	r.body.D0 = want.D0
	if r.body != want {
		t.Errorf("body = %+v, want %+v", r.body, want)
	}

	// A second call, after the drain, answers at once: no clock advance.
	second := waittest.Recv(t, goPrestop(context.Background(), http.MethodPost, srv.URL, ""), eventTimeout, "the second preStop answer")
	if second.err != nil || second.status != http.StatusOK || second.body.Reason != "prestop" || second.body.Waited != "0s" {
		t.Errorf("second preStop = %d %q, %v", second.status, second.raw, second.err)
	}
}

func TestPrestopTokenChecked(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	tests := []struct {
		name       string
		giveMethod string
		giveToken  string
		wantStatus int
		wantDrain  bool
	}{
		{name: "missing token", giveMethod: http.MethodGet, wantStatus: http.StatusUnauthorized},
		{name: "wrong token", giveMethod: http.MethodGet, giveToken: "s3cret-tokem", wantStatus: http.StatusUnauthorized},
		{name: "longer token", giveMethod: http.MethodPost, giveToken: token + "x", wantStatus: http.StatusUnauthorized},
		{name: "PUT", giveMethod: http.MethodPut, giveToken: token, wantStatus: http.StatusMethodNotAllowed},
		{name: "right token", giveMethod: http.MethodGet, giveToken: token, wantStatus: http.StatusOK, wantDrain: true},
		{name: "right token, POST", giveMethod: http.MethodPost, giveToken: token, wantStatus: http.StatusOK, wantDrain: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newObserved()
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, PrestopToken: token}, lifecycle.WithLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopNow(t, c) })
			c.MarkStarted()
			srv := newPrestopServer(t, c, log)
			r := waittest.Recv(t, goPrestop(context.Background(), tt.giveMethod, srv.URL, tt.giveToken), eventTimeout, "the preStop answer")
			if r.err != nil || r.status != tt.wantStatus {
				t.Fatalf("preStop = %d %q, %v; want %d", r.status, r.raw, r.err, tt.wantStatus)
			}
			d0 := report(c).D0
			if got := !d0.IsZero(); got != tt.wantDrain {
				t.Errorf("drain began = %v, want %v", got, tt.wantDrain)
			}
			if got := (c.State() == lifecycle.StateServing); got == tt.wantDrain {
				t.Errorf("Ready() = %v", got)
			}
			if tt.wantDrain && (r.body.State != "drained" || r.body.Reason != "prestop") {
				t.Errorf("body = %+v", r.body)
			}
			refused := logs.FilterMessageSnippet("prestop refused").All()
			if got := len(refused) == 1; got != (tt.wantStatus == http.StatusUnauthorized) {
				t.Errorf("%d \"prestop refused\" entries; logged: %s", len(refused), messages(logs))
			}
			for _, e := range refused {
				if e.Level != zapcore.WarnLevel || e.ContextMap()["remote"] == "" {
					t.Errorf("refusal logged as %v %v", e.Level, e.ContextMap())
				}
			}
			for _, e := range logs.All() {
				for k, v := range e.ContextMap() {
					if vs, ok := v.(string); ok && strings.Contains(vs, "s3cret") {
						t.Errorf("the token was logged in %q: %s=%s", e.Message, k, vs)
					}
				}
			}
			if tt.wantStatus == http.StatusMethodNotAllowed {
				if got := r.header.Get("Allow"); got != "GET, POST" {
					t.Errorf("Allow = %q", got)
				}
			}
		})
	}
}

func TestPrestopCallerLeaves(t *testing.T) {
	t.Parallel()
	c, clk, log, logs := newFake(t, testConfig())
	c.MarkStarted()
	srv := newPrestopServer(t, c, log)
	ctx, cancel := context.WithCancel(context.Background())
	res := goPrestop(ctx, http.MethodGet, srv.URL, "")
	waittest.Recv(t, c.Reached(lifecycle.StateDraining), eventTimeout, "the preStop call to begin the drain")
	cancel()
	if r := waittest.Recv(t, res, eventTimeout, "the cancelled call"); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("call = %d, %v; want context.Canceled", r.status, r.err)
	}
	waitLog(t, logs, "prestop caller left")
	// The drain goes on.
	if c.State() != lifecycle.StateDraining || waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatalf("State() = %v after the caller left, want draining", c.State())
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone")
	if reason := report(c).Reason; reason != "prestop" {
		t.Errorf("reason = %q", reason)
	}
}

// The handler answers within the drain on a real clock too.
func TestPrestopRealClock(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: 2 * s, DrainDelay: 100 * ms, DrainQuiet: lifecycle.None, TeardownReserve: 500 * ms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNow(t, c) })
	c.MarkStarted()
	srv := newPrestopServer(t, c)
	r := waittest.Recv(t, goPrestop(context.Background(), http.MethodGet, srv.URL, ""), eventTimeout, "the preStop answer")
	if r.err != nil || r.status != http.StatusOK || r.body.DrainEndedBy != "delay" {
		t.Fatalf("preStop = %d %q, %v", r.status, r.raw, r.err)
	}
	if waited, err := time.ParseDuration(r.body.Waited); err != nil || waited < 100*ms {
		t.Errorf("waited %q, want at least the 100ms drain", r.body.Waited)
	}
}

// A preStop call that reaches a stopped coordinator answers at once.
func TestPrestopAfterFinish(t *testing.T) {
	t.Parallel()
	c, _, _, _ := newFake(t, testConfig())
	c.MarkStarted()
	stopNow(t, c)
	srv := newPrestopServer(t, c)
	r := waittest.Recv(t, goPrestop(context.Background(), http.MethodGet, srv.URL, ""), eventTimeout, "the preStop answer")
	if r.err != nil || r.status != http.StatusOK || r.body.State != "stopped" {
		t.Errorf("preStop = %d %q, %v", r.status, r.raw, r.err)
	}
}

// Refused calls are all counted but logged boundedly: the first, then one
// line per 10 s with the number not logged in between.
func TestPrestopRefusedLogBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.PrestopToken = "s3cret"
	c, clk, log, logs := newFake(t, cfg)
	c.MarkStarted()
	h := probemod.NewPrestopHandler(c, log)
	refuse := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req := httptest.NewRequest(http.MethodPost, "/prestop", nil)
				req.Header.Set(probemod.PrestopHeader, "guess")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusUnauthorized {
					t.Errorf("wrong token: %d, want 401", w.Code)
				}
			})
		}
		wg.Wait()
	}

	refuse(300)
	if got := h.Refused(); got != 300 {
		t.Errorf("PrestopRefused() = %d, want 300", got)
	}
	refused := logs.FilterMessageSnippet("prestop refused").All()
	if len(refused) != 1 {
		t.Fatalf("%d \"prestop refused\" lines for 300 calls, want 1", len(refused))
	}
	if e := refused[0]; e.Level != zapcore.WarnLevel || e.ContextMap()["suppressed"] != int64(0) {
		t.Errorf("first line: %v %v", e.Level, e.ContextMap())
	}

	clk.Advance(10*time.Second - time.Nanosecond)
	refuse(1)
	clk.Advance(time.Nanosecond)
	refuse(1)
	refused = logs.FilterMessageSnippet("prestop refused").All()
	if len(refused) != 2 {
		t.Fatalf("%d \"prestop refused\" lines, want 2", len(refused))
	}
	if m := refused[1].ContextMap(); m["suppressed"] != int64(300) || m["total"] != int64(302) {
		t.Errorf("second line: %v, want suppressed=300 total=302", m)
	}
	if c.State() >= lifecycle.StateDraining {
		t.Error("a refused call began the drain")
	}
}

// A token that Validate accepts is one a real client can send and the
// handler matches, whatever bytes it holds; one that Validate refuses could
// not be (net/http refuses to send a control byte, and the server's parser
// trims space at either end).
func TestPrestopTokenCarriedAsWritten(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give string
	}{
		{"plain", "s3cret-token"},
		{"inner space and tab", "s3 cr\tet"},
		{"UTF-8", "jeton-ünïcode-✓"},
		{"printable ASCII", "!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~"},
		{"long", strings.Repeat("x", 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := (lifecycle.Config{PrestopToken: tt.give}).Validate(); err != nil {
				t.Fatalf("Validate = %v", err)
			}
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, PrestopToken: tt.give})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopNow(t, c) })
			c.MarkStarted()
			srv := newPrestopServer(t, c)
			if _, err := probemod.CallPrestop(t.Context(), srv.URL, tt.give+"x"); err == nil {
				t.Fatal("a wrong token was accepted")
			}
			if _, err := probemod.CallPrestop(t.Context(), srv.URL, tt.give); err != nil {
				t.Errorf("the right token: %v", err)
			}
		})
	}
	// What the refused ones would do: never match. A server that wants the
	// token exactly as written sees another, or none (net/http's client
	// refuses to send a control byte).
	for _, give := range []string{"s3cret\n", "s3cret\r\n", "s3\x00cret", "s3cret\x7f", "s3cret ", "\ts3cret"} {
		if err := (lifecycle.Config{PrestopToken: give}).Validate(); err == nil || strings.Contains(err.Error(), "s3") {
			t.Errorf("Validate with PrestopToken %q = %v, want an error that does not quote it", give, err)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(probemod.PrestopHeader) != give {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, "{}")
		}))
		if _, err := probemod.CallPrestop(t.Context(), srv.URL, give); err == nil {
			t.Errorf("%q went through HTTP unchanged: no need to refuse it", give)
		}
		srv.Close()
	}
}

// A handler built with no token says so, at WARN, naming PRESTOP_TOKEN;
// one with a token does not.
func TestPrestopWithoutTokenWarns(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "s3cret"} {
		cfg := testConfig()
		cfg.PrestopToken = token
		c, _, log, logs := newFake(t, cfg)
		probemod.NewPrestopHandler(c, log)
		warns := logs.FilterMessageSnippet("PRESTOP_TOKEN").FilterLevelExact(zapcore.WarnLevel).All()
		if want := map[string]int{"": 1, "s3cret": 0}[token]; len(warns) != want {
			t.Errorf("token %q: %d WARN lines naming PRESTOP_TOKEN, want %d; logged: %s", token, len(warns), want, messages(logs))
		}
	}
}

// The helpers of the preStop tests: a coordinator on a fake clock, its
// logger observed.

const (
	s  = time.Second
	ms = time.Millisecond
	// eventTimeout bounds every wait on an event; reaching it is a failure.
	eventTimeout = waitTimeout
)

// testConfig: a fixed drain of 2s, stop deadline D0+6s, teardown deadline
// D0+9s.
func testConfig() lifecycle.Config {
	return lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 2 * s, DrainQuiet: lifecycle.None, TeardownReserve: 3 * s, Margin: s}
}

func newObserved() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// newFake returns a coordinator on a fake clock, its observed logger and
// the logs; it is stopped when the test ends.
func newFake(t *testing.T, cfg lifecycle.Config) (*lifecycle.Coordinator, clocktest.Clock, *zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	clk := clocktest.New()
	log, logs := newObserved()
	c, err := lifecycle.New(cfg, lifecycle.WithClock(clk), lifecycle.WithLogger(log))
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { stopNow(t, c) })
	return c, clk, log, logs
}

// report is the coordinator's report so far.
func report(c *lifecycle.Coordinator) lifecycle.Report {
	r := c.Telemetry().Report()
	return r
}

// waitLog waits until an entry whose message contains snippet was logged.
func waitLog(t *testing.T, logs *observer.ObservedLogs, snippet string) {
	t.Helper()
	waittest.Eventually(t, eventTimeout, func() bool { return logs.FilterMessageSnippet(snippet).Len() > 0 },
		"a log entry containing "+snippet)
}

func messages(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		b.WriteString("\n  " + e.Level.String() + " " + e.Message)
	}
	return b.String()
}
