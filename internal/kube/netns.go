package kube

import (
	"context"
	"net"
	"path/filepath"
)

// netnsDir is where `ip netns add` binds the namespaces it names.
const netnsDir = "/run/netns"

// Netns is a named network namespace, as `ip netns add NAME` makes it
// (a bind mount at /run/netns/NAME). The process stays in its own
// namespace; [Netns.Dial] and [Netns.Listen] open sockets inside this one.
type Netns string

// Path is the namespace's file.
func (n Netns) Path() string { return filepath.Join(netnsDir, string(n)) }

// Command returns the argv that runs name with args inside the namespace:
// `ip netns exec NS name args…` (ip execs the program, so its process id
// is the program's).
func (n Netns) Command(name string, args ...string) []string {
	return append(append(n.Exec(), name), args...)
}

// Exec is the argv prefix that runs a command inside the namespace.
func (n Netns) Exec() []string { return []string{ipCommand(), "netns", "exec", string(n)} }

// Dial connects from inside the namespace: the socket is created by a
// thread that has entered it (a socket belongs to the namespace of its
// creator for good), then used as any other. Only IP literals: a name
// would be resolved elsewhere.
func (n Netns) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on a TCP address inside the namespace.
func (n Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}
