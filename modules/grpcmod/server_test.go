package grpcmod_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/grpcmod"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait on an event in these tests; reaching it is a
// failure, not a timing.
const waitTimeout = 5 * time.Second

var (
	roomy = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}
	// tight: the stop phase ends 600ms after D0, the teardown 1s.
	tight = lifecycle.Config{
		GracePeriod:     time.Second,
		DrainDelay:      lifecycle.None,
		DrainQuiet:      lifecycle.None,
		TeardownReserve: 400 * time.Millisecond,
		Margin:          lifecycle.None,
		IgnoreSignals:   true,
	}
)

// slow is a test service written without generated code: Wait answers once
// released (forwarding to next, if set); Ticks sends one message and then
// never ends by itself, until its context ends; Stuck sends one message and
// ignores its context until unstuck.
type slow struct {
	next    *slowClient
	entered chan struct{} // closed when a Wait call has arrived
	release chan struct{}
	unstuck chan struct{} // ends Stuck
	once    sync.Once
}

const slowName = "drainfx.test.Slow"

func newSlow() *slow {
	return &slow{entered: make(chan struct{}), release: make(chan struct{}), unstuck: make(chan struct{})}
}

func (s *slow) wait(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.next != nil {
		out, err := s.next.Wait(ctx, in.Value)
		return wrapperspb.String(out), err
	}
	return wrapperspb.String("done " + in.Value), nil
}

var slowDesc = grpc.ServiceDesc{
	ServiceName: slowName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Wait",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(*slow).wait(ctx, req.(*wrapperspb.StringValue))
			}
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + slowName + "/Wait"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Ticks",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
				return err
			}
			if err := stream.SendMsg(wrapperspb.String("tick")); err != nil {
				return err
			}
			<-stream.Context().Done() // never ends by itself
			return stream.Context().Err()
		},
	}, {
		StreamName:    "Stuck",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
				return err
			}
			if err := stream.SendMsg(wrapperspb.String("stuck")); err != nil {
				return err
			}
			<-srv.(*slow).unstuck // ignores its context
			return nil
		},
	}},
}

func (s *slow) service() grpcmod.Service {
	return grpcmod.ServiceFunc(func(r grpc.ServiceRegistrar) { r.RegisterService(&slowDesc, s) })
}

// slowClient is the stub generated code would be.
type slowClient struct{ cc grpc.ClientConnInterface }

func newSlowClient(cc grpc.ClientConnInterface) *slowClient { return &slowClient{cc} }

func (c *slowClient) Wait(ctx context.Context, v string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := c.cc.Invoke(ctx, "/"+slowName+"/Wait", wrapperspb.String(v), out)
	return out.GetValue(), err
}

// waitResult is the answer of a Wait call.
type waitResult struct {
	out string
	err error
}

// goWait calls Wait(v) from a goroutine; its answer arrives on the channel.
func (c *slowClient) goWait(v string) <-chan waitResult {
	res := make(chan waitResult, 1)
	go func() {
		out, err := c.Wait(context.Background(), v)
		res <- waitResult{out, err}
	}()
	return res
}

func (c *slowClient) Ticks(ctx context.Context) (grpc.ClientStream, error) {
	return c.stream(ctx, 0)
}

func (c *slowClient) Stuck(ctx context.Context) (grpc.ClientStream, error) {
	return c.stream(ctx, 1)
}

func (c *slowClient) stream(ctx context.Context, i int) (grpc.ClientStream, error) {
	desc := &slowDesc.Streams[i]
	st, err := c.cc.NewStream(ctx, desc, "/"+slowName+"/"+desc.StreamName)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil {
		return nil, err
	}
	return st, st.CloseSend()
}

// newCoordinator returns a coordinator for cfg, stopped at cleanup: what
// the test left running is cut at once, and the cleanup waits for the
// report, so that none of the coordinator's goroutines outlives the test.
func newCoordinator(t *testing.T, cfg lifecycle.Config, opts ...lifecycle.Option) *lifecycle.Coordinator {
	t.Helper()
	c, err := lifecycle.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(cancelled)
		ctx, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel2()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("the coordinator did not stop: %v", err)
		}
	})
	return c
}

// report returns the shutdown report of a coordinator that has stopped.
func report(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report: the coordinator has not stopped")
	}
	return r
}

// startServer builds and starts a server on c; c's stop phase stops it.
func startServer(t *testing.T, c *lifecycle.Coordinator, opts ...grpcmod.Option) *grpcmod.Server {
	t.Helper()
	s, err := grpcmod.New(grpcmod.Config{Addr: "127.0.0.1:0"}, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func dial(t *testing.T, addr net.Addr) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestHealthServingThenNotServingFromD0(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	srv := startServer(t, c, grpcmod.WithServices(newSlow().service()))
	c.MarkStarted()
	hc := healthgrpc.NewHealthClient(dial(t, srv.Addr()))
	ctx := t.Context()

	for _, name := range []string{"", slowName} {
		resp, err := hc.Check(ctx, &healthgrpc.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthgrpc.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q) after start = %v, %v; want SERVING", name, resp.GetStatus(), err)
		}
	}
	watch, err := hc.Watch(ctx, &healthgrpc.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.Status != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first = %v, %v; want SERVING", resp.GetStatus(), err)
	}

	c.BeginDrain("test")
	if resp, err := watch.Recv(); err != nil || resp.Status != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch at D0 = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	for _, name := range []string{"", slowName} {
		resp, err := hc.Check(ctx, &healthgrpc.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthgrpc.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("Check(%q) after D0 = %v, %v; want NOT_SERVING", name, resp.GetStatus(), err)
		}
	}
	// Sticky: setting a status after D0 changes nothing.
	srv.Health().SetServingStatus(slowName, healthgrpc.HealthCheckResponse_SERVING)
	if resp, _ := hc.Check(ctx, &healthgrpc.HealthCheckRequest{Service: slowName}); resp.GetStatus() != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("status after SetServingStatus past D0 = %v, want NOT_SERVING", resp.GetStatus())
	}

	// The stop ends the Watch stream (GracefulStop would wait for it).
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Watch after stop: %v, want UNAVAILABLE", err)
	}
	if r := report(t, c); r.ExitCode != 0 {
		t.Fatalf("report cut %v", r.Cut)
	}
}

func TestUnaryCallInFlightAtD0Completes(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	svc := newSlow()
	srv := startServer(t, c, grpcmod.WithServices(svc.service()))
	c.MarkStarted()
	client := newSlowClient(dial(t, srv.Addr()))

	res := client.goWait("order 1")
	waittest.Recv(t, svc.entered, waitTimeout, "the call to arrive")

	c.BeginDrain("test")
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(context.Background()) }()
	waittest.Eventually(t, waitTimeout, func() bool { return c.State() == lifecycle.StateStopping }, "the stop phase")
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a call in flight", err)
	default:
	}
	close(svc.release)
	if r := waittest.Recv(t, res, waitTimeout, "the call"); r.err != nil || r.out != "done order 1" {
		t.Fatalf("call in flight at D0 = %q, %v; want it completed", r.out, r.err)
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if r := report(t, c); r.ExitCode != 0 || r.InFlightAtD0[grpcmod.InFlightGauge] != 1 {
		t.Fatalf("report: cut %v, in flight at D0 %v; want clean with 1 rpc at D0", r.Cut, r.InFlightAtD0)
	}
}

// A stream that never ends by itself ends when the stop phase begins, with
// UNAVAILABLE: the stop does not wait for its deadline (the clock is fake
// and never advanced), nothing is cut.
func TestStreamEndsWithUnavailableAtTheStopPhase(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, tight, lifecycle.WithClock(clk))
	srv := startServer(t, c, grpcmod.WithServices(newSlow().service()))
	c.MarkStarted()
	client := newSlowClient(dial(t, srv.Addr()))
	stream, err := client.Ticks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}

	c.BeginDrain("test")
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(context.Background()) }()
	err = stream.RecvMsg(new(wrapperspb.StringValue))
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != grpcmod.ShutdownMessage {
		t.Fatalf("stream ended with %v, want UNAVAILABLE %q", err, grpcmod.ShutdownMessage)
	}
	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if r := report(t, c); r.ExitCode != 0 {
		t.Fatalf("report cut %v, want clean", r.Cut)
	}
}

// A stream handler that ignores its context holds the stop until the stop
// deadline, and is cut there. The clock is fake: the stop deadline is
// reached by advancing it.
func TestStreamThatIgnoresItsContextIsCutAtTheStopDeadline(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	c := newCoordinator(t, tight, lifecycle.WithClock(clk))
	svc := newSlow()
	srv := startServer(t, c, grpcmod.WithServices(svc.service()))
	c.MarkStarted()
	client := newSlowClient(dial(t, srv.Addr()))
	stream, err := client.Stuck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}

	c.BeginDrain("test")
	d0 := c.Telemetry().Report().D0
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	waittest.BlockUntil(t, clk.FakeClock, 2, waitTimeout) // the stop and teardown deadlines
	plan := c.Plan()
	clk.Advance(plan.StopDeadline - time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the stop deadline: the stream was cut early", err)
	default:
	}
	if srv.InFlight() != 1 {
		t.Fatalf("%d RPCs in flight just before the stop deadline, want the stream", srv.InFlight())
	}
	clk.Advance(time.Millisecond)
	if err := waittest.Recv(t, stopped, waitTimeout, "Stop"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := clk.Since(d0); took < plan.StopDeadline || took >= plan.TeardownDeadline {
		t.Fatalf("stopped %v after D0, want from the stop deadline %v, within the budget %v", took, plan.StopDeadline, plan.TeardownDeadline)
	}
	if err := stream.RecvMsg(new(wrapperspb.StringValue)); err == nil {
		t.Fatal("the stream goes on after the stop")
	}
	if r := report(t, c); r.Cut[grpcmod.CutRPCs] != 1 || r.ExitCode != 1 {
		t.Fatalf("report cut %v exit %d, want rpcs=1 exit 1", r.Cut, r.ExitCode)
	}
	close(svc.unstuck) // a handler that ignores its context is left running by the cut
	waittest.Eventually(t, waitTimeout, func() bool { return srv.InFlight() == 0 }, "the stream's handler to return")
}

func TestServeErrorIsReported(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	srv := startServer(t, c, grpcmod.WithListener(ln), grpcmod.WithServeError(func(err error) { failed <- err }))
	if srv.Addr() != ln.Addr() {
		t.Fatalf("Addr() = %v, want the given listener's %v", srv.Addr(), ln.Addr())
	}
	ln.Close() // the listener fails under Serve
	if err := waittest.Recv(t, failed, waitTimeout, "the serve error"); err == nil {
		t.Fatal("nil serve error")
	}
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after a serve error: %v", err)
	}
}

func TestStartFailsOnABusyAddress(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, roomy)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := grpcmod.New(grpcmod.Config{Addr: ln.Addr().String()}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err == nil {
		t.Fatal("started on a busy address")
	}
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("Stop of a server that never started: %v", err)
	}
	if err := srv.Start(t.Context()); err == nil {
		t.Fatal("started after the stop phase")
	}
	if r := report(t, c); r.ExitCode != 0 {
		t.Fatalf("report of a server that never started: cut %v, hooks %+v", r.Cut, r.Hooks)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (grpcmod.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	err := grpcmod.Config{Addr: "9000"}.Validate()
	if !errors.Is(err, grpcmod.ErrConfig) || err.Error() != `grpcmod: Addr="9000" is not host:port` {
		t.Errorf("Validate = %v", err)
	}
	if _, err := grpcmod.NewClient("", "x"); !errors.Is(err, grpcmod.ErrConfig) {
		t.Errorf("NewClient without a name = %v", err)
	}
	if _, err := grpcmod.NewClient("orders", ""); !errors.Is(err, grpcmod.ErrConfig) {
		t.Errorf("NewClient without a target = %v", err)
	}
}
