package grpcmod_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"
	"google.golang.org/grpc"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
)

func Example() {
	var srv *grpcmod.Server
	app := fx.New(fx.NopLogger,
		fx.Supply(
			lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true},
			grpcmod.Config{Addr: "127.0.0.1:0"},
		),
		lifecycle.Module,
		lifecycle.AppOptions,
		grpcmod.Module,
		grpcmod.AsService(func() grpcmod.Service {
			return grpcmod.ServiceFunc(func(s grpc.ServiceRegistrar) {
				// pb.RegisterOrdersServer(s, &orders{}) in a real service
			})
		}),
		// Clients of other services: grpcmod.AsClient("payments",
		// "dns:///payments:9000", pb.NewPaymentsClient).
		fx.Populate(&srv),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// Ask the server for its health, as a load balancer would.
	cl, _ := grpcmod.NewClient("self", srv.Addr().String())
	hc := healthgrpc.NewHealthClient(cl.Conn())
	resp, _ := hc.Check(ctx, &healthgrpc.HealthCheckRequest{})
	fmt.Println(resp.GetStatus())
	_ = cl.Close()
	fmt.Println(app.Stop(ctx))
	// Output:
	// SERVING
	// <nil>
}
