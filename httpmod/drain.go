package httpmod

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/lifecycle"
)

// InFlightGauge is the name under which a [Drain] (and so a [Server])
// registers its in-flight request count with
// [lifecycle.Telemetry.TrackInFlight]. It is also the kind of work it cuts
// at the stop deadline: [lifecycle.CutRequests].
const InFlightGauge = string(lifecycle.CutRequests)

var (
	errNoCoordinator = errors.New("httpmod: nil *lifecycle.Coordinator")
	errNilServer     = errors.New("httpmod: nil *http.Server")
	errNilListener   = errors.New("httpmod: nil net.Listener")
	errOtherServer   = errors.New("httpmod: the drain manages another *http.Server already")
	errServing       = errors.New("httpmod: already serving")
	errStopping      = errors.New("httpmod: the stop phase has begun")
)

// Option configures a [Server] built by [New] or a [Drain] built by
// [NewDrain].
type Option func(*options)

type options struct {
	log          *zap.Logger
	onServeError func(error)
	bodyTimeout  time.Duration // > 0; none if negative
}

func newOptions(opts []Option) options {
	o := options{log: zap.NewNop(), bodyTimeout: DefaultBodyReadTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	o.log = o.log.With(zap.String("component", "http"))
	return o
}

// WithLogger sets the logger (default [zap.NewNop]). The server adds the
// field component=http.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithBodyReadTimeout sets the bound on the reading of a request body,
// from the moment its handler is called ([Config.BodyReadTimeout]): 0 for
// the default (30s), negative for none. It is for a [Drain] on an
// [net/http.Server] of the app's own; [New] takes it from its [Config].
// If the server's ReadTimeout is at least as short, [Drain.Manage] turns
// it off: the server's bound already covers the body.
func WithBodyReadTimeout(d time.Duration) Option {
	return func(o *options) {
		if d == 0 {
			d = DefaultBodyReadTimeout
		}
		o.bodyTimeout = d
	}
}

// WithServeError sets the function called (once, from the serve goroutine)
// when [net/http.Server.Serve] fails with an error other than
// [net/http.ErrServerClosed] — the server has stopped accepting and the
// process should stop. The error is logged whether or not fn is set. Under
// fx, [Module] passes a function that calls
// [go.uber.org/fx.Shutdowner.Shutdown] with exit code 1. It applies to the
// goroutine of [Server.Start] and [Drain.Serve], not to a server the app
// serves itself.
func WithServeError(fn func(error)) Option {
	return func(o *options) { o.onServeError = fn }
}

// Drain is the drain of one HTTP server, taken apart for an app that runs
// its own [net/http.Server]; [Server] is built on it. Its three parts:
//
//   - [Drain.Handler], the middleware: in-flight count and arrivals,
//     Connection: close from D0 on, panic → 500;
//   - [Drain.Listener], the listener wrapper that tells the adaptive drain
//     of every accepted connection;
//   - [Drain.Manage] (or [Drain.Serve], which also serves), the stop
//     participant: keep-alives off as the stop phase begins, then
//     [net/http.Server.Shutdown] bounded by the stop deadline, and
//     [net/http.Server.Close] with a count of the cut requests at the
//     deadline.
//
// A Drain manages one [net/http.Server]. It is safe for concurrent use.
// Build it with [NewDrain].
type Drain struct {
	c            *lifecycle.Coordinator
	log          *zap.Logger
	onServeError func(error)
	noteAccept   func(net.Addr) // c.Telemetry().NoteAccept; a field so tests can count

	work      srvstate.Work // requests begun and ended (or hijacked): the in-flight count and the arrivals
	hijacked  hijackedConns // connections taken over by a handler (WebSocket)
	anyHijack atomic.Bool   // a request has been hijacked: the middleware looks for its own
	// bodyTimeout is the read deadline of a request body, from its
	// handler's call (a time.Duration); 0: none. Manage may turn it off.
	bodyTimeout atomic.Int64

	mu        sync.Mutex
	srv       *http.Server  // the managed server; nil before Manage
	serveDone chan struct{} // closed when Serve's goroutine has returned; nil unless Serve
	stopping  bool          // the stop participant has begun: no Serve from now on
}

// NewDrain returns the drain of one server that follows c, and registers
// its in-flight gauge ([InFlightGauge]) and arrival counter with c's
// telemetry. Wrap the server's handler with [Drain.Handler] and its
// listener with [Drain.Listener], and hand the server to [Drain.Manage] or
// [Drain.Serve].
func NewDrain(c *lifecycle.Coordinator, opts ...Option) (*Drain, error) {
	if c == nil {
		return nil, errNoCoordinator
	}
	return newDrain(c, newOptions(opts)), nil
}

func newDrain(c *lifecycle.Coordinator, o options) *Drain {
	tel := c.Telemetry()
	d := &Drain{
		c:            c,
		log:          o.log,
		onServeError: o.onServeError,
		noteAccept:   tel.NoteAccept,
	}
	d.bodyTimeout.Store(int64(max(o.bodyTimeout, 0)))
	tel.TrackInFlight(InFlightGauge, d.InFlight)
	tel.TrackArrivals(d.work.Begun)
	return d
}

// InFlight returns the number of requests in [Drain.Handler] whose handler
// has not returned yet. A request whose connection a handler hijacks
// (WebSocket) leaves the count when it is hijacked, if its connection came
// from [Drain.Listener]: from then on it is a session (wsmod counts its
// own) or a hijacked connection (see [HijackClaimer]), never also a
// request in flight, nor a request cut at the stop deadline.
func (d *Drain) InFlight() int64 { return d.work.InFlight() }

// Listener returns ln wrapped so that every connection it accepts is
// reported to [lifecycle.Telemetry.NoteAccept] (once per connection, never
// per request): the adaptive drain ends once connections stop arriving.
// Wrap the public listener only, not an admin one.
func (d *Drain) Listener(ln net.Listener) net.Listener {
	return &acceptListener{Listener: ln, note: d.noteAccept, conns: &d.hijacked}
}

// Manage makes srv this drain's server and registers its part in the
// shutdown with the coordinator: a switch that turns srv's keep-alives off
// as the stop phase begins ([lifecycle.Coordinator.OnState]), and the stop
// participant "http" ([lifecycle.Coordinator.AtStop]), which, when the
// stop phase begins:
//
//  1. calls [net/http.Server.Shutdown], bounded by the stop deadline: the
//     listeners close, idle connections close, active requests finish;
//  2. at the deadline, calls [net/http.Server.Close]: the requests still
//     in [Drain.Handler] are cut, counted with
//     [lifecycle.Telemetry.RecordCut] ([lifecycle.CutRequests]) and logged
//     once;
//  3. waits for the goroutine of [Drain.Serve], if it serves srv.
//
// Serve srv yourself (go srv.Serve(d.Listener(ln))), or with
// [Drain.Serve]. The participant shuts srv down whether or not it is
// serving: a Serve after it returns [net/http.ErrServerClosed]. Call
// Manage once, before the stop phase (a participant registered later is
// never called); a second call with the same srv does nothing, one with
// another server fails.
func (d *Drain) Manage(srv *http.Server) error {
	if srv == nil {
		return errNilServer
	}
	d.mu.Lock()
	switch {
	case d.srv == srv:
		d.mu.Unlock()
		return nil
	case d.srv != nil:
		d.mu.Unlock()
		return errOtherServer
	}
	d.srv = srv
	d.mu.Unlock()
	if rt := srv.ReadTimeout; rt > 0 && int64(rt) <= d.bodyTimeout.Load() {
		// net/http's deadline (ReadTimeout from the request's first byte)
		// comes first; the body's would only push it back.
		d.bodyTimeout.Store(0)
	}

	// From the stop phase on, a response ends its connection: a stream that
	// the session registry (wsmod) ends then closes its keep-alive
	// connection instead of leaving it open for a reconnect that this
	// stopping pod would refuse. The switch happens in the transition,
	// before any stop participant runs; Shutdown, a moment later, closes
	// the idle connections anyway.
	d.c.OnState(lifecycle.StateStopping, func() { srv.SetKeepAlivesEnabled(false) })
	// Hijacked connections: Shutdown neither waits for them nor closes
	// them. The stop participant does both (see hijackedConns). A hijacked
	// request leaves the in-flight count at once (Drain.InFlight); the
	// middleware finds its connection in the request's context to know.
	next := srv.ConnState
	srv.ConnState = func(conn net.Conn, st http.ConnState) {
		if st == http.StateHijacked {
			d.hijacked.hijacked(conn)
			// The request leaves the in-flight count now, if the
			// middleware can tell at its end (its connection is in its
			// context), so as not to count the end twice.
			if tc, ok := conn.(*trackedConn); ok && tc.inContext {
				tc.leftCount.Store(true)
				d.anyHijack.Store(true)
				d.work.End()
			}
		}
		if next != nil {
			next(conn, st)
		}
	}
	nextCtx := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, conn net.Conn) context.Context {
		if nextCtx != nil {
			ctx = nextCtx(ctx, conn)
		}
		if tc, ok := conn.(*trackedConn); ok {
			tc.inContext = true // before the connection is served
			ctx = context.WithValue(ctx, connKey{}, tc)
		}
		return ctx
	}
	d.c.AtStop("http", d.stop)
	return nil
}

// Serve manages srv ([Drain.Manage]) and serves it on ln, wrapped with
// [Drain.Listener], in a goroutine that the stop participant waits for. It
// returns at once. srv's Handler should be wrapped with [Drain.Handler].
// If [net/http.Server.Serve] fails with an error other than
// [net/http.ErrServerClosed], the error is logged and the function of
// [WithServeError] is called. Serve fails if the drain serves already or
// its stop phase has begun; ln is then left to the caller.
func (d *Drain) Serve(srv *http.Server, ln net.Listener) error {
	if ln == nil {
		return errNilListener
	}
	if err := d.Manage(srv); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopping:
		return errStopping
	case d.serveDone != nil:
		return errServing
	}
	done := make(chan struct{})
	d.serveDone = done
	go d.serve(srv, d.Listener(ln), done)
	d.log.Info("http serving", zap.Stringer("addr", ln.Addr()),
		zap.Bool("h2c", srv.Protocols != nil && srv.Protocols.UnencryptedHTTP2()))
	return nil
}

// stoppingNow reports whether the stop participant has begun.
func (d *Drain) stoppingNow() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

func (d *Drain) serve(srv *http.Server, ln net.Listener, done chan<- struct{}) {
	defer close(done)
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return
	}
	d.log.Error("http serve", zap.Error(err))
	if d.onServeError != nil {
		d.onServeError(err)
	}
}

// stop is the stop participant: ctx ends at the stop deadline (or sooner,
// if the ctx of the coordinator's Stop ends).
func (d *Drain) stop(ctx context.Context) error {
	d.mu.Lock()
	d.stopping = true
	srv, done := d.srv, d.serveDone
	d.mu.Unlock()

	deadline, _ := ctx.Deadline()
	clk := d.c.Clock()
	start := clk.Now()
	err := srv.Shutdown(ctx) // at once for a server that never served
	if ctx.Err() != nil && err != nil {
		// Shutdown gave up: whatever is still in flight is cut.
		cut := d.work.InFlight()
		_ = srv.Close() // its only error is closing the already closed listener
		srvstate.RecordCut(d.c, d.log, lifecycle.CutRequests, cut, deadline)
		err = nil
	}
	if done != nil {
		// Not bounded by ctx: once Shutdown or Close has closed the
		// listener, Serve returns at once.
		<-done
	}
	// Shutdown does not wait for hijacked connections (WebSocket): wait for
	// them until the deadline, then close and count those still open. The
	// sessions of wsmod's registry are not among them: the registry claims
	// its connections (HijackClaimer) and ends and counts them itself. A
	// connection that a handler runs on its own gets cut here, and the
	// report says so.
	if n := d.hijacked.waitClosed(ctx); n > 0 {
		d.c.Telemetry().RecordCut(CutHijacked, int64(n))
		d.log.Warn("hijacked connections cut at the stop deadline: a WebSocket handler not through wsmod? "+
			"wsmod's registry closes sessions with 1001 before the deadline",
			zap.Int("count", n), zap.Time("deadline", deadline))
	}
	d.log.Info("http stopped", zap.Duration("took", clk.Now().Sub(start)))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// acceptListener reports every accepted connection to the coordinator's
// adaptive drain (once per connection, never per request), and hands out
// connections that know when they are closed, so that the stop can find
// the hijacked ones still open.
type acceptListener struct {
	net.Listener
	note  func(remote net.Addr)
	conns *hijackedConns
}

func (l *acceptListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return conn, err
	}
	l.note(conn.RemoteAddr())
	if _, ok := conn.(*tls.Conn); ok {
		// net/http must see a *tls.Conn: wrap the listener below TLS
		// (http.Server.ServeTLS does) for hijacked connections to be
		// tracked.
		return conn, nil
	}
	return &trackedConn{Conn: conn, set: l.conns}, nil
}

// CutHijacked is the kind of cut work counted for hijacked connections
// (WebSocket handlers not run through wsmod) still open at the stop
// deadline.
const CutHijacked lifecycle.CutKind = "hijacked"

// HijackClaimer is implemented by the connections that [Drain.Listener]
// hands out (not by a [crypto/tls.Conn]), which a handler gets back from
// [net/http.Hijacker.Hijack] (gorilla: websocket.Conn.NetConn). The stop
// participant waits for every hijacked connection until the stop deadline,
// then closes those still open and counts them as [CutHijacked]. A session
// registry that ends and counts its connections itself — wsmod's does —
// claims each connection as it takes it over, so that it is counted once,
// by the registry: a claimed connection is neither waited for, closed nor
// counted by the drain.
//
// ClaimHijacked returns false if the stop deadline has already cut the
// connection (closed it and counted it as CutHijacked): the claimer should
// then drop it without counting it again.
type HijackClaimer interface {
	ClaimHijacked() bool
}

// hijackedConns is the set of connections a handler took over and has
// not closed yet, less those a registry claimed.
type hijackedConns struct {
	mu      sync.Mutex
	open    map[*trackedConn]struct{}
	changed chan struct{} // size 1: a hijacked connection closed or was claimed
}

// hijacked adds c, once a handler has hijacked it.
func (h *hijackedConns) hijacked(c net.Conn) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return // not from Drain.Listener: not tracked
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if tc.closed || tc.claimed {
		return
	}
	if h.open == nil {
		h.open = make(map[*trackedConn]struct{})
		h.changed = make(chan struct{}, 1)
	}
	tc.hijacked = true
	h.open[tc] = struct{}{}
}

func (h *hijackedConns) closed(tc *trackedConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tc.closed = true
	h.dropLocked(tc)
}

// claim takes tc out of the set for good, unless the stop deadline has cut
// it already.
func (h *hijackedConns) claim(tc *trackedConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if tc.cut {
		return false
	}
	tc.claimed = true
	h.dropLocked(tc)
	return true
}

func (h *hijackedConns) dropLocked(tc *trackedConn) {
	if _, ok := h.open[tc]; !ok {
		return
	}
	delete(h.open, tc)
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// waitClosed waits until every hijacked connection has closed or ctx
// ends; then it closes the ones left and returns how many.
func (h *hijackedConns) waitClosed(ctx context.Context) int {
	for {
		h.mu.Lock()
		n, changed := len(h.open), h.changed
		h.mu.Unlock()
		if n == 0 {
			return 0
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
		}
		// Marked under the lock that claims take: a connection is either
		// cut here or claimed, never both.
		h.mu.Lock()
		left := make([]*trackedConn, 0, len(h.open))
		for tc := range h.open {
			tc.cut = true
			left = append(left, tc)
		}
		h.mu.Unlock()
		for _, tc := range left {
			_ = tc.Close()
		}
		return len(left)
	}
}

// trackedConn is an accepted connection that tells the set when it
// closes. It passes ReadFrom and CloseWrite through, which net/http uses
// when the connection is a *net.TCPConn (sendfile, graceful close).
type trackedConn struct {
	net.Conn
	set      *hijackedConns
	hijacked bool // guarded by set.mu
	closed   bool // guarded by set.mu
	claimed  bool // guarded by set.mu: a registry ends and counts it
	cut      bool // guarded by set.mu: closed and counted at the stop deadline
	once     sync.Once

	// inContext: the server's ConnContext put it in its requests'
	// contexts (written before the connection is served).
	inContext bool
	leftCount atomic.Bool // hijacked, its request left the in-flight count then
}

// connKey is the request context's key of the request's *trackedConn
// (Drain.Manage sets the server's ConnContext).
type connKey struct{}

// hijackedRequest reports whether r's connection, one from Drain.Listener,
// has been hijacked, and r left the in-flight count then.
func hijackedRequest(r *http.Request) bool {
	tc, _ := r.Context().Value(connKey{}).(*trackedConn)
	return tc != nil && tc.leftCount.Load()
}

// ClaimHijacked implements [HijackClaimer].
func (c *trackedConn) ClaimHijacked() bool { return c.set.claim(c) }

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.set.closed(c) })
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
