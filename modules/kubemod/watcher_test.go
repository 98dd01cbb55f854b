package kubemod_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/kubemod"
)

const (
	s            = time.Second
	eventTimeout = 5 * time.Second
	podPath      = "/api/v1/namespaces/shop/pods/web-0"
)

// budget: a fixed 20 s drain (a slow load balancer's), stop deadline
// D0+26s, teardown D0+29s, SIGKILL planned at D0+30s. After the drain:
// stop 6 s, teardown 3 s, margin 1 s.
func budget() lifecycle.Config {
	return lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 20 * s, DrainQuiet: lifecycle.None}
}

// run is one coordinator with a watcher, on a fake clock set to the real
// time (the API's timestamps are real).
type run struct {
	c        *lifecycle.Coordinator
	clk      clocktest.Clock
	w        *kubemod.Watcher
	logs     *observer.ObservedLogs // the watcher's
	stopDL   chan time.Time         // the stop participant's deadline
	teardown chan time.Time         // the teardown hook's deadline
}

func newRun(t *testing.T, cfg kubemod.Config) *run {
	t.Helper()
	r := &run{clk: clocktest.NewAt(time.Now()), stopDL: make(chan time.Time, 1), teardown: make(chan time.Time, 1)}
	c, err := lifecycle.New(budget(), lifecycle.WithClock(r.clk))
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	c.AtStop("http", func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		r.stopDL <- dl
		return nil
	})
	c.AtTeardown("pool", func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		r.teardown <- dl
		return nil
	})
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	if r.w, err = kubemod.New(cfg, c, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stopNow(t) })
	return r
}

// stopNow ends the timeline at once (Stop with an ended context: the
// phases keep their deadlines, nothing waits for them) and waits for the
// report.
func (r *run) stopNow(t *testing.T) lifecycle.Report {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.c.Stop(ctx)
	waittest.Recv(t, r.c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	rep := r.c.Telemetry().Report()
	return rep
}

// drain begins the drain as SIGTERM would and returns D0.
func (r *run) drain() time.Time {
	r.c.MarkStarted()
	r.c.BeginDrain(lifecycle.Reason("signal terminated"))
	return r.c.Telemetry().Report().D0
}

// atD0 returns the watcher's log entries after its start-up line.
func (r *run) atD0(t *testing.T) []observer.LoggedEntry {
	t.Helper()
	all := r.logs.AllUntimed()
	if len(all) == 0 || !strings.Contains(all[0].Message, "pod deadline from the API: on") {
		t.Fatalf("first log line %v, want the start-up line", all)
	}
	return all[1:]
}

// apiServer is an httptest TLS server standing in for the API server, and
// a Config pointing the watcher at it with a token and the server's CA in
// files.
func apiServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, kubemod.Config) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := kubemod.Config{
		PodName:   "web-0",
		Namespace: "shop",
		APIURL:    srv.URL,
		TokenFile: filepath.Join(dir, "token"),
		CAFile:    filepath.Join(dir, "ca.crt"),
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(cfg.CAFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	writeToken(t, cfg, "first-token")
	return srv, cfg
}

func writeToken(t *testing.T, cfg kubemod.Config, token string) {
	t.Helper()
	if err := os.WriteFile(cfg.TokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pod writes a Pod as the API server does (deletionTimestamp in whole
// seconds), with a Date header on the coordinator's clock.
func pod(w http.ResponseWriter, clk clocktest.Clock, deletion *time.Time, grace int64) {
	meta := map[string]any{"name": "web-0", "namespace": "shop", "uid": "0f1e"}
	if deletion != nil {
		meta["deletionTimestamp"] = deletion.UTC().Format(time.RFC3339)
		meta["deletionGracePeriodSeconds"] = grace
	}
	w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Pod", "apiVersion": "v1", "metadata": meta,
		"spec": map[string]any{"nodeName": "node-1"}})
}

// status writes a Status refusal as the API server does.
func status(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": message, "reason": reason, "code": code})
}

// A pod deleted with a 12 s grace period against a 30 s budget: the
// watcher reads the deletion at D0 (with the token as it is then: the
// kubelet rotates it) and the plan moves — the drain shortened first, the
// stop phase, teardown and margin keeping their lengths before the
// deletionTimestamp.
func TestReadMovesThePlan(t *testing.T) {
	t.Parallel()
	var (
		clk  atomic.Pointer[clocktest.Clock]
		kill atomic.Pointer[time.Time]
		auth = make(chan string, 1)
	)
	_, cfg := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != podPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		auth <- r.Header.Get("Authorization")
		pod(w, *clk.Load(), kill.Load(), 12)
	})
	r := newRun(t, cfg)
	clk.Store(&r.clk)
	writeToken(t, cfg, "rotated-token")
	// The pod was deleted a moment before D0 (the kubelet saw it at once).
	k := r.clk.Now().Add(12 * s).Truncate(s)
	kill.Store(&k)
	at := r.drain()
	waittest.Recv(t, r.w.Done(), eventTimeout, "the read at D0")
	if got := waittest.Recv(t, auth, eventTimeout, "the request"); got != "Bearer rotated-token" {
		t.Errorf("Authorization %q, want the token in the file at D0", got)
	}

	// The drain ends at kill − 10 s (the phases after it), not at D0+20s.
	waittest.BlockUntil(t, r.clk.FakeClock, 1, eventTimeout)
	r.clk.Advance(k.Add(-10 * s).Sub(r.clk.Now()))
	waittest.Recv(t, r.c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	rep := r.stopNow(t)
	if got, want := waittest.Recv(t, r.stopDL, eventTimeout, "the stop deadline"), k.Add(-4*s); !got.Equal(want) {
		t.Errorf("stop deadline D0+%v, want D0+%v (deletionTimestamp − teardown 3s − margin 1s)", got.Sub(at), want.Sub(at))
	}
	if got, want := waittest.Recv(t, r.teardown, eventTimeout, "the teardown deadline"), k.Add(-s); !got.Equal(want) {
		t.Errorf("teardown deadline D0+%v, want D0+%v (deletionTimestamp − margin 1s)", got.Sub(at), want.Sub(at))
	}
	if rep.DrainEndedBy != lifecycle.DrainEndedDeadline {
		t.Errorf("drain ended by %q, want %q", rep.DrainEndedBy, lifecycle.DrainEndedDeadline)
	}
	want := lifecycle.GraceShortened{Source: kubemod.Source, Configured: 30 * s, Real: k.Sub(at)}
	if rep.Grace == nil || rep.Grace.Source != want.Source || rep.Grace.Configured != want.Configured || rep.Grace.Real != want.Real {
		t.Errorf("report grace %+v, want %+v", rep.Grace, want)
	}
	logs := r.atD0(t)
	if len(logs) != 1 || logs[0].Message != "pod deadline read" || logs[0].ContextMap()["moved"] != true {
		t.Errorf("logs at D0 %v, want one line: pod deadline read, moved", logs)
	}
}

// What changes nothing: an API server that refuses, does not answer in
// time or is not there, no token, a pod not being deleted or deleted with
// a longer grace period. The plan stays the budget's and one line says
// why — at WARN for a failure, without the token.
func TestReadChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      func(clk *atomic.Pointer[clocktest.Clock]) http.HandlerFunc
		setup     func(t *testing.T, srv *httptest.Server, cfg *kubemod.Config)
		wantLevel zapcore.Level
		want      string // in the message or the error
	}{
		{"403", func(*atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				status(w, http.StatusForbidden, "Forbidden", `pods "web-0" is forbidden: User "system:serviceaccount:shop:web" cannot get resource "pods" in API group "" in the namespace "shop"`)
			}
		}, nil, zapcore.WarnLevel, `403 Forbidden: pods "web-0" is forbidden: User "system:serviceaccount:shop:web" cannot get resource "pods"`},
		{"404", func(*atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				status(w, http.StatusNotFound, "NotFound", `pods "web-0" not found`)
			}
		}, nil, zapcore.WarnLevel, `404 Not Found: pods "web-0" not found (no such pod`},
		{"401", func(*atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
			}
		}, nil, zapcore.WarnLevel, "401 Unauthorized: Unauthorized (the token was refused)"},
		{"hangs past the timeout", func(*atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		}, func(t *testing.T, _ *httptest.Server, cfg *kubemod.Config) { cfg.Timeout = 100 * time.Millisecond },
			zapcore.WarnLevel, "no answer within 100ms (Timeout)"},
		{"absent", nil, func(t *testing.T, srv *httptest.Server, cfg *kubemod.Config) { srv.Close() },
			zapcore.WarnLevel, "connection refused"},
		{"not JSON", func(*atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>proxy error</html>") }
		}, nil, zapcore.WarnLevel, "decoding the pod"},
		{"CA file without a certificate", nil, func(t *testing.T, _ *httptest.Server, cfg *kubemod.Config) {
			cfg.CAFile = filepath.Join(t.TempDir(), "ca.crt")
			if err := os.WriteFile(cfg.CAFile, []byte("not a certificate"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, zapcore.WarnLevel, "API server CA: no PEM certificate in"},
		{"no token", nil, func(t *testing.T, _ *httptest.Server, cfg *kubemod.Config) {
			cfg.TokenFile = filepath.Join(t.TempDir(), "missing")
		}, zapcore.WarnLevel, "service account token: open"},
		{"not being deleted", func(clk *atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { pod(w, *clk.Load(), nil, 0) }
		}, nil, zapcore.InfoLevel, "the pod is not being deleted"},
		{"a longer grace period", func(clk *atomic.Pointer[clocktest.Clock]) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				k := (*clk.Load()).Now().Add(60 * s)
				pod(w, *clk.Load(), &k, 60)
			}
		}, nil, zapcore.InfoLevel, "pod deadline read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var clk atomic.Pointer[clocktest.Clock]
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("unexpected request") })
			if tt.give != nil {
				h = tt.give(&clk)
			}
			srv, cfg := apiServer(t, h)
			if tt.setup != nil {
				tt.setup(t, srv, &cfg)
			}
			r := newRun(t, cfg)
			clk.Store(&r.clk)
			d0 := r.drain()
			waittest.Recv(t, r.w.Done(), eventTimeout, "the read at D0")
			rep := r.stopNow(t)
			if got := waittest.Recv(t, r.stopDL, eventTimeout, "the stop deadline"); !got.Equal(d0.Add(26 * s)) {
				t.Errorf("stop deadline D0+%v, want the budget's D0+26s", got.Sub(d0))
			}
			if rep.Grace != nil {
				t.Errorf("report grace %+v, want none", rep.Grace)
			}
			logs := r.atD0(t)
			if len(logs) != 1 {
				t.Fatalf("%d log lines at D0, want 1: %v", len(logs), logs)
			}
			e := logs[0]
			line := e.Message + " " + fmt.Sprint(e.ContextMap()["error"])
			if e.Level != tt.wantLevel || !strings.Contains(line, tt.want) {
				t.Errorf("logged %v %q, want %v with %q", e.Level, line, tt.wantLevel, tt.want)
			}
			if strings.Contains(fmt.Sprint(e.ContextMap()), "token\n") || strings.Contains(line, "first-token") {
				t.Errorf("the token is in the log: %q", line)
			}
			t.Logf("%v %s", e.Level, line)
		})
	}
}

// The read never holds up the stop: a stop phase that begins while the API
// server has not answered cancels the read (within its timeout of a
// minute), waits for its goroutine, and the line says why.
func TestStopPhaseCancelsTheRead(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	_, cfg := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	cfg.Timeout = time.Minute
	r := newRun(t, cfg)
	r.drain()
	waittest.Recv(t, arrived, eventTimeout, "the request")
	if waittest.Closed(r.w.Done()) {
		t.Fatal("the read ended before the stop phase: nothing to test")
	}
	// The stop as fx asks for it (its context lasts), at the drain's end.
	stopped := make(chan error, 1)
	go func() { stopped <- r.c.Stop(context.Background()) }()
	waittest.BlockUntil(t, r.clk.FakeClock, 1, eventTimeout)
	r.clk.Advance(20 * s)
	if err := waittest.Recv(t, stopped, eventTimeout, "the stop"); err != nil {
		t.Fatal(err)
	}
	rep := r.c.Telemetry().Report()
	if !waittest.Closed(r.w.Done()) {
		t.Error("the report is out and the read is still under way")
	}
	var hook *lifecycle.HookReport
	for i := range rep.Hooks {
		if rep.Hooks[i].Name == kubemod.StopParticipant {
			hook = &rep.Hooks[i]
		}
	}
	if hook == nil || hook.Overran || hook.Err != "" {
		t.Errorf("stop participant %q: %+v, want returned in time", kubemod.StopParticipant, hook)
	}
	logs := r.atD0(t)
	if len(logs) != 1 || logs[0].Level != zapcore.WarnLevel ||
		!strings.Contains(fmt.Sprint(logs[0].ContextMap()["error"]), "the stop phase began before the API server answered") {
		t.Errorf("logs at D0 %v, want one WARN saying the stop phase began first", logs)
	}
}

// Without a pod name the watcher is off: one line at start-up, no request,
// and nothing at D0.
func TestOff(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(budget())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	w, err := kubemod.New(kubemod.Config{}, c, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if !waittest.Closed(w.Done()) {
		t.Error("Done() is open for a watcher that is off")
	}
	c.MarkStarted()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(ctx)
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report")
	all := logs.AllUntimed()
	if len(all) != 1 || all[0].Level != zapcore.InfoLevel || !strings.Contains(all[0].Message, "off (no pod name: set POD_NAME") {
		t.Errorf("logs %v, want one INFO line saying it is off", all)
	}
	rep := c.Telemetry().Report()
	for _, h := range rep.Hooks {
		if h.Name == kubemod.StopParticipant {
			t.Errorf("stop participant %q registered while off", h.Name)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give kubemod.Config
		want string
	}{
		{"negative timeout", kubemod.Config{PodName: "p", Timeout: -s}, "kubemod: Timeout=-1s is negative"},
		{"http URL", kubemod.Config{PodName: "p", APIURL: "http://10.96.0.1:443"}, `kubemod: APIURL="http://10.96.0.1:443" is not an https://host[:port] URL`},
		{"no host", kubemod.Config{PodName: "p", APIURL: "https://"}, `APIURL="https://"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := lifecycle.New(budget())
			if err != nil {
				t.Fatal(err)
			}
			_, err = kubemod.New(tt.give, c, nil)
			if err == nil || err.Error() != tt.want && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want %q", err, tt.want)
			}
		})
	}
	got := kubemod.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"POD_NAME": "web-0", "POD_NAMESPACE": "shop"}[k]
		return v, ok
	})
	if got != (kubemod.Config{PodName: "web-0", Namespace: "shop"}) {
		t.Errorf("FromEnv = %+v", got)
	}
}
