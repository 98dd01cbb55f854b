package main_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/drainfx/drainfx/examples/grpc/echopb"
	"github.com/drainfx/drainfx/internal/proctest"
	"github.com/drainfx/drainfx/modules/grpcmod"
)

var bin string

func TestMain(m *testing.M) { proctest.Main(m, ".", &bin) }

func dial(t *testing.T, port int) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// The process serves Echo, Ticks and health on PORT, the probes on
// ADMIN_PORT; at SIGTERM it drains — health NOT_SERVING, calls still
// answered — ends the Ticks stream with UNAVAILABLE at the stop phase, and
// exits 0.
func TestServeDrainStop(t *testing.T) {
	t.Parallel()
	s := proctest.StartService(t, bin, "SHUTDOWN_DRAIN_DELAY=1s", "SHUTDOWN_DRAIN_QUIET=0s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc := dial(t, s.Port)
	echo, health := echopb.NewEchoClient(cc), healthgrpc.NewHealthClient(cc)

	if r, err := echo.Echo(ctx, &echopb.EchoRequest{Message: "hello"}); err != nil || r.GetMessage() != "hello" {
		t.Fatalf("Echo = %q, %v", r.GetMessage(), err)
	}
	if r, err := health.Check(ctx, &healthgrpc.HealthCheckRequest{}); err != nil || r.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", r.GetStatus(), err)
	}
	if r, err := health.Check(ctx, &healthgrpc.HealthCheckRequest{Service: echopb.Echo_ServiceDesc.ServiceName}); err != nil || r.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("health of %s = %v, %v; want SERVING", echopb.Echo_ServiceDesc.ServiceName, r.GetStatus(), err)
	}
	ticks, err := echo.Ticks(ctx, &echopb.TicksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for want := range int64(3) {
		if tick, err := ticks.Recv(); err != nil || tick.GetN() != want {
			t.Fatalf("tick %d = %v, %v", want, tick.GetN(), err)
		}
	}
	// The bundle's HTTP server is not on PORT: PORT speaks gRPC alone.
	if resp, err := http.Get(s.URL("/")); err == nil {
		resp.Body.Close()
		t.Fatalf("GET / on the gRPC port answered %s", resp.Status)
	}

	sigterm := s.Signal(t, syscall.SIGTERM)
	s.WaitHTTP(t, s.AdminURL("/readyz"), http.StatusServiceUnavailable, 5*time.Second)
	if r, err := health.Check(ctx, &healthgrpc.HealthCheckRequest{}); err != nil || r.GetStatus() != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health in the drain = %v, %v; want NOT_SERVING", r.GetStatus(), err)
	}
	if r, err := echo.Echo(ctx, &echopb.EchoRequest{Message: "still"}); err != nil || r.GetMessage() != "still" {
		t.Fatalf("Echo in the drain = %q, %v", r.GetMessage(), err)
	}
	n := int64(3)
	for {
		tick, err := ticks.Recv()
		if err != nil {
			if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != grpcmod.ShutdownMessage {
				t.Fatalf("Ticks ended with %v, want UNAVAILABLE %q", err, grpcmod.ShutdownMessage)
			}
			break
		}
		if tick.GetN() != n {
			t.Fatalf("tick %d, want %d", tick.GetN(), n)
		}
		n++
	}
	code, exited := s.Wait(t, 15*time.Second)
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if took := exited.Sub(sigterm); took < time.Second {
		t.Errorf("exited %v after SIGTERM, before the 1s drain", took)
	}
	if out := s.Output(); !strings.Contains(out, `"msg":"shutdown report"`) {
		t.Errorf("no shutdown report in the output:\n%s", out)
	}
}

// A bad value exits 1 with one line naming the variable.
func TestBadEnvExits1(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"SHUTDOWN_DRAIN_DELAY=soon", "GRPC_MAX_CONNECTION_AGE=-1s"} {
		p := proctest.Start(t, bin, env)
		code, _ := p.Wait(t, 10*time.Second)
		out := strings.TrimSpace(p.Output())
		name, value, _ := strings.Cut(env, "=")
		if code != 1 || !strings.Contains(out, name+`="`+value+`"`) || strings.Count(out, "\n") != 0 {
			t.Errorf("%s: exit %d, output %q; want 1 and one line naming the variable", env, code, out)
		}
	}
}
