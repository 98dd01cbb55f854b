package httpmod

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// acceptQueued takes, without waiting, the connections that the kernel has
// accepted for ln and that no Accept has taken yet, then closes ln at once
// (a connection the kernel accepts in between is reset) and returns them.
// The listening socket is non-blocking: accept4 answers EAGAIN once the
// queue is empty. It stops early when the process is out of file
// descriptors; the rest are reset. Only a listener with a raw socket, such
// as a *net.TCPListener, is drained; another one is only closed.
func acceptQueued(ln net.Listener, closeLn func() error) []net.Conn {
	var fds []int
	if sc, ok := ln.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				for {
					nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
					switch {
					case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.ECONNABORTED):
						continue
					case err != nil:
						return // EAGAIN: empty; EMFILE and the like: no room
					}
					fds = append(fds, nfd)
				}
			})
		}
	}
	_ = closeLn()
	conns := make([]net.Conn, 0, len(fds))
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "accepted")
		conn, err := net.FileConn(f) // a duplicate, registered with the runtime's poller
		_ = f.Close()
		if err == nil {
			conns = append(conns, conn)
		}
	}
	return conns
}
