package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", to look at the schema

	"github.com/drainfx/drainfx/internal/proctest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/modules/sqlmod"
)

var bin string

func TestMain(m *testing.M) { proctest.Main(m, ".", &bin) }

// waitTimeout bounds every wait; reaching it is a failure.
const waitTimeout = 10 * time.Second

type service struct{ proctest.Service }

// start runs the service on free ports with its SQLite file in a temporary
// directory, and waits until it is ready.
func start(t *testing.T, env ...string) service {
	t.Helper()
	// A fixed drain: these tests time the drain to the DrainDelay they set
	// (the adaptive drain, on by default, is timed by the rollout check).
	return service{proctest.StartService(t, bin, append([]string{"DATA_DIR=" + t.TempDir(), "SHUTDOWN_DRAIN_QUIET=0s"}, env...)...)}
}

func (s service) wsURL(path string) string {
	return fmt.Sprintf("ws://127.0.0.1:%d%s", s.Port, path)
}

// stop sends SIGTERM and wants exit 0; it returns SIGTERM→exit.
func (s service) stop(t *testing.T) time.Duration {
	t.Helper()
	sent := s.Signal(t, syscall.SIGTERM)
	code, at := s.Wait(t, waitTimeout)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	return at.Sub(sent)
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// do sends one request (see proctest.Do) and returns the status and body.
func do(t *testing.T, c *http.Client, method, url, body string, header ...string) (int, string) {
	t.Helper()
	resp, text := proctest.Do(t, c, method, url, body, header...)
	return resp.StatusCode, text
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=0s")
	c := newClient(t)

	tests := []struct {
		name       string
		giveMethod string
		giveURL    string
		giveBody   string
		wantStatus int
		wantBody   string // "" = not checked
	}{
		{"root", "GET", s.URL("/"), "", 200, "ok"},
		{"echo", "POST", s.URL("/echo"), "hello, drainfx", 200, "hello, drainfx"},
		{"echo empty", "POST", s.URL("/echo"), "", 200, ""},
		{"slow", "GET", s.URL("/slow?ms=50"), "", 200, "ok"},
		{"slow zero", "GET", s.URL("/slow?ms=0"), "", 200, "ok"},
		{"slow bad", "GET", s.URL("/slow?ms=abc"), "", 400, ""},
		{"slow negative", "GET", s.URL("/slow?ms=-1"), "", 400, ""},
		{"slow max", "GET", s.URL("/slow?ms=60001"), "", 400, ""},
		{"slow overflow", "GET", s.URL("/slow?ms=9223372036854775807"), "", 400, ""},
		{"slow past int64", "GET", s.URL("/slow?ms=9223372036854775808"), "", 400, ""},
		{"slow empty", "GET", s.URL("/slow"), "", 400, ""},
		{"first hit", "POST", s.URL("/hits"), "", 200, "1"},
		{"second hit", "POST", s.URL("/hits"), "", 200, "2"},
		{"hits", "GET", s.URL("/hits"), "", 200, "2"},
		{"livez", "GET", s.AdminURL("/livez"), "", 200, ""},
		{"healthz", "GET", s.AdminURL("/healthz"), "", 200, ""},
		{"readyz", "GET", s.AdminURL("/readyz"), "", 200, ""},
		{"startupz", "GET", s.AdminURL("/startupz"), "", 200, ""},
		{"not public", "GET", s.URL("/readyz"), "", 404, ""},
		{"not admin", "GET", s.AdminURL("/"), "", 404, ""},
	}
	for _, tt := range tests {
		status, body := do(t, c, tt.giveMethod, tt.giveURL, tt.giveBody)
		if status != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
			t.Errorf("%s: %s %s = %d %q, want %d %q", tt.name, tt.giveMethod, tt.giveURL, status, body, tt.wantStatus, tt.wantBody)
		}
	}
	if _, body := do(t, c, "GET", s.AdminURL("/readyz?verbose"), ""); !strings.Contains(body, "[+]db ok") {
		t.Errorf("/readyz?verbose has no db check:\n%s", body)
	}
	// The presence worker has written its row by the time the service is ready.
	waittest.Eventually(t, waitTimeout, func() bool {
		_, body := do(t, c, "GET", s.URL("/instances"), "")
		return strings.TrimSpace(body) != ""
	}, "the presence row")

	// WebSocket echo
	ws, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws"), nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	defer ws.Close()
	for _, msg := range []string{"one", "two", strings.Repeat("x", 10000)} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("ws write: %v", err)
		}
		_, got, err := ws.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("ws echo of %.10q = %.10q, %v", msg, got, err)
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))

	// SSE: "data: N" every 100 ms
	resp, err := c.Get(s.URL("/events"))
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Errorf("GET /events = %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var datas []string
	for len(datas) < 3 && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			datas = append(datas, d)
		}
	}
	resp.Body.Close()
	if strings.Join(datas, ",") != "0,1,2" {
		t.Errorf("events = %q, want 0,1,2", datas)
	}

	if took := s.stop(t); took > 2*time.Second {
		t.Errorf("SIGTERM→exit %v with no drain delay and nothing in flight", took)
	}
}

// wsResult is how a WebSocket client's session ended.
type wsResult struct {
	echoed int
	err    error
}

// wsClient echoes messages over /ws until the session ends.
func wsClient(t *testing.T, s service, ready chan<- struct{}) <-chan wsResult {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws"), nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	done := make(chan wsResult, 1)
	go func() {
		defer conn.Close()
		var r wsResult
		for i := 0; ; i++ {
			msg := fmt.Sprint("m", i)
			if r.err = conn.WriteMessage(websocket.TextMessage, []byte(msg)); r.err != nil {
				break
			}
			var got []byte
			if _, got, r.err = conn.ReadMessage(); r.err != nil {
				break
			}
			if string(got) != msg {
				r.err = fmt.Errorf("echo %q for %q", got, msg)
				break
			}
			if r.echoed++; r.echoed == 1 {
				close(ready)
			}
			time.Sleep(20 * time.Millisecond) // pace, not a wait for an event
		}
		done <- r
	}()
	return done
}

// sseResult is how an SSE stream ended.
type sseResult struct {
	data      int    // data events read
	lastEvent string // the type of the last event with a type line
	err       error  // io.EOF for a clean end
}

func sseClient(t *testing.T, c *http.Client, s service, ready chan<- struct{}) <-chan sseResult {
	t.Helper()
	resp, err := c.Get(s.URL("/events"))
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	done := make(chan sseResult, 1)
	go func() {
		defer resp.Body.Close()
		var r sseResult
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				r.err = err
				break
			}
			if _, ok := strings.CutPrefix(line, "data: "); ok && r.lastEvent == "" {
				if r.data++; r.data == 1 {
					close(ready)
				}
			}
			if ev, ok := strings.CutPrefix(line, "event: "); ok {
				r.lastEvent = strings.TrimSpace(ev)
			}
		}
		done <- r
	}()
	return done
}

type loadResult struct {
	ok, closes int
	failures   []string
}

// errMoved is the "proxy" refusing a new connection once it has caught up
// with the drain: the client would go to another pod.
var errMoved = errors.New("moved to another pod")

// keepAlive sends GET / on keep-alive connections until stop is closed or,
// once caughtUp is closed (the proxies no longer route new connections
// here), it would need a new connection. Every failure is a loss.
func keepAlive(url string, caughtUp, stop <-chan struct{}) <-chan loadResult {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if waittest.Closed(caughtUp) {
			return nil, errMoved
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	c := &http.Client{Transport: tr, Timeout: waitTimeout}
	done := make(chan loadResult, 1)
	go func() {
		defer tr.CloseIdleConnections()
		var r loadResult
		for {
			select {
			case <-stop:
				done <- r
				return
			default:
			}
			resp, err := c.Get(url)
			if errors.Is(err, errMoved) {
				done <- r
				return
			}
			if err != nil {
				r.failures = append(r.failures, err.Error())
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil || resp.StatusCode != 200 || string(body) != "ok":
				r.failures = append(r.failures, fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
			default:
				r.ok++
				if resp.Close {
					r.closes++
				}
			}
			time.Sleep(10 * time.Millisecond) // pace
		}
	}()
	return done
}

// SIGTERM under load: a WebSocket client, an SSE reader, a keep-alive
// client and a slow request in flight. Nothing is lost: the WebSocket
// closes with 1001, the SSE stream gets its final event and ends cleanly,
// the slow request answers 200, the process exits 0.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	const drain = time.Second
	s := start(t, "SHUTDOWN_DRAIN_DELAY=1s")

	wsReady, sseReady := make(chan struct{}), make(chan struct{})
	wsDone := wsClient(t, s, wsReady)
	sseDone := sseClient(t, newClient(t), s, sseReady)
	caughtUp, stopLoad := make(chan struct{}), make(chan struct{})
	loadDone := keepAlive(s.URL("/"), caughtUp, stopLoad)
	waittest.Recv(t, wsReady, waitTimeout, "the first echo")
	waittest.Recv(t, sseReady, waitTimeout, "the first event")

	// The slow request outlives the drain: it is answered in the stop phase.
	// It is in flight once written: the server reads it during the drain.
	slowDone, wrote := make(chan string, 1), make(chan struct{})
	slowClient := newClient(t)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.URL("/slow?ms=1500"), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) },
		}))
		resp, err := slowClient.Do(req)
		if err != nil {
			slowDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slowDone <- fmt.Sprintf("%d %s %v", resp.StatusCode, b, err)
	}()
	waittest.Recv(t, wrote, waitTimeout, "the slow request written")

	sent := s.Signal(t, syscall.SIGTERM)
	// The proxies catch up half-way through the drain (the endpoint
	// propagation delay); from then on new connections go elsewhere.
	time.AfterFunc(drain/2, func() { close(caughtUp) })
	s.WaitHTTP(t, s.AdminURL("/readyz"), http.StatusServiceUnavailable, time.Second)
	if status, _ := do(t, newClient(t), "GET", s.AdminURL("/livez"), ""); status != 200 {
		t.Errorf("/livez while draining = %d, want 200", status)
	}

	code, exited := s.Wait(t, waitTimeout)
	took := exited.Sub(sent)
	close(stopLoad)

	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if got := waittest.Recv(t, slowDone, waitTimeout, "the slow response"); got != "200 ok <nil>" {
		t.Errorf("slow request = %s, want 200 ok", got)
	}
	ws := waittest.Recv(t, wsDone, waitTimeout, "the WebSocket's end")
	if ce, ok := errors.AsType[*websocket.CloseError](ws.err); !ok || ce.Code != websocket.CloseGoingAway {
		t.Errorf("WebSocket ended with %v after %d echoes, want close 1001", ws.err, ws.echoed)
	}
	sse := waittest.Recv(t, sseDone, waitTimeout, "the SSE stream's end")
	if sse.err != io.EOF || sse.lastEvent != "shutdown" {
		t.Errorf("SSE ended with %v, last event %q, after %d events; want the shutdown event, then io.EOF", sse.err, sse.lastEvent, sse.data)
	}
	load := waittest.Recv(t, loadDone, waitTimeout, "the keep-alive client")
	if len(load.failures) > 0 {
		t.Errorf("keep-alive client: %d failed requests: %q", len(load.failures), load.failures)
	}
	if load.closes == 0 {
		t.Error("keep-alive client: no response with Connection: close during the drain")
	}
	if !strings.Contains(s.Output(), `"exitCode":0`) {
		t.Errorf("the shutdown report is missing or not clean")
	}
	t.Logf("SIGTERM→exit %v (drain 1s, slow request 1.5s); %d echoes, %d events, %d keep-alive requests (%d with Connection: close)",
		took.Round(time.Millisecond), ws.echoed, sse.data, load.ok, load.closes)
	if took < drain || took > 5*time.Second {
		t.Errorf("SIGTERM→exit %v, want after the drain (1s) and well within the grace period", took)
	}
}

// The kubelet's sequence with a token: preStop (blocks for the drain), then
// SIGTERM, which stops at once.
func TestPrestopThenSIGTERM(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=500ms", "PRESTOP_TOKEN=s3cret")
	c := newClient(t)
	if status, _ := do(t, c, "GET", s.AdminURL("/prestop"), ""); status != http.StatusUnauthorized {
		t.Errorf("/prestop without the token = %d, want 401", status)
	}
	began := time.Now()
	status, body := do(t, c, "GET", s.AdminURL("/prestop"), "", "X-Prestop-Token", "s3cret")
	if waited := time.Since(began); status != 200 || waited < 500*time.Millisecond {
		t.Errorf("/prestop = %d %s after %v, want 200 after the 500ms drain", status, body, waited)
	}
	took := s.stop(t)
	if took > time.Second {
		t.Errorf("SIGTERM after preStop → exit %v, want at once (no second drain)", took)
	}
	t.Logf("SIGTERM after preStop → exit %v", took.Round(time.Millisecond))
	if strings.Contains(s.Output(), "s3cret") {
		t.Error("the token appears in the log")
	}
}

func TestBadEnvExits1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    []string
		want    string
		wantNot string
	}{
		{"not a duration", []string{"SHUTDOWN_DRAIN_DELAY=abc"}, `SHUTDOWN_DRAIN_DELAY="abc"`, ""},
		{"budget over the grace period", []string{"SHUTDOWN_GRACE_PERIOD=5s"}, `SHUTDOWN_GRACE_PERIOD="5s"`, ""},
		{"bad port", []string{"ADMIN_PORT=70000"}, `ADMIN_PORT="70000"`, ""},
		{"PORT = ADMIN_PORT", []string{"PORT=7070", "ADMIN_PORT=7070"}, `PORT="7070", ADMIN_PORT="7070"`, ""},
		{"bad database URL", []string{"DATABASE_URL=mysql://app:hunter2@db/app"}, "DATABASE_URL:", "hunter2"},
		{"password with a slash", []string{"DATABASE_URL=postgres://app:/s3cr3tpw@127.0.0.1:1/db"}, "DATABASE_URL:", "s3cr3tpw"},
		{"password like a port", []string{"DATABASE_URL=postgres://app:12345/pw@127.0.0.1:1/db"}, "DATABASE_URL:", "12345"},
		// Malformed URLs: one line at once, not retries of an unreachable server.
		{"port out of range", []string{"DATABASE_URL=postgres://u:hunter2@127.0.0.1:99999/db"}, `DATABASE_URL: sqlmod: DSN="postgres://u:xxxxx@127.0.0.1:99999/db": port "99999"`, "hunter2"},
		{"bad escape in the password", []string{"DATABASE_URL=postgres://u:hunter2%zz@127.0.0.1:5432/db"}, "DATABASE_URL: sqlmod: DSN=\"postgres://u:xxxxx@127.0.0.1:5432/db\": the password: a '%'", "hunter2"},
		{"unclosed '['", []string{"DATABASE_URL=postgres://u:hunter2@[::1:5432/db"}, "DATABASE_URL: sqlmod: DSN=\"postgres://u:xxxxx@[::1:5432/db\": an IPv6 host with '[' and no ']'", "hunter2"},
		{"token with a newline", []string{"PRESTOP_TOKEN=hunter2\n"}, "PRESTOP_TOKEN (8 bytes) has a newline at its end", "hunter2"},
		{"grace period of 292 years", []string{"SHUTDOWN_GRACE_PERIOD=2562047h"}, `SHUTDOWN_GRACE_PERIOD="2562047h": above 24h0m0s`, ""},
		{"bad data dir", []string{"DATA_DIR=/tmp/a?b"}, `DATA_DIR="/tmp/a?b"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := proctest.Start(t, bin, append([]string{"DATA_DIR=" + t.TempDir()}, tt.give...)...) // tt.give wins
			code, _ := p.Wait(t, waitTimeout)
			out := strings.TrimSpace(p.Output())
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out, tt.want) || strings.Contains(out, "\n") {
				t.Errorf("output %q, want one line naming %s", out, tt.want)
			}
			if tt.wantNot != "" && strings.Contains(out, tt.wantNot) {
				t.Errorf("output %q shows the password", out)
			}
		})
	}
}

// defaultPostgresDSN is what internal/ci/postgres.sh sets up (as for the
// sqlmod tests); DRAINFX_TEST_POSTGRES_DSN points elsewhere.
const defaultPostgresDSN = "postgres://drainfx:drainfx@127.0.0.1:5432/drainfx?sslmode=disable"

// postgresSchema returns a DSN whose search_path is a fresh schema, dropped
// at cleanup. Without a server the test is skipped, or fails under CI=true.
func postgresSchema(t *testing.T) (dsn string, db *sql.DB) {
	t.Helper()
	dsn = os.Getenv("DRAINFX_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultPostgresDSN
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		msg := fmt.Sprintf("postgres: no server at %s: install Debian package postgresql and run internal/ci/postgres.sh, or set DRAINFX_TEST_POSTGRES_DSN",
			sqlmod.RedactDSN(dsn))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	schema := fmt.Sprintf("service_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	if _, err := db.ExecContext(ctx, "SET search_path TO "+schema); err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // the search_path is per connection
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema, db
}

// With DATABASE_URL the service runs on PostgreSQL: the counter, the
// presence worker (removed in the teardown), the readiness check; the
// password never reaches the log.
func TestPostgres(t *testing.T) {
	t.Parallel()
	dsn, db := postgresSchema(t)
	s := start(t, "SHUTDOWN_DRAIN_DELAY=0s", "DATABASE_URL="+dsn)
	c := newClient(t)
	for _, want := range []string{"1", "2"} {
		if status, body := do(t, c, "POST", s.URL("/hits"), ""); status != 200 || body != want {
			t.Errorf("POST /hits = %d %q, want 200 %s", status, body, want)
		}
	}
	if _, body := do(t, c, "GET", s.AdminURL("/readyz?verbose"), ""); !strings.Contains(body, "[+]db ok") {
		t.Errorf("/readyz?verbose has no db check:\n%s", body)
	}
	waittest.Eventually(t, waitTimeout, func() bool {
		_, body := do(t, c, "GET", s.URL("/instances"), "")
		return strings.TrimSpace(body) != ""
	}, "the presence row")
	s.stop(t)
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM instances`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("presence rows after the stop: %d, %v; want 0", rows, err)
	}
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(s.Output(), pw+"@") {
			t.Error("the database password appears in the log")
		}
	}
}

// A database that cannot be reached fails start-up within fx's start
// timeout (15 s): exit 1, the DSN named with its password masked.
func TestUnreachableDatabaseExits1(t *testing.T) {
	t.Parallel()
	port := proctest.FreePort(t) // nothing listens there
	dsn := fmt.Sprintf("postgres://app:hunter2@127.0.0.1:%d/app?sslmode=disable", port)
	began := time.Now()
	p := proctest.Start(t, bin, "DATA_DIR="+t.TempDir(), "DATABASE_URL="+dsn,
		fmt.Sprintf("PORT=%d", proctest.FreePort(t)), fmt.Sprintf("ADMIN_PORT=%d", proctest.FreePort(t)))
	code, at := p.Wait(t, 30*time.Second)
	out := p.Output()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if took := at.Sub(began); took > 16*time.Second {
		t.Errorf("exit after %v, want within the 15 s start timeout", took)
	}
	if want := fmt.Sprintf("postgres://app:xxxxx@127.0.0.1:%d/app", port); !strings.Contains(out, want) {
		t.Errorf("output does not name %s:\n%s", want, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("output shows the password:\n%s", out)
	}
}

// The exec form of the hook: `service prestop` in the container's
// environment (the token from a Secret) drains the running service and
// returns when the drain has ended; with a wrong token it fails and
// changes nothing.
func TestPrestopCommand(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=500ms", "PRESTOP_TOKEN=s3cret")
	env := []string{fmt.Sprintf("ADMIN_PORT=%d", s.Admin), "SHUTDOWN_DRAIN_DELAY=500ms"}

	wrong := proctest.StartArgs(t, bin, []string{"prestop"}, append(env, "PRESTOP_TOKEN=guess")...)
	if code, _ := wrong.Wait(t, waitTimeout); code != 1 || !strings.Contains(wrong.Output(), "401 Unauthorized") ||
		strings.Count(strings.TrimSpace(wrong.Output()), "\n") != 0 {
		t.Errorf("prestop with a wrong token: exit %d, output %q; want 1 naming 401", code, wrong.Output())
	}
	if status, _ := do(t, newClient(t), "GET", s.AdminURL("/readyz"), ""); status != http.StatusOK {
		t.Errorf("/readyz after a refused prestop = %d, want 200", status)
	}

	began := time.Now()
	hook := proctest.StartArgs(t, bin, []string{"prestop"}, append(env, "PRESTOP_TOKEN=s3cret")...)
	code, at := hook.Wait(t, waitTimeout)
	if code != 0 || !strings.Contains(hook.Output(), "drained (prestop") {
		t.Errorf("prestop: exit %d, output %q; want 0 and drained", code, hook.Output())
	}
	if waited := at.Sub(began); waited < 500*time.Millisecond {
		t.Errorf("prestop returned after %v, before the 500ms drain", waited)
	}
	if took := s.stop(t); took > time.Second {
		t.Errorf("SIGTERM after the prestop command → exit %v, want at once", took)
	}
}

// procStatusKiB reads a field in kB (VmHWM, VmRSS) of /proc/PID/status.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				t.Fatalf("%s: %q: %v", field, v, err)
			}
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// One WebSocket frame whose header announces 256 MiB: the server answers
// 1009 (message too big) from the header alone, and its memory stays flat.
func TestWebSocketOversizedFrame(t *testing.T) {
	t.Parallel()
	const maxPeak = 100 << 10 // KiB
	s := start(t, "SHUTDOWN_DRAIN_DELAY=0s")
	ws, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws"), nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	defer ws.Close()
	before := procStatusKiB(t, s.Pid(), "VmHWM")

	// A masked binary frame, FIN set, with a 64-bit length of 256 MiB, and
	// the first bytes of its payload.
	frame := []byte{0x82, 0x80 | 127}
	frame = binary.BigEndian.AppendUint64(frame, 256<<20)
	frame = append(frame, 1, 2, 3, 4) // masking key
	frame = append(frame, make([]byte, 4096)...)
	if _, err := ws.NetConn().Write(frame); err != nil {
		t.Fatalf("write the frame: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitTimeout))
	_, _, err = ws.ReadMessage()
	if ce, ok := errors.AsType[*websocket.CloseError](err); !ok || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("read after the frame: %v, want close 1009", err)
	}
	// The session has ended: a new one still echoes.
	ws2, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws"), nil)
	if err != nil {
		t.Fatalf("dial /ws again: %v", err)
	}
	defer ws2.Close()
	if err := ws2.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := ws2.ReadMessage(); err != nil || string(p) != "still here" {
		t.Errorf("echo after the oversized frame: %q, %v", p, err)
	}
	_ = ws2.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))

	peak, rss := procStatusKiB(t, s.Pid(), "VmHWM"), procStatusKiB(t, s.Pid(), "VmRSS")
	t.Logf("peak RSS (VmHWM) %d KiB before the frame, %d KiB after; RSS now %d KiB", before, peak, rss)
	if peak > maxPeak {
		t.Errorf("peak RSS %d KiB, want under %d KiB", peak, maxPeak)
	}
	s.stop(t)
}

// A database password never reaches the output, whatever the URL's shape:
// refused at once when pgx would misread it, or masked in every log line
// of the start-up retries (here with a password a URL parser takes for a
// port and a query, which pgx reads as a password).
func TestDatabasePasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       string // DATABASE_URL, with %d for a closed port
		wantSecret string
		wantExit   bool // exits by itself (a refused URL); else it retries until SIGTERM
	}{
		{"slash", "postgres://app:/s3cr3tpw@127.0.0.1:%d/db", "s3cr3tpw", true},
		{"digits then a slash", "postgres://app:12345/pw@127.0.0.1:%d/db", "12345", true},
		{"at sign", "postgres://app:p@ss3cr3t@127.0.0.1:%d/db", "ss3cr3t", true},
		{"question mark", "postgres://app:12345?s3cr3t@127.0.0.1:%d/db?sslmode=disable", "s3cr3t", false},
		{"bad escape", "postgres://app:s3cr3t%%zz@127.0.0.1:%d/db", "s3cr3t", true},
		{"query", "postgres://app@127.0.0.1:%d/db?sslmode=disable&password=s3cr3t;x", "s3cr3t", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := fmt.Sprintf(tt.give, proctest.FreePort(t)) // nothing listens there
			p := proctest.Start(t, bin, "DATA_DIR="+t.TempDir(), "DATABASE_URL="+dsn, "SHUTDOWN_DRAIN_DELAY=0s",
				fmt.Sprintf("PORT=%d", proctest.FreePort(t)), fmt.Sprintf("ADMIN_PORT=%d", proctest.FreePort(t)))
			if !tt.wantExit {
				p.WaitOutput(t, `"attempt":2`, waitTimeout) // a few lines naming the database
				p.Signal(t, syscall.SIGTERM)
			}
			code, _ := p.Wait(t, 20*time.Second)
			out := p.Output()
			if code == 0 {
				t.Errorf("exit code 0, want a failure")
			}
			if !strings.Contains(out, "xxxxx") {
				t.Errorf("output does not name the database with its password masked:\n%s", out)
			}
			if strings.Contains(out, tt.wantSecret) {
				t.Errorf("output shows the password %q:\n%s", tt.wantSecret, out)
			}
		})
	}
}

// SIGTERM while the start-up still waits for an unreachable database ends
// the start at once: the process exits well inside the grace period (not at
// fx's 15 s start timeout, after the kubelet's SIGKILL), with a line saying
// why.
func TestSIGTERMDuringStartup(t *testing.T) {
	t.Parallel()
	dsn := fmt.Sprintf("postgres://app:hunter2@127.0.0.1:%d/app?sslmode=disable", proctest.FreePort(t)) // nothing listens there
	p := proctest.Start(t, bin, "DATA_DIR="+t.TempDir(), "DATABASE_URL="+dsn,
		"SHUTDOWN_GRACE_PERIOD=8s", "SHUTDOWN_DRAIN_DELAY=2s",
		fmt.Sprintf("PORT=%d", proctest.FreePort(t)), fmt.Sprintf("ADMIN_PORT=%d", proctest.FreePort(t)))
	p.WaitOutput(t, "database not reachable yet", waitTimeout)
	sent := p.Signal(t, syscall.SIGTERM)
	code, at := p.Wait(t, waitTimeout)
	took := at.Sub(sent)
	t.Logf("SIGTERM during start-up → exit %d after %v", code, took.Round(time.Millisecond))
	if code == 0 {
		t.Error("exit code 0 for a start that did not finish")
	}
	if took > 3*time.Second {
		t.Errorf("SIGTERM→exit %v, want within 3s (grace period 8s)", took)
	}
	out := p.Output()
	if !strings.Contains(out, "sqlmod: start cut short: the drain began (signal terminated)") {
		t.Errorf("no line says the start was cut short by the drain:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("output shows the password:\n%s", out)
	}
}

// A DATA_DIR the process cannot write exits 1 at once with one line naming
// DATA_DIR and the path, instead of being retried as an unreachable
// database until the start timeout. (The tests may run as root, whom no
// file mode stops: the directories here are unwritable for anyone.)
func TestUnwritableDataDirExits1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(t *testing.T) string // the DATA_DIR
	}{
		{"under a regular file", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "a-file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "data")
		}},
		{"database file is a directory", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, sqlmod.DefaultSQLiteFile), 0o750); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"no files allowed", func(t *testing.T) string {
			if _, err := os.Stat("/proc/self"); err != nil {
				t.Skip("no /proc")
			}
			return "/proc"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tt.give(t)
			began := time.Now()
			p := proctest.Start(t, bin, "DATA_DIR="+dir,
				fmt.Sprintf("PORT=%d", proctest.FreePort(t)), fmt.Sprintf("ADMIN_PORT=%d", proctest.FreePort(t)))
			code, at := p.Wait(t, waitTimeout)
			took := at.Sub(began)
			t.Logf("exit %d after %v", code, took.Round(time.Millisecond))
			out := strings.TrimSpace(p.Output())
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if want := fmt.Sprintf("DATA_DIR=%q", dir); !strings.Contains(out, want) || strings.Contains(out, "\n") {
				t.Errorf("output %q, want one line naming %s", out, want)
			}
			if took > 3*time.Second {
				t.Errorf("exit after %v, want at once", took)
			}
		})
	}
}
