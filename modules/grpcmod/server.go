package grpcmod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/drainfx/drainfx/internal/srvstate"
	"github.com/drainfx/drainfx/lifecycle"
)

// CutRPCs is the kind of work a [Server] records as cut
// ([lifecycle.Telemetry.RecordCut]): the RPCs still in flight at the stop
// deadline.
const CutRPCs lifecycle.CutKind = "rpcs"

// InFlightGauge is the name under which a [Server] registers its count of
// RPCs in flight with [lifecycle.Telemetry.TrackInFlight]: "rpcs", as its
// cuts are.
const InFlightGauge = string(CutRPCs)

var errAlreadyStarted = errors.New("grpcmod: server already started")

// cutNamesWait bounds the wait, after the stop deadline, for the handlers
// of the RPCs cut to return and name their methods.
const cutNamesWait = 100 * time.Millisecond

// Service registers gRPC services on the server, as generated code does:
//
//	grpcmod.ServiceFunc(func(s grpc.ServiceRegistrar) { pb.RegisterOrdersServer(s, orders) })
//
// Under fx, provide services with [AsService].
type Service interface {
	Register(s grpc.ServiceRegistrar)
}

// ServiceFunc adapts a function to [Service].
type ServiceFunc func(s grpc.ServiceRegistrar)

// Register calls f(s).
func (f ServiceFunc) Register(s grpc.ServiceRegistrar) { f(s) }

// Option configures a [Server] built by [New].
type Option func(*options)

type options struct {
	log          *zap.Logger
	services     []Service
	serverOpts   []grpc.ServerOption
	creds        credentials.TransportCredentials
	given        net.Listener
	onServeError func(error)
}

// WithLogger sets the logger (default [zap.NewNop]); the server adds the
// field component=grpc.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithServices registers services when [New] runs. Nil ones are skipped.
func WithServices(svcs ...Service) Option {
	return func(o *options) { o.services = append(o.services, svcs...) }
}

// WithServerOptions passes options to [grpc.NewServer] (interceptors,
// keepalive, stats handlers). The server's own interceptors run first.
// Give transport credentials with [WithTransportCredentials], not with
// [grpc.Creds] here: credentials given here replace the server's own
// wrapper of them, and the drain's GOAWAY is then never sent (clients
// move at the stop phase only).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// WithTransportCredentials sets the server's transport credentials (TLS:
// [google.golang.org/grpc/credentials.NewTLS]). Default: plaintext
// ([insecure.NewCredentials]), for in-cluster traffic. The server wraps
// them to send the drain's GOAWAY on the connections they secure.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(o *options) {
		if creds != nil {
			o.creds = creds
		}
	}
}

// WithListener makes [Server.Start] serve on ln (socket activation, tests)
// instead of listening on [Config.Addr]. The server closes it.
func WithListener(ln net.Listener) Option {
	return func(o *options) { o.given = ln }
}

// WithServeError sets the function called (once, from the serve goroutine)
// when [grpc.Server.Serve] fails: the server no longer accepts and the
// process should stop. The error is logged whether or not fn is set. Under
// fx, [Module] passes a function that calls fx.Shutdowner.Shutdown with
// exit code 1.
func WithServeError(fn func(error)) Option {
	return func(o *options) { o.onServeError = fn }
}

// Server is a [grpc.Server] with the health v1 service, on the drain
// timeline of a [lifecycle.Coordinator]. Build it with [New]; register
// services before [Server.Start].
type Server struct {
	cfg          Config
	c            *lifecycle.Coordinator
	log          *zap.Logger
	grpc         *grpc.Server
	health       *health.Server
	given        net.Listener
	onServeError func(error)

	work         srvstate.Work   // RPCs begun and ended: the in-flight count
	cut          srvstate.Cut    // the RPCs cut at the stop deadline, named by method as they end
	conns        atomic.Int64    // connections that began an RPC other than a health Check: the arrivals
	goAways      atomic.Int64    // GOAWAYs sent in the drain
	streamsEnded atomic.Int64    // streams ended by the stop phase
	stopping     context.Context // done when the stop phase begins

	state     *srvstate.State // started once, stopped once (by the stop participant)
	serveDone chan struct{}   // closed when the serve goroutine has returned; set by start, read by stop (state orders them)

	mu sync.Mutex
	ln net.Listener
}

// New builds a server for cfg whose drain follows c, with the health
// service and the given services registered, and registers it with c: its
// stop participant "grpc" ([lifecycle.Coordinator.AtStop]), the health
// switch to NOT_SERVING at D0, its in-flight gauge and its arrival counter.
// It does not listen yet: [Server.Start] does. It fails with an error
// matching [ErrConfig] if cfg is invalid.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, configErrorf("coordinator is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zap.NewNop(), creds: insecure.NewCredentials()}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{cfg: cfg.WithDefaults(), c: c, log: o.log.With(zap.String("component", "grpc")),
		given: o.given, onServeError: o.onServeError, state: srvstate.New(errAlreadyStarted, func() error { return srvstate.StartCut(c, "grpcmod") })}
	stopping, stopStreams := context.WithCancel(context.Background())
	s.stopping = stopping
	draining := func() bool { return c.State() >= lifecycle.StateDraining }
	var keep []grpc.ServerOption
	if age := s.cfg.MaxConnectionAge; age > 0 {
		// MaxConnectionAgeGrace stays infinite: a stream is never cut.
		keep = append(keep, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: age}))
	}
	sopts := append(append([]grpc.ServerOption{
		grpc.Creds(drainCreds{TransportCredentials: o.creds, draining: draining, sent: func() { s.goAways.Add(1) }}),
		grpc.StatsHandler(connNoter{note: c.Telemetry().NoteNewConnection, n: &s.conns}),
		grpc.ChainUnaryInterceptor(s.countUnary),
		grpc.ChainStreamInterceptor(s.countStream, s.endStreams),
	}, keep...), o.serverOpts...)
	s.grpc = grpc.NewServer(sopts...)
	s.health = health.NewServer()
	healthgrpc.RegisterHealthServer(s.grpc, s.health)
	for _, svc := range o.services {
		if svc != nil {
			svc.Register(s.grpc)
		}
	}

	// Registered last, once nothing can fail: the coordinator holds on to
	// what it is given.
	//
	// NOT_SERVING from D0, in the transition itself: a Watch client hears
	// it at once. Shutdown is sticky: nothing sets SERVING again.
	c.OnState(lifecycle.StateDraining, func() { s.health.Shutdown() })
	// Streams end as the stop phase begins, in the transition, before any
	// stop participant runs: GracefulStop would wait for them.
	c.OnState(lifecycle.StateStopping, stopStreams)
	c.AtStop("grpc", s.stopPhase)
	tel := c.Telemetry()
	tel.TrackInFlight(InFlightGauge, s.InFlight)
	tel.TrackArrivals(s.conns.Load)
	return s, nil
}

// GRPC returns the server to register services on, before [Server.Start].
// Do not call its Serve or Stop methods: the Server owns them.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the health server: set the status of a service of your
// own with SetServingStatus. From D0 it answers NOT_SERVING for every
// service, whatever is set.
func (s *Server) Health() *health.Server { return s.health }

// InFlight returns the number of RPCs whose handler has not returned.
func (s *Server) InFlight() int64 { return s.work.InFlight() }

// Addr returns the address the server listens on, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Start listens on [Config.Addr] synchronously, so a bad or busy address
// fails here, sets every registered service (and the server, "") SERVING
// unless the drain has begun, and serves in a goroutine that the stop phase
// waits for. A server starts once, and not at all once its stop phase has
// come.
func (s *Server) Start(ctx context.Context) error { return s.state.Start(ctx, s.start) }

// start is Start's work, run by s.state once.
func (s *Server) start(ctx context.Context) error {
	ln := s.given
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("grpc: listen %q: %w", s.cfg.Addr, err)
		}
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.health.SetServingStatus("", healthgrpc.HealthCheckResponse_SERVING)
	for name := range s.grpc.GetServiceInfo() {
		if name != healthgrpc.Health_ServiceDesc.ServiceName {
			s.health.SetServingStatus(name, healthgrpc.HealthCheckResponse_SERVING)
		}
	}
	if s.c.State() >= lifecycle.StateDraining {
		s.health.Shutdown()
	}
	s.serveDone = make(chan struct{})
	go s.serve(ln, s.serveDone)
	s.log.Info("grpc serving", zap.Stringer("addr", ln.Addr()))
	return nil
}

func (s *Server) serve(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	// Serve returns nil after Stop or GracefulStop, an error otherwise.
	if err := s.grpc.Serve(ln); err != nil {
		s.log.Error("grpc serve failed", zap.Error(err))
		if s.onServeError != nil {
			s.onServeError(err)
		}
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
// calls when the stop phase begins: it stops gracefully
// ([grpc.Server.GracefulStop]: no new connections or RPCs, clients get
// GOAWAY; streams, ended with UNAVAILABLE as the phase began, return; the
// RPCs in flight finish) until the stop deadline (D0 + GracePeriod −
// TeardownReserve − Margin). Then it
// stops hard ([grpc.Server.Stop]: connections closed, the contexts of the
// RPCs left cancelled), counts those RPCs as cut ([CutRPCs]) and
// logs them. A handler that ignores its context is left running.
//
// A cut is not an error of Stop: the coordinator's report carries it and
// makes the exit code 1. If ctx ends first, the drain is cut short, the
// stop deadline comes at once (what is in flight is cut), and Stop returns
// ctx's error without waiting for the rest. A Stop without Start stops the
// coordinator all the same; a second Stop waits for the first.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.c.Stop(ctx); err != nil {
		return fmt.Errorf("grpc stop: %w", err)
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
	graceful := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(graceful)
	}()
	select {
	case <-graceful:
	case <-ctx.Done():
		cut := s.work.InFlight()
		s.cut.Begin(cut)
		// Stop closes the connections and cancels the RPCs' contexts; it
		// does not wait for the handlers. GracefulStop does: it returns
		// when the last handler has, and a handler that ignores its
		// context keeps it (and its goroutine) until then. Waiting for it
		// here would hold the stop phase past its deadline.
		s.grpc.Stop()
		// The handlers that heed their context return at once and name
		// their methods; the wait is bounded.
		srvstate.RecordCut(s.c, s.log, CutRPCs, cut, deadline, s.cut.Wait(cutNamesWait)...)
	}
	<-s.serveDone // Serve returns once Stop or GracefulStop has
	s.log.Info("grpc stopped", zap.Duration("took", clk.Now().Sub(start)),
		zap.Int64("drainGoAways", s.goAways.Load()), zap.Int64("streamsEnded", s.streamsEnded.Load()))
	return nil
}

func (s *Server) countUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.work.Begin()
	defer s.end(info.FullMethod)
	return h(ctx, req)
}

func (s *Server) countStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	s.work.Begin()
	defer s.end(info.FullMethod)
	return h(srv, ss)
}

// end counts an RPC that ends; one that ends after the stop deadline cut
// it is named by its method in the report.
func (s *Server) end(method string) {
	if s.cut.Cutting() {
		s.cut.Add(method)
	}
	s.work.End()
}
