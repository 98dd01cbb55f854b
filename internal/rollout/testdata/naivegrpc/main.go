// Command naivegrpc serves the gRPC contract of examples/grpc
// (drainfx.example.v1.Echo: Echo and Ticks, and the health service) the
// way a textbook gRPC service shuts down: on SIGTERM it calls GracefulStop,
// bounded by 10 s, then Stop — no drain, health never NOT_SERVING,
// readiness never fails, /prestop answers at once, Ticks streams left to
// GracefulStop (which never cancels them). The rollout check must report
// losses against it.
package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/drainfx/drainfx/examples/grpc/echopb"
)

type echoServer struct{ echopb.UnimplementedEchoServer }

func (echoServer) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Message: req.GetMessage()}, nil
}

func (echoServer) Ticks(_ *echopb.TicksRequest, stream grpc.ServerStreamingServer[echopb.Tick]) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for n := int64(0); ; n++ {
		if err := stream.Send(&echopb.Tick{N: n}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-t.C:
		}
	}
}

func main() {
	port, admin := env("PORT", "8080"), env("ADMIN_PORT", "9090")

	mux := http.NewServeMux()
	okay := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }
	mux.HandleFunc("/livez", okay)
	mux.HandleFunc("/readyz", okay)
	mux.HandleFunc("/prestop", okay)
	go http.ListenAndServe(net.JoinHostPort("", admin), mux)

	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		os.Exit(1)
	}
	s := grpc.NewServer()
	echopb.RegisterEchoServer(s, echoServer{})
	healthgrpc.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)

	// The textbook shutdown: GracefulStop on SIGTERM, Stop after a timeout.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.Stop()
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
