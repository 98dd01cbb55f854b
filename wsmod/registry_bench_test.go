package wsmod

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/drainfx/drainfx/lifecycle"
)

func benchRegistry(b *testing.B) (*Registry, *lifecycle.Coordinator) {
	b.Helper()
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	if err != nil {
		b.Fatal(err)
	}
	// All at once: BenchmarkClose10k times how fast the registry can end
	// its sessions, not the close window, which spreads 10,000 over 4 s
	// by design.
	r, err := New(Config{CloseRate: AllAtOnce}, c)
	if err != nil {
		b.Fatal(err)
	}
	return r, c
}

func nopCancel() {}

// BenchmarkRegister is the hot path of every new session: register it,
// later unregister it, from many goroutines at once. Each op allocates the
// session, as a real one does.
func BenchmarkRegister(b *testing.B) {
	b.Run("registry", func(b *testing.B) {
		r, c := benchRegistry(b)
		defer stopCoordinator(b, c)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s := r.newSession(KindWebSocket, nopCancel)
				r.add(s)
				r.remove(s, outcomeClean)
			}
		})
	})
	b.Run("baseline=mutex-map", func(b *testing.B) {
		var (
			mu       sync.Mutex
			sessions = map[*session]struct{}{}
			active   int64
		)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s := &session{kind: KindWebSocket, cancel: nopCancel}
				mu.Lock()
				sessions[s] = struct{}{}
				active++
				mu.Unlock()
				mu.Lock()
				delete(sessions, s)
				active--
				mu.Unlock()
			}
		})
	})
	b.Run("baseline=sync.Map", func(b *testing.B) {
		var sessions sync.Map
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s := &session{kind: KindWebSocket, cancel: nopCancel}
				sessions.Store(s, struct{}{})
				sessions.Delete(s)
			}
		})
	})
}

// raiseFileLimit lifts the soft limit of open files to at least n if the
// hard limit allows; it returns the limit and whether it suffices.
func raiseFileLimit(n uint64) (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	if lim.Cur < n && lim.Max >= n {
		lim.Cur = n
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	return lim.Cur, lim.Cur >= n
}

// The clients of BenchmarkClose10k run in a child process (this test
// binary again, running TestBenchClients), so that each process holds one
// end of every connection: 10,000 sessions need 20,000 descriptors, more
// than a 20,000 limit leaves once the runtime has its own.
const (
	envBenchURL = "WSMOD_BENCH_CLIENTS_URL"
	envBenchN   = "WSMOD_BENCH_CLIENTS_N"
)

// TestBenchClients is the client side of BenchmarkClose10k; it skips
// unless the benchmark started it. It dials n WebSocket clients, prints
// "ready", and reads each until its close, then prints how many saw 1001.
func TestBenchClients(t *testing.T) {
	url := os.Getenv(envBenchURL)
	if url == "" {
		t.Skip("the client process of BenchmarkClose10k")
	}
	n, err := strconv.Atoi(os.Getenv(envBenchN))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := raiseFileLimit(uint64(n) + 500); !ok {
		t.Fatalf("open files limit %d, want %d", got, n+500)
	}
	conns := make([]*websocket.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	dialer := &websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024}
	var dials sync.WaitGroup
	var failed atomic.Int64
	const parallel = 64
	for w := range parallel {
		dials.Go(func() {
			for i := w; i < n; i += parallel {
				conn, resp, err := dialer.Dial(url, nil)
				if err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("dial %d: %v", i, err)
					}
					return
				}
				_ = resp.Body.Close()
				conns[i] = conn
			}
		})
	}
	dials.Wait()
	if failed.Load() > 0 {
		return
	}
	fmt.Println("ready")
	var readers sync.WaitGroup
	var goingAway atomic.Int64
	for _, conn := range conns {
		readers.Go(func() {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					if websocket.IsCloseError(err, websocket.CloseGoingAway) {
						goingAway.Add(1)
					}
					return
				}
			}
		})
	}
	readers.Wait()
	fmt.Printf("closed %d %d\n", goingAway.Load(), int64(n)-goingAway.Load())
}

// liveSessions is n loopback WebSocket sessions: a server whose handlers
// read until the close, and n gorilla clients (in a child process) that
// read, and so answer the close frame.
type liveSessions struct {
	b      *testing.B
	c      *lifecycle.Coordinator
	r      *Registry
	srv    *http.Server
	served chan struct{}
	child  *exec.Cmd
	out    *bufio.Scanner
}

func openSessions(b *testing.B, n int) *liveSessions {
	b.Helper()
	r, c := benchRegistry(b)
	ls := &liveSessions{b: b, c: c, r: r, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", r.WebSocket(func(ctx context.Context, conn Conn) error {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return err
			}
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ls.srv = &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { defer close(ls.served); _ = ls.srv.Serve(ln) }()

	ls.child = exec.Command(os.Args[0], "-test.run=^TestBenchClients$", "-test.count=1")
	ls.child.Env = append(os.Environ(), envBenchURL+"=ws://"+ln.Addr().String()+"/ws", envBenchN+"="+strconv.Itoa(n))
	ls.child.Stderr = os.Stderr
	stdout, err := ls.child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := ls.child.Start(); err != nil {
		b.Fatal(err)
	}
	ls.out = bufio.NewScanner(stdout)
	if !ls.scanFor("ready") {
		ls.close()
		b.Fatal("the client process did not connect")
	}
	deadline := time.Now().Add(time.Minute)
	for r.Len(KindWebSocket) != n {
		if time.Now().After(deadline) {
			ls.close()
			b.Fatalf("%d of %d sessions registered", r.Len(KindWebSocket), n)
		}
		time.Sleep(time.Millisecond)
	}
	return ls
}

func (ls *liveSessions) scanFor(prefix string) bool {
	for ls.out.Scan() {
		if strings.HasPrefix(ls.out.Text(), prefix) {
			return true
		}
	}
	return false
}

// close ends everything, after the measured part, and returns how many
// clients did not see 1001.
func (ls *liveSessions) close() (bad int) {
	bad = -1
	if ls.scanFor("closed ") {
		var good int
		_, _ = fmt.Sscanf(ls.out.Text(), "closed %d %d", &good, &bad)
	}
	for ls.out.Scan() { // drain until the child exits
	}
	_ = ls.child.Wait()
	_ = ls.srv.Close()
	<-ls.served
	stopCoordinator(ls.b, ls.c) // ends what is left
	return bad
}

// closeSequentially is the baseline: each session's close frame, then the
// wait for its handler, one session after another.
func (r *Registry) closeSequentially() {
	r.stopping.Store(true)
	for _, s := range r.snapshot() {
		r.beginClose(s)
		_ = r.removed.Wait(context.Background(), func() bool { return !r.listed(s) })
	}
}

// BenchmarkClose10k times the stop phase of 10,000 live loopback WebSocket
// sessions: close frames with 1001 to all, and the wait until every handler
// has returned. One op is the whole stop; the setup (dialing) is not timed.
// Run it with -benchtime=3x or so: each op dials 10,000 connections first.
func BenchmarkClose10k(b *testing.B) {
	const n = 10_000
	if got, ok := raiseFileLimit(n + 500); !ok {
		b.Skipf("needs %d open files for the server ends of %d sessions (the clients run in a child process); the limit is %d: raise ulimit -n", n+500, n, got)
	}
	run := func(b *testing.B, closeAll func(ls *liveSessions)) {
		b.ReportAllocs()
		for range b.N {
			b.StopTimer()
			ls := openSessions(b, n)
			b.StartTimer()
			closeAll(ls)
			b.StopTimer()
			if left := ls.r.Len(KindWebSocket); left != 0 {
				b.Errorf("%d sessions left", left)
			}
			if bad := ls.close(); bad != 0 {
				b.Errorf("%d clients did not read 1001", bad)
			}
		}
	}
	b.Run("registry", func(b *testing.B) {
		run(b, func(ls *liveSessions) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ls.r.Stop(ctx); err != nil { // asks for the stop, waits for the shutdown
				b.Error(err)
			}
			if st := ls.r.Stats().WebSocket; st.Clean != n {
				b.Errorf("stats %+v", st)
			}
		})
	})
	b.Run("baseline=one-after-another", func(b *testing.B) {
		run(b, func(ls *liveSessions) { ls.r.closeSequentially() })
	})
}
