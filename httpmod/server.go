package httpmod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// InFlightGauge is the name under which a [Server] registers its in-flight
// request count with [lifecycle.Telemetry.TrackInFlight]. It is also the
// kind of work it cuts at the stop deadline: [lifecycle.CutRequests].
const InFlightGauge = string(lifecycle.CutRequests)

var (
	errNoCoordinator  = errors.New("httpmod: nil *lifecycle.Coordinator")
	errAlreadyStarted = errors.New("httpmod: server already started")
)

// Option configures a [Server] built by [New].
type Option func(*Server)

// WithLogger sets the logger (default [zap.NewNop]). The server adds the
// field component=http.
func WithLogger(l *zap.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithRoutes registers routes on the server's echo instance, in order, when
// [New] runs. Nil routes are skipped.
func WithRoutes(routes ...Route) Option {
	return func(s *Server) { s.routes = append(s.routes, routes...) }
}

// WithServeError sets the function called (once, from the serve goroutine)
// when [net/http.Server.Serve] fails with an error other than
// [net/http.ErrServerClosed] — the server has stopped accepting and the
// process should stop. The error is logged whether or not fn is set. Under
// fx, [Module] passes a function that calls
// [go.uber.org/fx.Shutdowner.Shutdown] with exit code 1.
func WithServeError(fn func(error)) Option {
	return func(s *Server) { s.onServeError = fn }
}

// Server is an echo server that drains: see the package documentation. It
// is safe for concurrent use. Build it with [New]; [Server.Start] and
// [Server.Stop] run it.
type Server struct {
	cfg          Config
	c            *lifecycle.Coordinator
	log          *zap.Logger
	echo         *echo.Echo
	srv          *http.Server
	routes       []Route
	onServeError func(error)
	noteAccept   func(net.Addr) // c.Telemetry().NoteAccept; a field so tests can count

	work srvstate.Work // requests begun and ended: the in-flight count and the arrivals

	state     *srvstate.State // started once, stopped once (by the stop participant)
	serveDone chan struct{}   // closed when the serve goroutine has returned; set by start, read by stop (state orders them)

	mu sync.Mutex
	ln net.Listener // the bound listener, nil before Start
}

// New builds a server for cfg whose drain follows c, with its routes
// registered, and registers it with c: its stop participant "http"
// ([lifecycle.Coordinator.AtStop]), its in-flight gauge and its arrival
// counter. It does not listen yet: [Server.Start] does. It fails with an
// error matching [ErrConfig] if cfg is invalid.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, errNoCoordinator
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	tel := c.Telemetry()
	s := &Server{
		cfg:        cfg,
		c:          c,
		log:        zap.NewNop(),
		noteAccept: tel.NoteAccept,
		state:      srvstate.New(errAlreadyStarted),
	}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With(zap.String("component", "http"))

	s.echo = echo.New()
	s.echo.HideBanner = true
	s.echo.HidePort = true
	for _, r := range s.routes {
		if r != nil {
			r.Register(s.echo)
		}
	}

	// net/http's own complaints (accept errors, a superfluous WriteHeader
	// after a recovered panic, HTTP/2 protocol errors) go to zap as warnings.
	errLog, err := zap.NewStdLogAt(s.log, zapcore.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("http error log: %w", err)
	}
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.srv.Protocols = &p
	}

	// Registered last, once nothing can fail: the coordinator holds on to
	// what it is given.
	//
	// From the stop phase on, a response ends its connection: a stream that
	// the session registry (wsmod) ends then closes its keep-alive
	// connection instead of leaving it open for a reconnect that this
	// stopping pod would refuse. The switch happens in the transition,
	// before any stop participant runs; Shutdown, a moment later, closes
	// the idle connections anyway.
	c.OnState(lifecycle.StateStopping, func() { s.srv.SetKeepAlivesEnabled(false) })
	c.AtStop("http", s.stopPhase)
	tel.TrackInFlight(InFlightGauge, s.InFlight)
	tel.TrackArrivals(s.work.Begun)
	return s, nil
}

// Echo returns the echo instance the routes are registered on. Add routes
// and middleware before [Server.Start]. Do not call its Start or Shutdown
// methods: the Server owns the listener and the [net/http.Server].
func (s *Server) Echo() *echo.Echo { return s.echo }

// InFlight returns the number of requests whose handler has not returned
// yet, hijacked ones (WebSocket) included.
func (s *Server) InFlight() int64 { return s.work.InFlight() }

// Addr returns the address the server listens on (the real port when
// [Config.Addr] asked for port 0), or nil before [Server.Start].
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Start listens on [Config.Addr] synchronously, so that a bad or busy
// address fails here, then serves in a goroutine that the stop phase waits
// for. A server starts once, and not at all once its stop phase has come.
func (s *Server) Start(ctx context.Context) error { return s.state.Start(ctx, s.start) }

// start is Start's work, run by s.state once.
func (s *Server) start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.serveDone = make(chan struct{})
	go s.serve(&acceptListener{Listener: ln, note: s.noteAccept}, s.serveDone)
	s.log.Info("http serving", zap.Stringer("addr", ln.Addr()), zap.Bool("h2c", s.cfg.H2C))
	return nil
}

func (s *Server) serve(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return
	}
	s.log.Error("http serve", zap.Error(err))
	if s.onServeError != nil {
		s.onServeError(err)
	}
}

// Stop stops the service and waits for it: it is the coordinator's
// [lifecycle.Coordinator.Stop], which begins the drain if nothing has yet,
// lets it run its course, runs the stop phase — this server's part of it
// among the others' — and the teardown, and returns once the report is
// out. It is the module's OnStop; without fx, call it (or the
// coordinator's Stop) once to shut down. Stop stops the whole service, not
// this server alone.
//
// The server's own part is its stop participant, which the coordinator
// calls when the stop phase begins:
//
//  1. [net/http.Server.Shutdown], bounded by the stop deadline (D0 +
//     GracePeriod − TeardownReserve − Margin): the listener closes, idle
//     connections close, active requests finish;
//  2. at the deadline, [net/http.Server.Close]: the requests still in
//     flight are cut, counted with [lifecycle.Telemetry.RecordCut]
//     ([lifecycle.CutRequests]) and logged once;
//  3. it waits for the serve goroutine.
//
// A cut is not an error of Stop: the coordinator's report carries it and
// makes the exit code 1. If ctx ends first, the drain is cut short, the
// stop deadline comes at once (what is in flight is cut), and Stop returns
// ctx's error without waiting for the rest. A Stop without Start stops the
// coordinator all the same; a second Stop waits for the first.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.c.Stop(ctx); err != nil {
		return fmt.Errorf("http stop: %w", err)
	}
	return nil
}

// stopPhase is the server's stop participant: ctx ends at the stop
// deadline (or sooner, if the ctx of the coordinator's Stop ends). It
// returns nil at once for a server that never started.
func (s *Server) stopPhase(ctx context.Context) error { return s.state.Stop(ctx, s.stop) }

// stop is the stop participant's work, run by s.state once, for a server
// that has started.
func (s *Server) stop(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	clk := s.c.Clock()
	start := clk.Now()
	err := s.srv.Shutdown(ctx)
	if ctx.Err() != nil && err != nil {
		// Shutdown gave up: whatever is still in flight is cut.
		cut := s.work.InFlight()
		_ = s.srv.Close() // its only error is closing the already closed listener
		srvstate.RecordCut(s.c, s.log, lifecycle.CutRequests, cut, deadline)
		err = nil
	}
	<-s.serveDone
	s.log.Info("http stopped", zap.Duration("took", clk.Now().Sub(start)))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// acceptListener reports every accepted connection to the coordinator's
// adaptive drain: once per connection, never per request.
type acceptListener struct {
	net.Listener
	note func(remote net.Addr)
}

func (l *acceptListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.note(conn.RemoteAddr())
	}
	return conn, err
}
