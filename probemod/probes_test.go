package probemod_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

func TestStartupz(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	_, url := startAdmin(t, c, probemod.Config{}, nil)

	tests := []struct {
		name     string
		give     func()
		wantCode int
		wantBody string
	}{
		{"before MarkStarted", func() {}, 503, lines("[-]starting failed: not started", "startupz check failed")},
		{"after MarkStarted", c.MarkStarted, 200, "ok"},
		{"draining", func() { c.BeginDrain("test") }, 200, "ok"},
	}
	for _, tt := range tests {
		tt.give()
		if code, body := get(t, url+"/startupz"); code != tt.wantCode || body != tt.wantBody {
			t.Errorf("%s: /startupz = %d %q, want %d %q", tt.name, code, body, tt.wantCode, tt.wantBody)
		}
	}
	if code, body := get(t, url+"/startupz?verbose"); code != 200 || body != lines("[+]started ok", "startupz check passed") {
		t.Errorf("/startupz?verbose = %d %q", code, body)
	}
}

func TestReadyzFollowsDrainLivezDoesNot(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	_, url := startAdmin(t, c, probemod.Config{}, []probemod.Check{okCheck("db")})

	tests := []struct {
		name      string
		give      func()
		wantReady int
	}{
		{"starting", func() {}, 503},
		{"serving", c.MarkStarted, 200},
		{"draining", func() { c.BeginDrain("test") }, 503},
		{"drained", func() { waittest.Recv(t, c.Reached(lifecycle.StateDrained), waitTimeout, "the drain's end") }, 503},
		{"stopped", func() { stopNow(t, c) }, 503},
	}
	for _, tt := range tests {
		tt.give()
		if code, _ := get(t, url+"/readyz"); code != tt.wantReady {
			t.Errorf("%s: /readyz = %d, want %d", tt.name, code, tt.wantReady)
		}
		for _, path := range []string{"/livez", "/healthz"} {
			if code, body := get(t, url+path); code != 200 || body != "ok" {
				t.Errorf("%s: %s = %d %q, want 200 ok", tt.name, path, code, body)
			}
		}
	}
	if code, body := get(t, url+"/livez?verbose"); code != 200 || body != lines("[+]ping ok", "livez check passed") {
		t.Errorf("/livez?verbose = %d %q", code, body)
	}
}

// The probes answer GET and HEAD; another method gets 405 from the
// ServeMux, naming the methods allowed.
func TestProbeMethods(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	_, url := startAdmin(t, c, probemod.Config{}, nil)
	for _, path := range []string{"/livez", "/healthz", "/readyz", "/startupz"} {
		tests := []struct {
			method   string
			wantCode int
			wantBody string
		}{
			{http.MethodGet, 200, "ok"},
			{http.MethodHead, 200, ""},
			{http.MethodPost, 405, "Method Not Allowed\n"},
			{http.MethodDelete, 405, "Method Not Allowed\n"},
		}
		for _, tt := range tests {
			if code, body := do(t, tt.method, url+path); code != tt.wantCode || body != tt.wantBody {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, path, code, body, tt.wantCode, tt.wantBody)
			}
		}
	}
	req, err := http.NewRequest(http.MethodPost, url+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("POST /readyz: Allow %q, want %q", got, "GET, HEAD")
	}
}

func TestReadyzVerbose(t *testing.T) {
	t.Parallel()
	fail := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:5432: connect: connection refused") }
	tests := []struct {
		name     string
		give     func(c *lifecycle.Coordinator) // brings the coordinator to its state
		query    string
		checks   []probemod.Check
		wantCode int
		wantBody func(c *lifecycle.Coordinator) string
	}{
		{
			name: "serving, all pass", give: (*lifecycle.Coordinator).MarkStarted, query: "?verbose",
			checks:   []probemod.Check{okCheck("db"), okCheck("cache")},
			wantCode: 200,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[+]serving ok", "[+]cache ok", "[+]db ok", "readyz check passed")
			},
		},
		{
			name: "verbose with a value among other keys", give: (*lifecycle.Coordinator).MarkStarted, query: "?x=1&verbose=false",
			checks:   []probemod.Check{okCheck("db")},
			wantCode: 200,
			wantBody: func(*lifecycle.Coordinator) string { return lines("[+]serving ok", "[+]db ok", "readyz check passed") },
		},
		{
			name: "not verbose", give: (*lifecycle.Coordinator).MarkStarted, query: "?verbosely",
			checks:   []probemod.Check{okCheck("db")},
			wantCode: 200,
			wantBody: func(*lifecycle.Coordinator) string { return "ok" },
		},
		{
			name: "a check fails", give: (*lifecycle.Coordinator).MarkStarted, query: "?verbose",
			checks:   []probemod.Check{okCheck("cache"), {Name: "db", Check: fail}},
			wantCode: 503,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[+]serving ok", "[+]cache ok",
					"[-]db failed: reason withheld", "readyz check failed")
			},
		},
		{
			name: "a check fails, not verbose", give: (*lifecycle.Coordinator).MarkStarted,
			checks:   []probemod.Check{okCheck("cache"), {Name: "db", Check: fail}},
			wantCode: 503,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[-]db failed: reason withheld", "readyz check failed")
			},
		},
		{
			name: "starting", give: func(*lifecycle.Coordinator) {}, query: "?verbose",
			checks:   []probemod.Check{okCheck("db")},
			wantCode: 503,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[-]starting failed: not started", "[+]db ok", "readyz check failed")
			},
		},
		{
			name: "draining", give: func(c *lifecycle.Coordinator) { c.MarkStarted(); c.BeginDrain("prestop") }, query: "?verbose",
			checks:   []probemod.Check{okCheck("db")},
			wantCode: 503,
			wantBody: func(c *lifecycle.Coordinator) string {
				return lines("[-]draining failed: draining since "+d0(c)+" (prestop)",
					"[+]db ok", "readyz check failed")
			},
		},
		{
			name: "draining, not verbose: no check runs", give: func(c *lifecycle.Coordinator) { c.MarkStarted(); c.BeginDrain("test") },
			checks:   []probemod.Check{{Name: "db", Check: func(context.Context) error { panic("ran") }}},
			wantCode: 503,
			wantBody: func(c *lifecycle.Coordinator) string {
				return lines("[-]draining failed: draining since "+d0(c)+" (test)",
					"readyz check failed")
			},
		},
		{
			// A stop with nothing before it begins the drain itself.
			name: "stopped", give: func(c *lifecycle.Coordinator) { c.MarkStarted(); _ = hurry(c) }, query: "?verbose",
			checks:   []probemod.Check{okCheck("db")},
			wantCode: 503,
			wantBody: func(c *lifecycle.Coordinator) string {
				return lines("[-]stopped failed: draining since "+d0(c)+" (app stopping)", "[+]db ok", "readyz check failed")
			},
		},
		{
			name: "a check's own reason", give: (*lifecycle.Coordinator).MarkStarted, query: "?verbose",
			checks: []probemod.Check{{Name: "db", Check: func(ctx context.Context) error {
				return fmt.Errorf("check: %w", probemod.WithReason(fail(ctx), "not reachable"))
			}}},
			wantCode: 503,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[+]serving ok", "[-]db failed: not reachable", "readyz check failed")
			},
		},
		{
			name: "a multi-line reason stays on its line", give: (*lifecycle.Coordinator).MarkStarted, query: "?verbose",
			checks: []probemod.Check{{Name: "db", Check: func(context.Context) error {
				return probemod.WithReason(errors.New("boom"), "first\nsecond")
			}}},
			wantCode: 503,
			wantBody: func(*lifecycle.Coordinator) string {
				return lines("[+]serving ok", "[-]db failed: first second", "readyz check failed")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCoordinator(t, lifecycle.Config{DrainDelay: time.Hour, GracePeriod: 2 * time.Hour, IgnoreSignals: true})
			_, url := startAdmin(t, c, probemod.Config{}, tt.checks)
			tt.give(c)
			code, body := get(t, url+"/readyz"+tt.query)
			if want := tt.wantBody(c); code != tt.wantCode || body != want {
				t.Errorf("/readyz%s = %d\n%s\nwant %d\n%s", tt.query, code, body, tt.wantCode, want)
			}
		})
	}
}

// d0 is c's D0 as /readyz writes it.
func d0(c *lifecycle.Coordinator) string {
	return c.Telemetry().Report().D0.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// sequence is a check that returns its errors in turn and counts its runs.
type sequence struct {
	mu   sync.Mutex
	errs []error
	runs atomic.Int64
}

func (s *sequence) check(context.Context) error {
	s.runs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.errs[0]
	if len(s.errs) > 1 {
		s.errs = s.errs[1:]
	}
	return err
}

func TestFailureThreshold(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name      string
		threshold int
		give      []error // one run per probe
		want      []int
	}{
		{"default: the first failure", 0, []error{nil, boom, nil}, []int{200, 503, 200}},
		{"3 after a pass", 3, []error{nil, boom, boom, boom, boom, nil, boom}, []int{200, 200, 200, 503, 503, 200, 200}},
		{"3, never passed: at once", 3, []error{boom, boom, nil, boom}, []int{503, 503, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCoordinator(t, testLifecycle)
			c.MarkStarted()
			seq := &sequence{errs: tt.give}
			_, url := startAdmin(t, c, probemod.Config{CacheTTL: probemod.NoCache, FailureThreshold: tt.threshold},
				[]probemod.Check{{Name: "db", Check: seq.check}})
			var got []int
			for range tt.give {
				code, _ := get(t, url+"/readyz")
				got = append(got, code)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("/readyz codes = %v, want %v", got, tt.want)
			}
			if n := seq.runs.Load(); n != int64(len(tt.give)) {
				t.Errorf("check ran %d times, want %d (no cache)", n, len(tt.give))
			}
		})
	}
}

func TestCacheSharesOneRun(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	var runs atomic.Int64
	release := make(chan struct{})
	slow := func(ctx context.Context) error {
		runs.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, url := startAdmin(t, c, probemod.Config{CacheTTL: time.Hour, CheckTimeout: 5 * time.Second},
		[]probemod.Check{{Name: "db", Check: slow}})

	// Concurrent probes join the one run in flight, or read its result.
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() { codes[i], _ = get(t, url+"/readyz") })
	}
	waittest.Eventually(t, waitTimeout, func() bool { return runs.Load() == 1 }, "the first run")
	close(release)
	wg.Wait()
	for range 20 {
		codes = append(codes, func() int { code, _ := get(t, url+"/readyz"); return code }())
	}
	for i, code := range codes {
		if code != 200 {
			t.Errorf("probe %d = %d, want 200", i, code)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("check ran %d times for 40 probes within the TTL, want 1", n)
	}
}

func TestCacheExpires(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	clk := clocktest.New()
	var runs atomic.Int64
	count := func(context.Context) error { runs.Add(1); return nil }
	p, err := probemod.NewProbes(probemod.Config{CacheTTL: 10 * time.Second}, c,
		[]probemod.Check{{Name: "db", Check: count}}, probemod.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer closeProbes(t, p)
	mux := http.NewServeMux()
	p.Register(mux)

	tests := []struct {
		advance  time.Duration
		wantRuns int64
	}{
		{0, 1},
		{9 * time.Second, 1},
		{time.Second, 2}, // the TTL has passed
		{5 * time.Second, 2},
	}
	for _, tt := range tests {
		clk.Advance(tt.advance)
		if code := serve(mux, "/readyz").Code; code != 200 {
			t.Fatalf("/readyz = %d", code)
		}
		if n := runs.Load(); n != tt.wantRuns {
			t.Errorf("after +%v: %d runs, want %d", tt.advance, n, tt.wantRuns)
		}
	}
}

func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func closeProbes(t *testing.T, p *probemod.Probes) {
	t.Helper()
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestHangingCheckAnswersAtItsTimeout(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	release := make(chan struct{})
	var runs atomic.Int64
	hang := func(context.Context) error { // ignores its context
		runs.Add(1)
		<-release
		return nil
	}
	_, url := startAdmin(t, c, probemod.Config{CacheTTL: probemod.NoCache},
		[]probemod.Check{{Name: "hang", Check: hang, Timeout: 100 * time.Millisecond}, okCheck("db")})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	// A probe that waited for the hanging check for ever would hit this
	// client's timeout, 20 times the check's.
	short := &http.Client{Transport: client.Transport, Timeout: 2 * time.Second}
	tests := []struct {
		name string
		want string
	}{
		{"first probe: the run times out", "[-]hang failed: timed out after 100ms"},
		{"next probe: the same run still hangs", "[-]hang failed: timed out after 100ms, still running"},
	}
	for _, tt := range tests {
		resp, err := short.Get(url + "/readyz?verbose")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body := readAll(t, resp)
		want := lines("[+]serving ok", "[+]db ok", tt.want, "readyz check failed")
		if resp.StatusCode != 503 || body != want {
			t.Errorf("%s: /readyz = %d\n%s\nwant 503\n%s", tt.name, resp.StatusCode, body, want)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs while one hangs, want 1", n)
	}
	close(release)
	waittest.Eventually(t, waitTimeout, func() bool { code, _ := get(t, url+"/readyz"); return code == 200 }, "/readyz 200 once the check returns")
}

func TestCloseWaitsForAHangingRun(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	release := make(chan struct{})
	hang := func(context.Context) error { <-release; return nil }
	p, err := probemod.NewProbes(probemod.Config{CheckTimeout: 50 * time.Millisecond, CacheTTL: probemod.NoCache}, c,
		[]probemod.Check{{Name: "hang", Check: hang}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	if rec := serve(mux, "/readyz"); rec.Code != 503 {
		t.Fatalf("/readyz = %d %q, want 503", rec.Code, rec.Body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 check runs still in flight") {
		t.Errorf("Close with a run hanging = %v, want it named and DeadlineExceeded", err)
	}
	close(release)
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("Close after the run returned = %v", err)
	}
	if rec := serve(mux, "/readyz"); rec.Code != 503 || rec.Body.String() != lines("[-]hang failed: probemod: closed", "readyz check failed") {
		t.Errorf("/readyz after Close = %d %q", rec.Code, rec.Body)
	}
}

func TestPanickingCheckFails(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	p, err := probemod.NewProbes(probemod.Config{}, c,
		[]probemod.Check{{Name: "boom", Check: func(context.Context) error { panic("kaboom") }}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeProbes(t, p)
	mux := http.NewServeMux()
	p.Register(mux)
	if rec := serve(mux, "/readyz"); rec.Code != 503 || rec.Body.String() != lines("[-]boom failed: panicked", "readyz check failed") {
		t.Errorf("/readyz = %d %q", rec.Code, rec.Body)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give probemod.Config
		want string // "" for no error
	}{
		{"zero is the defaults", probemod.Config{}, ""},
		{"no cache", probemod.Config{CacheTTL: probemod.NoCache}, ""},
		{"bad addr", probemod.Config{Addr: "9090"}, `Addr="9090" is not host:port`},
		{"negative timeout", probemod.Config{CheckTimeout: -time.Second}, "CheckTimeout=-1s is negative"},
		{"negative ttl", probemod.Config{CacheTTL: -time.Second}, "CacheTTL=-1s is negative"},
		{"negative threshold", probemod.Config{FailureThreshold: -2}, "FailureThreshold=-2 is negative"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, probemod.ErrConfig)):
			t.Errorf("%s: %v, want an ErrConfig naming %s", tt.name, err, tt.want)
		}
	}
	want := probemod.Config{Addr: ":9090", CheckTimeout: time.Second, CacheTTL: time.Second, FailureThreshold: 1}
	if got := (probemod.Config{}).WithDefaults(); got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}

func TestNewValidatesChecks(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name string
		give []probemod.Check
		want string
	}{
		{"no name", []probemod.Check{{Check: ok}}, `Name="" is empty`},
		{"space", []probemod.Check{{Name: "my db", Check: ok}}, `Name="my db" has a space`},
		{"twice", []probemod.Check{{Name: "db", Check: ok}, {Name: "db", Check: ok}}, `Name="db" registered twice`},
		{"nil func", []probemod.Check{{Name: "db"}}, `check "db": Check is nil`},
		{"negative timeout", []probemod.Check{{Name: "db", Check: ok, Timeout: -1}}, `check "db": Timeout=-1ns is negative`},
	}
	for _, tt := range tests {
		_, err := probemod.New(probemod.Config{}, c, tt.give)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, probemod.ErrConfig) {
			t.Errorf("%s: %v, want an ErrConfig naming %s", tt.name, err, tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"postgres://app:s3cret@db:5432/app?sslmode=disable", "postgres://app:xxxxx@db:5432/app?sslmode=disable"},
		{"postgres://app@db/app", "postgres://app@db/app"},
		{"redis://:s3cret@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"postgres://app:s3cret@db:port/app", "(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := probemod.RedactURL(tt.give); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestCheckLogsOncePerChange(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	boom := errors.New("boom")
	seq := &sequence{errs: []error{nil, boom, boom, boom, nil, nil}}
	_, url := startAdmin(t, c, probemod.Config{CacheTTL: probemod.NoCache}, []probemod.Check{{Name: "db", Check: seq.check}},
		probemod.WithLogger(zap.New(core)))
	for range 6 {
		get(t, url+"/readyz")
	}
	var got []string
	for _, e := range logs.FilterField(zap.String("component", "probe")).FilterFieldKey("check").All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	if want := "[warn check failed info check recovered]"; fmt.Sprint(got) != want {
		t.Errorf("check logs = %v, want %s", got, want)
	}
}

// Probe output, which anyone who reaches the admin port reads, never shows
// a check's error text (hosts, ports, users, databases): it shows "reason
// withheld", or the check's own fixed reason. The log gets the error whole.
func TestCheckErrorLoggedNotShown(t *testing.T) {
	t.Parallel()
	const detail = "failed to connect to `user=orders_app database=orders`: 10.0.0.7:6432 (db-primary.internal): dial error"
	tests := []struct {
		name  string
		check func(context.Context) error
		want  string
	}{
		{"a bare error", func(context.Context) error { return errors.New(detail) }, "[-]db failed: reason withheld"},
		{"a wrapped error", func(context.Context) error { return fmt.Errorf("ping: %w", errors.New(detail)) }, "[-]db failed: reason withheld"},
		{"a reason", func(context.Context) error { return probemod.WithReason(errors.New(detail), "ping failed") }, "[-]db failed: ping failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.InfoLevel)
			c := newCoordinator(t, testLifecycle)
			c.MarkStarted()
			_, url := startAdmin(t, c, probemod.Config{}, []probemod.Check{{Name: "db", Check: tt.check}}, probemod.WithLogger(zap.New(core)))
			for _, path := range []string{"/readyz?verbose", "/readyz"} {
				code, body := get(t, url+path)
				if code != http.StatusServiceUnavailable || !strings.Contains(body, tt.want+"\n") {
					t.Errorf("%s = %d\n%s\nwant 503 with %q", path, code, body, tt.want)
				}
				for _, secret := range []string{"orders", "10.0.0.7", "6432", "db-primary"} {
					if strings.Contains(body, secret) {
						t.Errorf("%s shows %q:\n%s", path, secret, body)
					}
				}
			}
			failed := logs.FilterMessage("check failed").All()
			if len(failed) != 1 || !strings.Contains(fmt.Sprint(failed[0].ContextMap()["error"]), detail) {
				t.Errorf("log: %v, want one \"check failed\" with the whole error", failed)
			}
		})
	}
}
