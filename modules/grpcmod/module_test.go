package grpcmod_test

import (
	"context"
	"net"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"google.golang.org/grpc"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
)

// startBackend runs a plain gRPC server with the slow service, answering
// at once, outside the app.
func startBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := newSlow()
	close(svc.release)
	gs := grpc.NewServer()
	gs.RegisterService(&slowDesc, svc)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(ln) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return ln.Addr().String()
}

// The app's gRPC service calls a backend through a client from AsClient. A
// call in flight at D0 still reaches the backend: the client is closed
// only after the server that uses it has stopped.
func TestModuleServerThenClient(t *testing.T) {
	t.Parallel()
	backend := startBackend(t)
	front := newSlow()
	var (
		c   *lifecycle.Coordinator
		srv *grpcmod.Server
	)
	app := fxtest.New(t,
		fx.Supply(roomy, grpcmod.Config{Addr: "127.0.0.1:0"}),
		lifecycle.Module,
		lifecycle.AppOptions, // serving once started: the drain runs its course
		grpcmod.Module,
		grpcmod.AsClient("backend", backend, newSlowClient),
		grpcmod.AsService(func(next *slowClient) grpcmod.Service {
			front.next = next
			return front.service()
		}),
		fx.Populate(&c, &srv),
	)
	app.RequireStart()
	client := newSlowClient(dial(t, srv.Addr()))
	res := client.goWait("via front")
	waittest.Recv(t, front.entered, waitTimeout, "the call to arrive")

	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	waittest.Eventually(t, waitTimeout, func() bool { return c.State() >= lifecycle.StateStopping }, "the stop phase")
	close(front.release)
	if r := waittest.Recv(t, res, waitTimeout, "the call"); r.err != nil || r.out != "done via front" {
		t.Fatalf("call in flight at D0 = %q, %v; want the backend's answer", r.out, r.err)
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "the app to stop"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	r := report(t, c)
	// The server stopped in the stop phase, the client was closed after it,
	// in the teardown, on time.
	want := []lifecycle.HookReport{
		{Name: "grpc", Phase: lifecycle.StateStopping.String()},
		{Name: "grpc client backend", Phase: lifecycle.StateTearingDown.String()},
	}
	ok := len(r.Hooks) == len(want) && r.ExitCode == 0
	for i := 0; ok && i < len(want); i++ {
		h := r.Hooks[i]
		ok = h.Name == want[i].Name && h.Phase == want[i].Phase && !h.Overran && h.Err == ""
	}
	if !ok {
		t.Fatalf("report hooks %+v cut %v, want %+v on time and a clean stop", r.Hooks, r.Cut, want)
	}
}

func TestAsClientRejectsNilStub(t *testing.T) {
	t.Parallel()
	err := fx.New(fx.NopLogger, fx.Supply(roomy), lifecycle.Module,
		grpcmod.AsClient[*slowClient]("x", "127.0.0.1:1", nil)).Err()
	if err == nil {
		t.Fatal("fx.New accepted a nil stub constructor")
	}
}
