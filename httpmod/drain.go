package httpmod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/lifecycle"
)

// CutRequests is the kind of work a [Drain] (and so a [Server]) records as
// cut ([lifecycle.Telemetry.RecordCut]): the requests still in flight at
// the stop deadline.
const CutRequests lifecycle.CutKind = "requests"

// InFlightGauge is the name under which a [Drain] (and so a [Server])
// registers its in-flight request count with
// [lifecycle.Telemetry.TrackInFlight]: "requests", as its cuts are.
const InFlightGauge = string(CutRequests)

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
	maxConns     int           // 0: the default of [Config.MaxConns]
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

// WithMaxConns bounds the connections open at once on the listeners of a
// [Drain] ([Drain.Listener]), as [Config.MaxConns] does for a [Server]
// (which ignores this option): 0 (the default) is a bound derived from
// the process's open-file limit, a negative n is no bound.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// Drain is the drain of one HTTP server, taken apart for an app that runs
// its own [net/http.Server]; [Server] is built on it. Its three parts:
//
//   - [Drain.Handler], the middleware: in-flight count and arrivals,
//     Connection: close from D0 on, panic → 500;
//   - [Drain.Listener], the listener wrapper that follows every accepted
//     connection: it tells the adaptive drain of each new connection's
//     first request, bounds the number open, and lets the stop serve what
//     they send;
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
	maxConns     int            // resolved: 0 is no bound
	noteConn     func(net.Addr) // c.Telemetry().NoteNewConnection; a field so tests can count

	work      srvstate.Work // requests begun and ended (or hijacked): the in-flight count and the arrivals
	cut       srvstate.Cut  // the requests cut at the stop deadline, named as their handlers return
	conns     *connSet      // the connections of Listener's listeners
	anyHijack atomic.Bool   // a request has been hijacked: the middleware looks for its own
	// bodyTimeout is the read deadline of a request body, from its
	// handler's call (a time.Duration); 0: none. Manage may turn it off.
	bodyTimeout atomic.Int64

	mu        sync.Mutex
	srv       *http.Server      // the managed server; nil before Manage
	listeners []*acceptListener // the listeners of Listener
	serveDone chan struct{}     // closed when Serve's goroutine has returned; nil unless Serve
	stopping  bool              // the stop participant has begun: no Serve from now on
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
		maxConns:     resolveMaxConns(o.maxConns),
		noteConn:     tel.NoteNewConnection,
		conns:        newConnSet(),
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

// Listener returns ln wrapped so that the drain follows every connection
// it accepts (through the ConnState hook that [Drain.Manage] installs):
//
//   - the first request on each new connection is reported to
//     [lifecycle.Telemetry.NoteNewConnection] (once per connection, never
//     per request, and never for a connection that sends none, such as a
//     load balancer's TCP health check): the adaptive drain ends once new
//     connections stop bringing requests;
//   - at most the bound of [WithMaxConns] (for a [Server],
//     [Config.MaxConns]) are open at once; Accept waits for one to close,
//     and the connections beyond wait in the kernel's accept queue;
//   - at the stop phase the listener stops accepting, and every
//     connection accepted is served the request it sends before the stop
//     deadline (see [Drain.Manage]).
//
// Wrap the public listener only, not an admin one. Wrap it below TLS
// ([net/http.Server.ServeTLS] does): connections that come out of ln as
// *tls.Conn are not followed.
func (d *Drain) Listener(ln net.Listener) net.Listener {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.listenerLocked(ln)
}

func (d *Drain) listenerLocked(ln net.Listener) *acceptListener {
	l := newAcceptListener(ln, d.conns, d.maxConns)
	d.listeners = append(d.listeners, l)
	return l
}

// Manage makes srv this drain's server and registers its part in the
// shutdown with the coordinator: a switch that turns srv's keep-alives off
// as the stop phase begins ([lifecycle.Coordinator.OnState]), and the stop
// participant "http" ([lifecycle.Coordinator.AtStop]), which, when the
// stop phase begins:
//
//  1. closes the listeners of [Drain.Listener] and waits, bounded by the
//     stop deadline, for their HTTP/1 connections to close: each one
//     accepted is served its request, even one that arrives now, then
//     closes (keep-alives are off);
//  2. calls [net/http.Server.Shutdown], bounded by the stop deadline: the
//     listeners close, idle connections close, active requests finish;
//  3. at the deadline, calls [net/http.Server.Close]: the requests still
//     in [Drain.Handler] are cut, counted with
//     [lifecycle.Telemetry.RecordCut] ([CutRequests]) and logged
//     once, and so are the requests whose bytes had arrived on a
//     connection the server closed;
//  4. waits for the goroutine of [Drain.Serve], if it serves srv.
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
	// before any stop participant runs. It also closes the idle
	// connections: a keep-alive connection that stayed idle through the
	// whole drain (a response during the drain closed every other one).
	d.c.OnState(lifecycle.StateStopping, func() {
		d.conns.stopping.Store(true)
		srv.SetKeepAlivesEnabled(false)
	})
	// The connections of Listener, followed from state to state (see
	// connSet). A hijacked request leaves the in-flight count at once
	// (Drain.InFlight); the middleware finds its connection in the
	// request's context to know.
	next := srv.ConnState
	srv.ConnState = func(conn net.Conn, st http.ConnState) {
		d.connState(conn, st)
		if st == http.StateHijacked {
			// The request leaves the in-flight count now, if the
			// middleware can tell at its end (its connection is in its
			// context), so as not to count the end twice.
			if tc, _ := trackedOf(conn); tc != nil && tc.inContext {
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
	go d.serve(srv, d.listenerLocked(ln), done)
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
	srv, done, listeners := d.srv, d.serveDone, slices.Clone(d.listeners)
	d.mu.Unlock()

	deadline, _ := ctx.Deadline()
	clk := d.c.Clock()
	start := clk.Now()
	// A connection the server accepted is the server's: no new one from
	// now on, and each one accepted gets its request served, even one
	// sent now, before Shutdown begins — Shutdown drops a request it reads
	// after it began (the connection closes without a response). With
	// keep-alives off, every HTTP/1 connection closes after its response;
	// a silent new one at its ReadHeaderTimeout. (HTTP/2 connections get
	// their GOAWAY from Shutdown, then; hijacked ones are waited for
	// below.)
	for _, l := range listeners {
		l.stopAccepting()
	}
	d.conns.waitHTTP1(ctx)
	err := srv.Shutdown(ctx) // at once for a server that never served
	if ctx.Err() != nil && err != nil {
		// Shutdown gave up: whatever is still in flight is cut. Closing
		// the connections cancels the requests' contexts; the handlers
		// that heed them return at once, and the middleware names each
		// by its route as it does.
		cut := d.work.InFlight()
		d.cut.Begin(cut)
		_ = srv.Close() // its only error is closing the already closed listener
		srvstate.RecordCut(d.c, d.log, CutRequests, cut, deadline, d.cut.Wait(cutNamesWait)...)
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
	if n := d.conns.waitHijacked(ctx); n > 0 {
		d.c.Telemetry().RecordCut(CutHijacked, int64(n))
		d.log.Warn("hijacked connections cut at the stop deadline: a WebSocket handler not through wsmod? "+
			"wsmod's registry closes sessions with 1001 before the deadline",
			zap.Int("count", n), zap.Time("deadline", deadline))
	}
	// A request whose bytes had arrived when the server closed its
	// connection — an idle keep-alive connection closed as its next
	// request came, a request still being read at the deadline — is cut
	// too: it never reached the handler.
	if n := d.conns.readCuts.Swap(0); n > 0 {
		d.c.Telemetry().RecordCut(CutRequests, n)
		d.log.Warn("requests cut while being read: the server closed their connection",
			zap.Int64("count", n), zap.Time("deadline", deadline))
	}
	d.log.Info("http stopped", zap.Duration("took", clk.Now().Sub(start)))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// cutNamesWait bounds the wait, after the stop deadline, for the handlers
// of the requests cut to return and name their routes: those that heed
// their context's end do in microseconds; one that ignores it stays
// unnamed.
const cutNamesWait = 100 * time.Millisecond

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
