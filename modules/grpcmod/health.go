package grpcmod

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService is grpc-go's health server whose Watch streams end when
// the stop phase begins. A Watch stream never ends by itself, and
// GracefulStop waits for every stream: without this, one health-checking
// client would hold the stop until its deadline.
type healthService struct {
	*health.Server
	stop <-chan struct{} // closed when the stop phase begins
}

// watchStream is a Watch stream with a context that also ends at the stop.
type watchStream struct {
	healthgrpc.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }

// Watch streams the serving status (NOT_SERVING from D0) until the client
// leaves or the stop phase begins; then it ends with UNAVAILABLE, so a
// health-checking client looks elsewhere.
func (h healthService) Watch(in *healthgrpc.HealthCheckRequest, stream healthgrpc.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	// The stream's context ends at the stop phase: a goroutine of this
	// call's, which returns when either comes and is waited for.
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	err := h.Server.Watch(in, watchStream{stream, ctx})
	if isClosed(h.stop) && stream.Context().Err() == nil {
		return status.Error(codes.Unavailable, "server shutting down")
	}
	return err
}

// isClosed reports whether ch is closed, without blocking (ch is never
// sent on).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
