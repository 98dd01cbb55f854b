package probemod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
	"github.com/drainfx/drainfx/lifecycle"
)

// PathPrestop is where the admin server serves the kubelet's preStop hook:
// a call begins the drain and is answered when the drain has ended (see
// "The preStop hook" in the package documentation).
const PathPrestop = "/prestop"

// AdminRoute is a route the admin server serves beside the probes and
// /prestop, such as /metrics. Provide it under fx with [AsAdminRoute], or
// pass it to [New] with [WithHandler] or [WithRoutes].
type AdminRoute struct {
	// Pattern is the route's [http.ServeMux] pattern, "[METHOD ]/path":
	// "GET /metrics" (GET and HEAD), "POST /flags/{name}", "/debug/pprof/"
	// (a subtree, every method). Without a method, every method is routed
	// to Handler. It takes no host, and its path may not be one of the
	// probe paths or /prestop.
	Pattern string
	// Handler serves the route. Like every admin handler, it must return
	// when its request's context ends: the admin server is the last thing
	// to stop and waits for its handlers only briefly.
	Handler http.Handler
}

// Option configures [New] and [NewProbes].
type Option func(*options)

type options struct {
	log          *zap.Logger
	clock        lifecycle.Clock
	routes       []AdminRoute
	onServeError func(error)
	stopTimeout  time.Duration
}

func newOptions(opts []Option) options {
	o := options{log: zap.NewNop(), clock: clockctx.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	o.log = o.log.With(zap.String("component", "probe"))
	return o
}

// WithLogger sets the logger (default [zap.NewNop]); logs carry the field
// component=probe.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithClock sets the clock of the checks' timeouts and cache (default: the
// real clock); tests pass a fake one. It is not the coordinator's clock: the
// drain timeline and the checks are timed apart.
func WithClock(clk lifecycle.Clock) Option {
	return func(o *options) {
		if clk != nil {
			o.clock = clk
		}
	}
}

// WithRoutes adds routes to the admin server ([New] only).
func WithRoutes(routes ...AdminRoute) Option {
	return func(o *options) { o.routes = append(o.routes, routes...) }
}

// WithHandler adds the route pattern, served by h, to the admin server
// ([New] only); see [AdminRoute] for the pattern. For example:
//
//	probemod.WithHandler("GET /metrics", promhttp.Handler())
func WithHandler(pattern string, h http.Handler) Option {
	return WithRoutes(AdminRoute{Pattern: pattern, Handler: h})
}

// OnServeError sets what to do when the admin server stops serving on an
// error other than a normal stop ([New] only). The error is logged first.
// Under fx, [Module] asks the app to stop with exit code 1. Default: only
// the log.
func OnServeError(fn func(error)) Option {
	return func(o *options) { o.onServeError = fn }
}

// WithStopTimeout bounds [Admin.Stop]'s graceful shutdown, and then again
// its wait for the handlers and checks still running after the close
// ([New] only). Default: half the coordinator's Margin, at least 100ms.
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) { o.stopTimeout = d }
}

// minStopTimeout is the least default bound of Admin.Stop's two waits: time
// for handlers whose connection was just closed to see their context end.
const minStopTimeout = 100 * time.Millisecond

// Admin is the admin server: the probes, /prestop and the admin routes on
// their own port, apart from the public traffic. It is the last thing to
// stop: under fx, [Module]'s OnStop first waits for the coordinator's
// whole timeline ([lifecycle.Coordinator.Stop]: drain, stop phase,
// teardown, the shutdown report), then stops it.
type Admin struct {
	addr         string
	probes       *Probes
	srv          *http.Server
	log          *zap.Logger
	onServeError func(error)
	stopTimeout  time.Duration
	reqs         *tracker // requests in flight

	mu      sync.Mutex
	ln      net.Listener
	done    chan struct{} // closed when Serve has returned
	stopped bool
}

// adminMaxHeaderBytes bounds a request header on the admin port: the
// public server's default (httpmod's, 64 KiB, what proxies accept), where
// net/http's would be 1 MB. Probes, /prestop and metrics scrapes send a few
// hundred bytes.
const adminMaxHeaderBytes = 64 << 10

// New returns the admin server for cfg and the coordinator c, with the
// checks behind /readyz. It does not listen until [Admin.Start].
func New(cfg Config, c *lifecycle.Coordinator, checks []Check, opts ...Option) (*Admin, error) {
	probes, err := NewProbes(cfg, c, checks, opts...)
	if err != nil {
		return nil, err
	}
	o := newOptions(opts)
	mux := http.NewServeMux()
	probes.Register(mux)
	pre := newPrestop(c, o.log)
	probes.prestop.Store(pre)
	mux.Handle(PathPrestop, pre) // every method: the handler answers 405 itself
	if err := addRoutes(mux, o.routes); err != nil {
		return nil, err
	}
	stopTimeout := o.stopTimeout
	if stopTimeout <= 0 {
		stopTimeout = max(c.Plan().Margin/2, minStopTimeout)
	}
	a := &Admin{
		addr:         cfg.WithDefaults().Addr,
		probes:       probes,
		log:          o.log,
		onServeError: o.onServeError,
		stopTimeout:  stopTimeout,
		reqs:         new(tracker),
	}
	a.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !a.reqs.add() {
				http.Error(w, "admin server stopped", http.StatusServiceUnavailable)
				return
			}
			defer a.reqs.done()
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(o.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	return a, nil
}

// addRoutes validates routes and mounts them on mux. The error matches
// [ErrConfig] and names the pattern at fault.
func addRoutes(mux *http.ServeMux, routes []AdminRoute) error {
	reserved := map[string]bool{PathLivez: true, PathHealthz: true, PathReadyz: true, PathStartupz: true, PathPrestop: true}
	seen := make(map[string]bool, len(routes))
	for _, r := range routes {
		var method, path string
		switch f := strings.Fields(r.Pattern); len(f) {
		case 1:
			path = f[0]
		case 2:
			method, path = f[0], f[1]
		default:
			return configErrorf("admin route Pattern=%q is not \"[METHOD ]/path\"", r.Pattern)
		}
		key := strings.TrimSpace(method + " " + path)
		switch {
		case !strings.HasPrefix(path, "/"):
			return configErrorf("admin route Pattern=%q: the path does not start with / (a host is not allowed)", r.Pattern)
		case reserved[path]:
			return configErrorf("admin route Pattern=%q: path %q is taken by the admin server", r.Pattern, path)
		case seen[key]:
			return configErrorf("admin route %q registered twice", key)
		case r.Handler == nil:
			return configErrorf("admin route %q: Handler is nil", key)
		}
		seen[key] = true
		if err := handle(mux, key, r.Handler); err != nil {
			return configErrorf("admin route %q: %v", key, err)
		}
	}
	return nil
}

// handle is [http.ServeMux.Handle] returning its panic — an invalid
// pattern, or one that conflicts with a route already there — as an error:
// a bad route is a config error of the admin server, reported by [New].
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// Probes returns the probes the admin server serves, to mount them on
// another server too.
func (a *Admin) Probes() *Probes { return a.probes }

// Handler returns the admin server's handler (without a listener), for
// tests and for serving it elsewhere.
func (a *Admin) Handler() http.Handler { return a.srv.Handler }

// Addr returns the address the admin server listens on (the real port when
// [Config.Addr] asked for port 0), or nil before [Admin.Start], as
// httpmod's Server.Addr.
func (a *Admin) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Start listens on the configured address (a busy or bad address fails
// here, naming it) and serves in a goroutine of the Admin's. It does not
// block.
func (a *Admin) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil || a.stopped {
		return errors.New("probemod: admin server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin server: listen %q: %w", a.addr, err)
	}
	a.ln, a.done = ln, make(chan struct{})
	go a.serve(ln, a.done)
	a.log.Info("admin server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

func (a *Admin) serve(ln net.Listener, done chan struct{}) {
	defer close(done)
	err := a.srv.Serve(ln)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return
	}
	a.log.Error("admin server failed", zap.Error(err))
	if a.onServeError != nil {
		a.onServeError(err)
	}
}

// Stop shuts the admin server down: a graceful [http.Server.Shutdown]
// bounded by the stop timeout (see [WithStopTimeout]) and ctx, then
// [http.Server.Close], which ends the requests still in flight (a preStop
// call still waiting for the drain among them) by cancelling their
// contexts. It then waits, bounded again, for those handlers and for the
// checks' runs ([Probes.Close]); an error says what is still running.
// Later calls do nothing.
func (a *Admin) Stop(ctx context.Context) error {
	a.mu.Lock()
	ln, done, already := a.ln, a.done, a.stopped
	a.stopped = true
	a.mu.Unlock()
	if already {
		return nil
	}
	var errs []error
	if ln != nil {
		sctx, cancel := context.WithTimeout(ctx, a.stopTimeout)
		err := a.srv.Shutdown(sctx)
		cancel()
		if err != nil {
			a.log.Warn("admin server: graceful shutdown cut short, closing", zap.Duration("after", a.stopTimeout), zap.Error(err))
		}
		if err := a.srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("admin server: close: %w", err))
		}
		<-done // Serve returns as soon as its listener is closed
	}
	wctx, cancel := context.WithTimeout(ctx, a.stopTimeout)
	defer cancel()
	if n, err := a.reqs.close(wctx); err != nil {
		errs = append(errs, fmt.Errorf("admin server: %d handlers still running: %w", n, err))
	}
	if err := a.probes.Close(wctx); err != nil {
		errs = append(errs, fmt.Errorf("admin server: %w", err))
	}
	a.log.Info("admin server stopped")
	return errors.Join(errs...)
}
