package rollout

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drainfx/drainfx/examples/grpc/echopb"
)

// These tests check how the gRPC clients of the load judge what they see,
// against an in-process gRPC server (no HAProxy).

// ticksServer sends ticks from 0 (or the numbers in seq), then ends the
// stream as end says.
type ticksServer struct {
	echopb.UnimplementedEchoServer
	seq   []int64
	end   func(net.Conn) error // the stream's status; it may close the connection
	conns chan net.Conn
	echo  func(string) (string, error)
}

func (s *ticksServer) Echo(_ context.Context, r *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	m, err := s.echo(r.GetMessage())
	return &echopb.EchoResponse{Message: m}, err
}

func (s *ticksServer) Ticks(_ *echopb.TicksRequest, st grpc.ServerStreamingServer[echopb.Tick]) error {
	for _, n := range s.seq {
		if err := st.Send(&echopb.Tick{N: n}); err != nil {
			return err
		}
	}
	return s.end(<-s.conns)
}

// connListener hands every accepted connection to the server's handler.
type connListener struct {
	net.Listener
	conns chan net.Conn
}

func (l connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

func grpcTestLoad(t *testing.T, srv *ticksServer) *load {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.conns = make(chan net.Conn, 1)
	s := grpc.NewServer()
	echopb.RegisterEchoServer(s, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(connListener{ln, srv.conns})
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	cfg := Config{Bin: "x", Load: Load{GRPC: 2}}
	return newLoad(cfg.withDefaults().Load, target{addr: ln.Addr().String()}, time.Now())
}

func TestGRPCTicksStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		seq       []int64
		end       func(net.Conn) error
		wantLost  int64
		wantTicks int64
		wantErr   string
	}{
		{"UNAVAILABLE from the server", []int64{0, 1, 2}, func(net.Conn) error {
			return status.Error(codes.Unavailable, "server shutting down")
		}, 0, 3, ""},
		{"OK from the server", []int64{0, 1}, func(net.Conn) error { return nil }, 0, 2, ""},
		{"another status", []int64{0}, func(net.Conn) error {
			return status.Error(codes.Internal, "boom")
		}, 1, 1, "Internal from the server"},
		{"wrong tick", []int64{0, 2}, func(net.Conn) error { return nil }, 1, 1, "wrong tick"},
		// A broken connection reads as UNAVAILABLE on the client too: no
		// trailers came, so it is a loss.
		// (The ticks sent before the close may not have left: not counted.)
		{"connection cut", []int64{0, 1}, func(c net.Conn) error {
			c.Close()
			return nil
		}, 1, -1, "Unavailable without the server's status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := grpcTestLoad(t, &ticksServer{seq: tt.seq, end: tt.end})
			cc, err := l.grpcDial(&l.grpc.conns)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			l.grpcTicksStream(t.Context(), echopb.NewEchoClient(cc), 0)
			if got := l.grpc.streamsLost.Load(); got != tt.wantLost {
				t.Errorf("lost %d, want %d (samples %q)", got, tt.wantLost, l.samples)
			}
			if got := l.grpc.ticks.Load(); tt.wantTicks >= 0 && got != tt.wantTicks {
				t.Errorf("ticks %d, want %d", got, tt.wantTicks)
			}
			if tt.wantErr != "" && (len(l.samples) != 1 || !strings.Contains(l.samples[0], tt.wantErr)) {
				t.Errorf("samples %q, want one naming %q", l.samples, tt.wantErr)
			}
		})
	}
}

func TestGRPCEcho(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		echo     func(string) (string, error)
		wantLost int64
		wantErr  string
	}{
		{"echoed", func(m string) (string, error) { return m, nil }, 0, ""},
		{"wrong answer", func(string) (string, error) { return "nope", nil }, 1, "want"},
		{"UNAVAILABLE", func(string) (string, error) { return "", status.Error(codes.Unavailable, "stopping") }, 1, "Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := grpcTestLoad(t, &ticksServer{echo: tt.echo})
			cc, err := l.grpcDial(&l.grpc.conns)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			l.grpcEcho(t.Context(), echopb.NewEchoClient(cc), 0, rand.New(rand.NewPCG(1, 2)), 0, &l.grpc.echo, rowGRPCEcho)
			if got := l.grpc.echo.seen.Load(); got != 1 {
				t.Errorf("seen %d, want 1", got)
			}
			if got := l.grpc.echo.lost.Load(); got != tt.wantLost {
				t.Errorf("lost %d, want %d (samples %q)", got, tt.wantLost, l.samples)
			}
			if tt.wantErr != "" && (len(l.samples) != 1 || !strings.Contains(l.samples[0], tt.wantErr)) {
				t.Errorf("samples %q, want one naming %q", l.samples, tt.wantErr)
			}
		})
	}
}
