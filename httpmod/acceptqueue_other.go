//go:build !linux

package httpmod

import "net"

// acceptQueued closes ln: the connections still in the kernel's accept
// queue are reset (they are taken and served on Linux only).
func acceptQueued(_ net.Listener, closeLn func() error) []net.Conn {
	_ = closeLn()
	return nil
}
