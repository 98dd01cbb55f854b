package grpcmod_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
)

// connCounter is a client stats handler that counts the connections the
// client opened.
type connCounter struct{ n atomic.Int64 }

func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.n.Add(1)
	}
}

func dialCounting(t *testing.T, target string) (*grpc.ClientConn, *connCounter) {
	t.Helper()
	cnt := new(connCounter)
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(cnt))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, cnt
}

// From D0 each connection gets a GOAWAY with the answer of its next RPC:
// every call still succeeds, and the client sends the one after it on a new
// connection (through the proxies, to another pod), as HTTP/1 clients do
// after a Connection: close. Before D0 one connection carries them all.
func TestDrainMovesEachConnectionAfterItsNextRPC(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	svc := newSlow()
	close(svc.release) // every Wait answers at once
	srv := startServer(t, c, grpcmod.WithServices(svc.service()))
	c.MarkStarted()
	cc, conns := dialCounting(t, srv.Addr().String())
	client := newSlowClient(cc)
	call := func(n int) {
		t.Helper()
		for i := range n {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			out, err := client.Wait(ctx, "x")
			cancel()
			if err != nil || out != "done x" {
				t.Fatalf("call %d: %q, %v", i, out, err)
			}
		}
	}

	call(5)
	if n := conns.n.Load(); n != 1 {
		t.Fatalf("%d connections before D0, want 1", n)
	}
	c.BeginDrain("test")
	const after = 5
	call(after)
	// The first call after D0 went on the old connection and brought its
	// GOAWAY; each later one went on a connection of its own. (One more is
	// allowed: a client may reconnect as soon as the last GOAWAY came,
	// before it has a call to send; grpc-go waits for the call.)
	if n := conns.n.Load(); n < after || n > after+1 {
		t.Fatalf("%d connections after %d calls in the drain, want %d: one per call", n, after, after)
	}
}

// A connection that only checks health (the kubelet's gRPC probe, a load
// balancer's check) did not come through the proxies: the adaptive drain
// does not count it as a new connection, nor as an arrival. A connection
// that makes any other call is counted, once.
func TestHealthCheckConnectionsAreNotArrivals(t *testing.T) {
	t.Parallel()
	// A drain that lasts: the arrivals are read while it runs.
	c := newCoordinator(t, lifecycle.Config{DrainDelay: 20 * time.Second, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	svc := newSlow()
	close(svc.release)
	srv := startServer(t, c, grpcmod.WithServices(svc.service()))
	c.MarkStarted()
	c.BeginDrain("test")

	for range 3 { // three probes, a connection each
		cc, _ := dialCounting(t, srv.Addr().String())
		if _, err := healthgrpc.NewHealthClient(cc).Check(t.Context(), &healthgrpc.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		cc.Close()
	}
	if got := c.Telemetry().Report().Drain.Arrivals; got != 0 {
		t.Fatalf("health checks counted as %d new connections, want 0", got)
	}
	cc, _ := dialCounting(t, srv.Addr().String())
	client := newSlowClient(cc)
	for range 2 { // two calls: the second on a new connection (GOAWAY)
		if _, err := client.Wait(t.Context(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	waittest.Eventually(t, waitTimeout, func() bool { return c.Telemetry().Report().Drain.Arrivals == 2 },
		"two connections with calls to be counted")
}
