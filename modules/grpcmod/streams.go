package grpcmod

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// ShutdownMessage is the message of the UNAVAILABLE status with which a
// stream ends when the stop phase ends it.
const ShutdownMessage = "server shutting down"

// errStopPhase is the cause of a stream context cancelled by the stop
// phase.
var errStopPhase = errors.New("grpcmod: the stop phase ended the stream")

// endStreams is the stream interceptor that ends every stream when the stop
// phase begins: grpc-go's GracefulStop waits for every stream and never
// cancels one, so a stream that does not end by itself (a subscription, a
// health Watch) would hold the stop until its deadline and be cut there.
// The handler's context is cancelled (its cause errStopPhase); when the
// handler returns, the stream ends with UNAVAILABLE ("server shutting
// down"), which clients read as "open it again, elsewhere", unless the
// handler returned an error of its own. By then the client has the
// connection's GOAWAY (see goAwayConn), so it opens the next stream on a
// new connection.
func (s *Server) endStreams(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.stopping, func() { cancel(errStopPhase) })
	defer stop()
	err := h(srv, stoppableStream{ss, ctx})
	if !errors.Is(context.Cause(ctx), errStopPhase) || ss.Context().Err() != nil {
		return err // ended by itself, or the client left
	}
	// nil, or the context's error passed on (as is, or as a status).
	if code := status.Code(err); err == nil || code == codes.Canceled || errors.Is(err, context.Canceled) {
		s.streamsEnded.Add(1)
		return status.Error(codes.Unavailable, ShutdownMessage)
	}
	return err
}

// stoppableStream is a server stream whose context also ends when the stop
// phase begins.
type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s stoppableStream) Context() context.Context { return s.ctx }

// healthCheck is the method of the kubelet's gRPC probes and of load
// balancers' health checks.
var healthCheck = "/" + healthgrpc.Health_ServiceDesc.ServiceName + "/Check"

// connNoter is the stats handler that tells the adaptive drain of every new
// connection ([lifecycle.Telemetry.NoteNewConnection]) and counts it as an
// arrival, when its first RPC other than a health Check begins: a
// connection that only checks health (a kubelet gRPC probe, a load
// balancer's health check) did not come through the proxies, and would
// keep the drain waiting for nothing.
type connNoter struct {
	note func(remote net.Addr) // Telemetry.NoteNewConnection
	n    *atomic.Int64         // connections noted: the server's arrivals
}

type connKey struct{}

// connState is one connection's.
type connState struct {
	remote net.Addr
	noted  atomic.Bool
}

func (c connNoter) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{remote: info.RemoteAddr})
}

func (c connNoter) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if info.FullMethodName == healthCheck {
		return ctx
	}
	if st, ok := ctx.Value(connKey{}).(*connState); ok && !st.noted.Load() && st.noted.CompareAndSwap(false, true) {
		c.n.Add(1)
		c.note(st.remote)
	}
	return ctx
}

func (connNoter) HandleConn(context.Context, stats.ConnStats) {}
func (connNoter) HandleRPC(context.Context, stats.RPCStats)   {}
