package httpmod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/lifecycle"
)

var errAlreadyStarted = errors.New("httpmod: server already started")

// Server is a [net/http.Server] for any [net/http.Handler] that drains:
// see the package documentation. It is a [Drain] put together: the
// middleware in front of the handler, the listener wrapper, the stop
// participant. It is safe for concurrent use. Build it with [New];
// [Server.Start] and [Server.Stop] run it.
type Server struct {
	cfg     Config
	h       http.Handler // the app's handler
	d       *Drain
	handler http.Handler // h behind d's middleware
	srv     *http.Server

	mu sync.Mutex
	ln net.Listener // the bound listener, nil before Start
}

// New builds a server for cfg that serves h, whose drain follows c, and
// registers it with c: its stop participant "http"
// ([lifecycle.Coordinator.AtStop]), its in-flight gauge and its arrival
// counter. A nil h serves an empty [net/http.ServeMux] (404 for every
// request). It does not listen yet: [Server.Start] does. It fails with an
// error matching [ErrConfig] if cfg is invalid.
func New(cfg Config, c *lifecycle.Coordinator, h http.Handler, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, errNoCoordinator
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if h == nil {
		h = http.NewServeMux()
	}
	o := newOptions(append(opts, WithBodyReadTimeout(cfg.BodyReadTimeout)))
	o.maxConns = cfg.MaxConns

	// net/http's own complaints (accept errors, a superfluous WriteHeader
	// after a recovered panic, HTTP/2 protocol errors) go to zap as warnings.
	errLog, err := zap.NewStdLogAt(o.log, zapcore.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("http error log: %w", err)
	}
	// Registered last, once nothing can fail: the coordinator holds on to
	// what it is given.
	d := newDrain(c, o)
	s := &Server{cfg: cfg, h: h, d: d, handler: d.Handler(h)}
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.handler,
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
	if err := d.Manage(s.srv); err != nil { // a new drain: cannot fail
		return nil, err
	}
	return s, nil
}

// Handler returns the handler the server serves, as given to [New] (not
// behind the drain middleware: that is [Server.ServeHTTP]).
func (s *Server) Handler() http.Handler { return s.h }

// ServeHTTP serves r through the drain middleware, then the handler. It is
// the handler of the server's [net/http.Server]; tests and benchmarks may
// call it directly.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// InFlight returns the number of requests whose handler has not returned
// yet; a hijacked one (WebSocket) leaves the count when it is hijacked
// ([Drain.InFlight]).
func (s *Server) InFlight() int64 { return s.d.InFlight() }

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
// for ([Drain.Serve]). A server starts once, and not at all once its stop
// phase has come.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errAlreadyStarted
	}
	if s.d.stoppingNow() {
		return srvstate.StartCut(s.d.c, "httpmod")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w", s.cfg.Addr, err)
	}
	if err := s.d.Serve(s.srv, ln); err != nil {
		// The stop phase began while listening.
		_ = ln.Close()
		return srvstate.StartCut(s.d.c, "httpmod")
	}
	s.ln = ln
	return nil
}

// Stop stops the service and waits for it: it is the coordinator's
// [lifecycle.Coordinator.Stop], which begins the drain if nothing has yet,
// lets it run its course, runs the stop phase — this server's part of it
// among the others' — and the teardown, and returns once the report is
// out. It is the module's OnStop; without fx, call it (or the
// coordinator's Stop) once to shut down. Stop stops the whole service, not
// this server alone.
//
// The server's own part is its stop participant ([Drain.Manage]), which
// the coordinator calls when the stop phase begins: Shutdown, bounded by
// the stop deadline (D0 + GracePeriod − TeardownReserve − Margin); Close
// at the deadline, the requests still in flight cut and counted
// ([CutRequests]); then it waits for the serve goroutine.
//
// A cut is not an error of Stop: the coordinator's report carries it and
// makes the exit code 1. If ctx ends first, the drain is cut short, the
// stop deadline comes at once (what is in flight is cut), and Stop returns
// ctx's error without waiting for the rest. A Stop without Start stops the
// coordinator all the same; a second Stop waits for the first.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.d.c.Stop(ctx); err != nil {
		return fmt.Errorf("http stop: %w", err)
	}
	return nil
}
