// Command grpc is a gRPC service on drainfx: the service
// drainfx.example.v1.Echo (echopb/echo.proto) — a unary Echo and a
// server-streaming Ticks, one message every 100 ms — and the standard health
// service (grpc.health.v1.Health) on PORT, with the probes, /prestop and
// /metrics on ADMIN_PORT, through a rolling update without a lost RPC.
//
// What it does at termination (README, "gRPC"): from D0 the health service
// answers NOT_SERVING and /readyz 503; every connection gets a GOAWAY with
// the answer of its next RPC, so clients move their channels through the
// proxies while the proxies still route here; once no new connection has
// come for the quiet period, the stop phase ends the Ticks streams with
// UNAVAILABLE (clients open them again, elsewhere) and GracefulStop waits
// for the calls in flight.
//
// Environment: PORT (the gRPC port, default 8080), ADMIN_PORT (9090),
// SHUTDOWN_GRACE_PERIOD (30s), SHUTDOWN_DRAIN_DELAY (5s),
// SHUTDOWN_DRAIN_QUIET (1s; 0s: a fixed drain), SHUTDOWN_MAX_DRAIN_DELAY,
// SHUTDOWN_DRAIN_MISS_PROBABILITY (0.001), SHUTDOWN_TEARDOWN_RESERVE (3s),
// PRESTOP_TOKEN (empty = none), GRPC_MAX_CONNECTION_AGE (5m; 0s: none). A
// bad value exits 1 with one line naming the variable.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/drainfx/drainfx/examples/grpc/echopb"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/grpcmod"
	"github.com/drainfx/drainfx/modules/metricsmod"
)

const (
	tickInterval = 100 * time.Millisecond
	// envMaxConnectionAge is grpcmod.Config.MaxConnectionAge.
	envMaxConnectionAge     = "GRPC_MAX_CONNECTION_AGE"
	defaultMaxConnectionAge = 5 * time.Minute
)

func main() {
	cfg, err := loadConfig(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc: logger:", err)
		os.Exit(1)
	}
	fx.New(app(cfg), fx.Supply(log)).Run() // exits 1 if start-up failed or the shutdown cut anything
}

// config is the service's configuration: the bundle's and the gRPC
// server's.
type config struct {
	web  modules.Config
	grpc grpcmod.Config
}

// loadConfig reads the environment: modules.FromEnv, with PORT as the gRPC
// server's port, and GRPC_MAX_CONNECTION_AGE.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	web, err := modules.FromEnv(lookup)
	if err != nil {
		return config{}, err
	}
	cfg := config{web: web, grpc: grpcmod.Config{Addr: web.HTTP.Addr, MaxConnectionAge: defaultMaxConnectionAge}}
	// The bundle's HTTP server has no route here: it listens on loopback,
	// out of the way, and never sees a connection.
	cfg.web.HTTP.Addr = "127.0.0.1:0"
	if v, ok := lookup(envMaxConnectionAge); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return config{}, fmt.Errorf("%s=%q: not a duration of 0 or more (like 5m; 0s: none)", envMaxConnectionAge, v)
		}
		cfg.grpc.MaxConnectionAge = d
	}
	return cfg, nil
}

// app is the whole service as fx options.
func app(cfg config) fx.Option {
	return fx.Options(
		modules.Web(cfg.web), // lifecycle + probes, /prestop on the admin port
		metricsmod.Module,    // /metrics on the admin port
		fx.Supply(cfg.grpc),
		grpcmod.Module,
		grpcmod.AsService(func() grpcmod.Service {
			return grpcmod.ServiceFunc(func(s grpc.ServiceRegistrar) { echopb.RegisterEchoServer(s, echoServer{}) })
		}),
	)
}

// echoServer is drainfx.example.v1.Echo.
type echoServer struct {
	echopb.UnimplementedEchoServer
}

// Echo answers with the message it was sent.
func (echoServer) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Message: req.GetMessage()}, nil
}

// Ticks sends a tick every 100 ms until its context ends: the client
// cancelled, or the stop phase began — then grpcmod ends the stream with
// UNAVAILABLE.
func (echoServer) Ticks(_ *echopb.TicksRequest, stream grpc.ServerStreamingServer[echopb.Tick]) error {
	t := time.NewTicker(tickInterval)
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
