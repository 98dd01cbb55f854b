package kube

import (
	"errors"
	"syscall"
)

// SysProcAttr kills a child if drainfx (or the test process) dies
// without stopping it: a panic, a SIGKILL, go test's -timeout. (The
// signal comes when the thread that started the child ends; Go ends a
// thread only with a goroutine locked to it.)
func SysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// kill sends SIGKILL to pid.
func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// alive reports whether process pid exists.
func alive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
