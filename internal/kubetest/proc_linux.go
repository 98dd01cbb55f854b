package kubetest

import "syscall"

// sysProcAttr kills the child if the test process dies without its
// cleanup (a panic, a SIGKILL from go test's -timeout).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
