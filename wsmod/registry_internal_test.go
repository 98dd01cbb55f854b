package wsmod

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
)

// fakeSocket records what the registry does to a session.
type fakeSocket struct {
	mu     sync.Mutex
	closes []int
	closed bool
}

func (f *fakeSocket) ReadMessage() (int, []byte, error) { return 0, nil, net.ErrClosed }
func (f *fakeSocket) WriteMessage(int, []byte) error    { return nil }
func (f *fakeSocket) Subprotocol() string               { return "" }
func (f *fakeSocket) RemoteAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeSocket) WritePing(time.Time) error         { return nil }
func (f *fakeSocket) OnPong(func())                     {}
func (f *fakeSocket) SetReadDeadline(time.Time) error   { return nil }
func (f *fakeSocket) SetReadLimit(int64)                {}
func (f *fakeSocket) IsClose(error) bool                { return false }
func (f *fakeSocket) WriteClose(code int, _ string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes = append(f.closes, code)
	return nil
}
func (f *fakeSocket) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// A session that registers as the stop phase begins may miss the stop
// goroutine's snapshot; it then ends itself, once.
func TestRegisteredDuringStop(t *testing.T) {
	tests := []struct {
		name       string
		stopping   bool
		forcing    bool
		wantCloses []int
		wantClosed bool
	}{
		{name: "serving"},
		{name: "stopping", stopping: true, wantCloses: []int{4000}},
		{name: "forcing", stopping: true, forcing: true, wantCloses: []int{4000}, wantClosed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
			if err != nil {
				t.Fatal(err)
			}
			defer stopCoordinator(t, c)
			r, err := New(Config{CloseCode: 4000}, c)
			if err != nil {
				t.Fatal(err)
			}
			r.stopping.Store(tt.stopping)
			r.forcing.Store(tt.forcing)
			cancelled := false
			s := r.newSession(KindWebSocket, func() { cancelled = true })
			sock := &fakeSocket{}
			s.sock = sock
			r.registered(s)
			if tt.stopping {
				r.beginClose(s) // the stop participant's snapshot had it too: no second frame
			}
			if !equalInts(sock.closes, tt.wantCloses) || sock.closed != tt.wantClosed {
				t.Errorf("close frames %v, closed %v; want %v, %v", sock.closes, sock.closed, tt.wantCloses, tt.wantClosed)
			}
			if (tt.stopping || tt.forcing) && !cancelled {
				t.Error("context not cancelled")
			}
			if r.Len(KindWebSocket) != 1 {
				t.Errorf("Len %d, want 1", r.Len(KindWebSocket))
			}
			r.remove(s, outcomeClean)
			if r.Len(KindWebSocket) != 0 || r.listed(s) {
				t.Error("still registered")
			}
		})
	}
}

// stopCoordinator stops c at once and waits for its report.
func stopCoordinator(tb testing.TB, c *lifecycle.Coordinator) {
	tb.Helper()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(cancelled)
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := c.Stop(ctx); err != nil {
		tb.Errorf("the coordinator did not stop: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestShardList(t *testing.T) {
	var sh shard
	ss := make([]*session, 5)
	for i := range ss {
		ss[i] = &session{}
		sh.pushLocked(ss[i])
	}
	for _, i := range []int{0, 4, 2} { // tail, head, middle
		sh.unlinkLocked(ss[i])
	}
	sh.unlinkLocked(ss[2]) // twice: no effect
	var got []*session
	for s := sh.head; s != nil; s = s.next {
		got = append(got, s)
	}
	if sh.n != 2 || len(got) != 2 || got[0] != ss[3] || got[1] != ss[1] || got[1].next != nil || got[0].prev != nil {
		t.Errorf("list after removals: n=%d %v", sh.n, got)
	}
}
