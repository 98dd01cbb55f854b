package httpmod

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/drainfx/drainfx/internal/idle"
)

// The connections a drain's listener accepted ([Drain.Listener]). The drain
// follows each one through net/http's ConnState hook, so that it can
//
//   - serve the first request of every connection it accepted, even one
//     sent after the stop phase has closed the listener (the stop waits
//     for the HTTP/1 connections to close before [net/http.Server.Shutdown],
//     which would drop it), and of those still in the kernel's accept
//     queue when it closed it (taken before the close, which would reset
//     them);
//   - count a request whose bytes the server had read when it closed the
//     connection (an idle keep-alive connection closed as its next request
//     arrived, a request still being read at the stop deadline);
//   - tell the adaptive drain of a new connection by its first request, not
//     by the TCP accept, which a load balancer's TCP health check makes too;
//   - bound the number of open connections ([Config.MaxConns]);
//   - find the hijacked connections (WebSocket) still open at the stop.

// connPhase is where a connection is, as net/http's ConnState hook tells.
type connPhase uint32

const (
	phaseNew      connPhase = iota // accepted, no request read yet
	phaseActive                    // reading the rest of a request, or serving it
	phaseIdle                      // waiting for the next keep-alive request
	phaseHijacked                  // taken over by a handler (WebSocket)

	phaseMask connPhase = 0b11
	// gotBytes, beside the phase in trackedConn.state: bytes have arrived
	// since the phase was set (cutByClose asks it of a new or idle
	// connection). One word for both, so that ConnState's store of the
	// phase clears it too, and a read checks it with one load: three
	// atomic writes per keep-alive request instead of four
	// (BenchmarkConnTracking).
	gotBytes connPhase = 1 << 2
)

// Flags of a connection's protocol. The stop waits for HTTP/1 connections
// only; the request bytes are read on plain HTTP/1 connections only.
const (
	flagH2  uint32 = 1 << iota // HTTP/2: h2c with prior knowledge, or TLS with ALPN "h2"
	flagTLS                    // TLS above the tracked connection: its bytes are records
)

// h2Marker begins the HTTP/2 client preface (RFC 9113 §3.4), which an h2c
// client with prior knowledge sends first. net/http reads exactly these 14
// bytes first, then the rest.
var h2Marker = []byte("PRI * HTTP/2.0")

// connSet is the connections a drain's listeners accepted and that have
// not closed. It is safe for concurrent use.
type connSet struct {
	// stopping: the stop phase has begun. From then on a connection the
	// server closes with a request's bytes read and unanswered counts in
	// readCuts.
	stopping atomic.Bool
	readCuts atomic.Int64

	changed idle.Signal // notified when http1+accepting or hijacked went down

	mu        sync.Mutex
	accepting int                       // Accepts under way in the listener below
	http1     int                       // open connections that are not HTTP/2 nor hijacked
	hijacked  map[*trackedConn]struct{} // hijacked connections still open
}

func newConnSet() *connSet {
	return &connSet{hijacked: make(map[*trackedConn]struct{})}
}

// beginAccept and endAccept bracket an Accept of the listener below, so
// that the stop, once it has closed that listener, also waits for a
// connection it returned a moment before: endAccept adds tc (nil if the
// Accept failed) to the set.
func (s *connSet) beginAccept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepting++
}

func (s *connSet) endAccept(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepting--
	if tc != nil {
		s.addLocked(tc)
	}
	s.changed.Notify()
}

func (s *connSet) add(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(tc)
}

func (s *connSet) addLocked(tc *trackedConn) {
	tc.inHTTP1 = true
	s.http1++
}

// leaveHTTP1Locked takes tc out of the HTTP/1 connections the stop waits
// for (it speaks HTTP/2, was hijacked, or closed).
func (s *connSet) leaveHTTP1Locked(tc *trackedConn) {
	if tc.inHTTP1 {
		tc.inHTTP1 = false
		s.http1--
		s.changed.Notify()
	}
}

// http2 records that tc speaks HTTP/2: Shutdown sends it a GOAWAY and
// waits for its streams.
func (s *connSet) http2(tc *trackedConn) {
	tc.flags.Or(flagH2)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaveHTTP1Locked(tc)
}

func (s *connSet) hijack(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tc.closed || tc.claimed {
		return
	}
	s.leaveHTTP1Locked(tc)
	s.hijacked[tc] = struct{}{}
}

// cutByClose reports whether closing tc now cuts a request: bytes of it
// have arrived, and the server closes the connection before it has the
// whole header — net/http's Shutdown or Close closing it idle
// (StateIdle) or new (StateNew), in the stop phase. A connection that
// the client closed, or whose header timed out, is StateActive by then
// (net/http sets it before it closes). Read before the close: once the
// connection is closed, its goroutine's read fails and moves it on.
func (s *connSet) cutByClose(tc *trackedConn) bool {
	if !s.stopping.Load() || tc.flags.Load() != 0 {
		return false
	}
	st := tc.loadState()
	ph := st & phaseMask
	return st&gotBytes != 0 && (ph == phaseNew || ph == phaseIdle)
}

func (s *connSet) closed(tc *trackedConn, cut bool) {
	if cut {
		s.readCuts.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tc.closed = true
	s.leaveHTTP1Locked(tc)
	if _, ok := s.hijacked[tc]; ok {
		delete(s.hijacked, tc)
		s.changed.Notify()
	}
}

// claim takes tc out of the hijacked connections for good (a session
// registry ends and counts it), unless the stop deadline has cut it
// already.
func (s *connSet) claim(tc *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tc.cut {
		return false
	}
	tc.claimed = true
	s.leaveHTTP1Locked(tc)
	if _, ok := s.hijacked[tc]; ok {
		delete(s.hijacked, tc)
		s.changed.Notify()
	}
	return true
}

// waitHTTP1 waits until every HTTP/1 connection has closed and no Accept
// is under way, or ctx ends.
// With keep-alives off, each closes after the response to the request it
// carries or, for a new connection, to its first request; a silent new
// connection closes at the server's ReadHeaderTimeout.
func (s *connSet) waitHTTP1(ctx context.Context) {
	_ = s.changed.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.http1+s.accepting == 0
	})
}

// waitHijacked waits until every hijacked connection has closed or ctx
// ends; then it closes the ones left and returns how many.
func (s *connSet) waitHijacked(ctx context.Context) int {
	if s.changed.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.hijacked) == 0
	}) == nil {
		return 0
	}
	// Marked under the lock that claims take: a connection is either cut
	// here or claimed, never both.
	s.mu.Lock()
	left := make([]*trackedConn, 0, len(s.hijacked))
	for tc := range s.hijacked {
		tc.cut = true
		left = append(left, tc)
	}
	s.mu.Unlock()
	for _, tc := range left {
		_ = tc.Close()
	}
	return len(left)
}

// connState follows a connection through net/http's ConnState hook. It
// runs on the connection's goroutine (StateNew on Serve's, before that
// goroutine starts).
func (d *Drain) connState(nc net.Conn, st http.ConnState) {
	tc, tlsConn := trackedOf(nc)
	if tc == nil {
		return // not from Drain.Listener
	}
	switch st {
	case http.StateNew:
		if tlsConn != nil {
			tc.flags.Or(flagTLS)
		}
	case http.StateActive:
		if !tc.noted {
			// The first request (or, over HTTP/2, the connection's
			// preface): what the adaptive drain counts, not the accept.
			tc.noted = true
			if tlsConn != nil && tlsConn.ConnectionState().NegotiatedProtocol == "h2" {
				d.conns.http2(tc)
			}
			d.noteConn(tc.RemoteAddr())
		}
		tc.state.Store(uint32(phaseActive))
	case http.StateIdle:
		tc.state.Store(uint32(phaseIdle)) // and no bytes yet
	case http.StateHijacked:
		tc.state.Store(uint32(phaseHijacked))
		d.conns.hijack(tc)
	}
}

// trackedOf returns the tracked connection under nc (nil if there is
// none), and nc as a *tls.Conn if it is one.
func trackedOf(nc net.Conn) (*trackedConn, *tls.Conn) {
	switch c := nc.(type) {
	case *trackedConn:
		return c, nil
	case *tls.Conn:
		tc, _ := c.NetConn().(*trackedConn)
		return tc, c
	}
	return nil, nil
}

// acceptListener hands out tracked connections, at most maxConns open at
// once, and closes in two steps: [acceptListener.stopAccepting] at the
// stop phase, then Close from Shutdown.
type acceptListener struct {
	net.Listener
	conns *connSet
	slots chan struct{} // a slot per open connection; nil: no bound
	stop  chan struct{} // closed by stopAccepting as it begins
	ready chan struct{} // closed by stopAccepting once queued is set
	done  chan struct{} // closed by Close

	stopped   atomic.Bool // stopAccepting has closed the listener below
	stopOnce  sync.Once
	closeOnce sync.Once
	innerOnce sync.Once
	innerErr  error

	mu     sync.Mutex
	queued []*trackedConn // taken from the kernel's accept queue at the stop, not handed out yet
}

func newAcceptListener(ln net.Listener, conns *connSet, maxConns int) *acceptListener {
	l := &acceptListener{Listener: ln, conns: conns,
		stop: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{})}
	if maxConns > 0 {
		l.slots = make(chan struct{}, maxConns)
	}
	return l
}

// Accept waits for a free slot, then for a connection. (Not
// golang.org/x/net/netutil.LimitListener: its connections hide the
// *net.TCPConn's CloseWrite and ReadFrom, which net/http uses for a
// graceful close and sendfile.) Once the stop phase has closed the
// listener below, it hands out the connections that were still in the
// kernel's accept queue then, and then waits for Close.
func (l *acceptListener) Accept() (net.Conn, error) {
	for {
		if l.stopped.Load() {
			return l.acceptQueued()
		}
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-l.stop:
				continue
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
		l.conns.beginAccept()
		conn, err := l.Listener.Accept()
		if err != nil {
			l.conns.endAccept(nil)
			l.release()
			if l.stopped.Load() {
				continue
			}
			return nil, err // net/http retries a temporary one (EMFILE)
		}
		return l.track(conn), nil
	}
}

// track wraps conn, accepted with a slot.
func (l *acceptListener) track(conn net.Conn) net.Conn {
	if _, ok := conn.(*tls.Conn); ok {
		// TLS below this listener: net/http must see the *tls.Conn, so
		// the connection is not tracked. Wrap the listener below TLS
		// (http.Server.ServeTLS does).
		l.conns.endAccept(nil)
		l.release()
		return conn
	}
	tc := &trackedConn{Conn: conn, set: l.conns}
	if l.slots != nil {
		tc.release = l.release
	}
	l.conns.endAccept(tc)
	return tc
}

// acceptQueued hands out a connection taken from the accept queue at the
// stop, or, with none left, waits for Close: Serve must not end with the
// error of the closed listener below (it would look like a failure) but
// with ErrServerClosed, once Shutdown has closed this one.
func (l *acceptListener) acceptQueued() (net.Conn, error) {
	select {
	case <-l.ready:
	case <-l.done:
		return nil, net.ErrClosed
	}
	l.mu.Lock()
	if len(l.queued) > 0 {
		tc := l.queued[0]
		l.queued = l.queued[1:]
		l.mu.Unlock()
		return tc, nil
	}
	l.mu.Unlock()
	<-l.done
	return nil, net.ErrClosed
}

func (l *acceptListener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// stopAccepting closes the listener below: no connection is accepted from
// now on. The connections the kernel had accepted for it by then (its
// accept queue, which holds those beyond the bound of MaxConns) are
// taken first, past the bound, for Accept to hand out: closing the
// listener would reset them. (Linux; elsewhere they are reset.)
func (l *acceptListener) stopAccepting() {
	l.stopOnce.Do(func() {
		// First, so that an Accept that fails as the listener below
		// closes waits for the queue instead of failing Serve.
		l.stopped.Store(true)
		close(l.stop)
		var queued []*trackedConn
		for _, conn := range acceptQueued(l.Listener, l.closeInner) {
			tc := &trackedConn{Conn: conn, set: l.conns}
			l.conns.add(tc)
			queued = append(queued, tc)
		}
		l.mu.Lock()
		l.queued = queued
		l.mu.Unlock()
		close(l.ready)
	})
}

func (l *acceptListener) closeInner() error {
	l.innerOnce.Do(func() { l.innerErr = l.Listener.Close() })
	return l.innerErr
}

// Close closes the listener (Shutdown, Close and Serve's end call it),
// and the queued connections that Accept has not handed out.
func (l *acceptListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	err := l.closeInner()
	l.mu.Lock()
	left := l.queued
	l.queued = nil
	l.mu.Unlock()
	for _, tc := range left {
		_ = tc.Close()
	}
	return err
}

// trackedConn is an accepted connection that the drain follows. It passes
// ReadFrom and CloseWrite through, which net/http uses when the connection
// is a *net.TCPConn (sendfile, graceful close).
type trackedConn struct {
	net.Conn
	set     *connSet
	release func() // frees the listener's slot; nil without a bound

	// state: the connPhase, with gotBytes once bytes have arrived in it.
	// The connection's goroutines write it (ConnState, Read; net/http's
	// background read ends before the connection goes idle); the stop
	// reads it (cutByClose).
	state atomic.Uint32
	flags atomic.Uint32 // flagH2, flagTLS
	// noted: the first request was reported. Only ConnState touches it,
	// on the connection's goroutine.
	noted bool

	inHTTP1, closed bool // guarded by set.mu
	claimed         bool // guarded by set.mu: a registry ends and counts it
	cut             bool // guarded by set.mu: closed and counted at the stop deadline
	once            sync.Once

	// inContext: the server's ConnContext put it in its requests'
	// contexts (written before the connection is served).
	inContext bool
	leftCount atomic.Bool // hijacked, its request left the in-flight count then
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		// The first bytes since the connection was new or idle: once per
		// request; every other read is this one load.
		if st := c.loadState(); st&gotBytes == 0 {
			if st&phaseMask == phaseNew && bytes.HasPrefix(p[:n], h2Marker) {
				c.set.http2(c)
			}
			c.state.Or(uint32(gotBytes))
		}
	}
	return n, err
}

func (c *trackedConn) loadState() connPhase { return connPhase(c.state.Load()) }

func (c *trackedConn) Close() error {
	first, cut := false, false
	c.once.Do(func() { first, cut = true, c.set.cutByClose(c) })
	err := c.Conn.Close()
	if first {
		if c.release != nil {
			c.release()
		}
		c.set.closed(c, cut)
	}
	return err
}

func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
