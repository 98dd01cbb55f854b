package grpcmod

import (
	"context"
	"fmt"

	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/drainfx/drainfx/lifecycle"
)

// Client is a gRPC client connection owned by the service.
type Client struct {
	name string
	conn *grpc.ClientConn
}

// NewClient creates a client connection named name (for logs and the
// shutdown report) to target, with [grpc.NewClient]: no I/O happens until
// the first RPC. Without transport credentials among opts the connection is
// plaintext (in-cluster traffic); pass [grpc.WithTransportCredentials] for
// TLS. It fails with an error matching [ErrConfig] if name or target is
// empty.
func NewClient(name, target string, opts ...grpc.DialOption) (*Client, error) {
	switch {
	case name == "":
		return nil, configErrorf("client Name=%q is empty", name)
	case target == "":
		return nil, configErrorf("client %q: Target=%q is empty", name, target)
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %q: target %q: %w", name, target, err)
	}
	return &Client{name: name, conn: conn}, nil
}

// Conn returns the connection, for generated stubs (pb.NewOrdersClient).
func (cl *Client) Conn() *grpc.ClientConn { return cl.conn }

// Name returns the client's name.
func (cl *Client) Name() string { return cl.name }

// Close closes the connection: RPCs still in flight on it fail with
// CANCELED. Close it after everything that uses it has stopped (in the
// teardown); under fx, [AsClient] does.
func (cl *Client) Close() error { return cl.conn.Close() }

type clientParams struct {
	fx.In

	Coordinator *lifecycle.Coordinator
}

// AsClient provides T — a generated stub such as pb.OrdersClient — over a
// client connection to target owned by the app, and closes the connection
// in the teardown, as the teardown hook "grpc client NAME"
// ([lifecycle.Coordinator.AtTeardown]) with a deadline of its own. The
// teardown runs after the stop phase, once the servers and the session
// registry have stopped, and in reverse order of registration: the
// connection closes after the hooks of every component built with the stub
// (workers), since those are built after it.
//
//	grpcmod.AsClient("orders", "dns:///orders:9000", pb.NewOrdersClient)
//
// Each T is provided once; for a target known only at run time, build the
// stub yourself with [NewClient] and register [Client.Close] with
// [lifecycle.Coordinator.AtTeardown].
func AsClient[T any](name, target string, newStub func(grpc.ClientConnInterface) T, opts ...grpc.DialOption) fx.Option {
	if newStub == nil {
		return fx.Error(configErrorf("AsClient(%q): newStub is nil", name))
	}
	return fx.Provide(func(p clientParams) (T, error) {
		cl, err := NewClient(name, target, opts...)
		if err != nil {
			var zero T
			return zero, err
		}
		p.Coordinator.AtTeardown("grpc client "+name, func(context.Context) error { return cl.Close() })
		return newStub(cl.Conn()), nil
	})
}
