package kube

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// do runs fn on an OS thread of its own that has entered the namespace.
// setns(2) moves the calling thread only: the goroutine is locked to it,
// and the thread goes back to the process's namespace before it is given
// back to the scheduler. If it cannot, the goroutine ends still locked,
// and the Go runtime ends the thread with it: no other goroutine ever runs
// in the wrong namespace.
func (n Netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer back.Close()
		target, err := os.Open(n.Path())
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", n, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", n, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(back.Fd()), unix.CLONE_NEWNET); err != nil {
			// Left locked: the thread ends with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", n, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
