package kube

import (
	"errors"
	"syscall"
)

// sysProcAttr kills the child if drainfx (or the test process) dies
// without stopping it: a panic, a SIGKILL, go test's -timeout.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// kill sends SIGKILL to pid.
func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// alive reports whether process pid exists.
func alive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
