package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a child process with its output in a log file, waited for by
// a goroutine of its own that ends when the process does. If drainfx dies
// without stopping it, the kernel kills it (Linux: the parent-death
// signal).
type Process struct {
	Name string
	Log  string // the path of its output
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit, once done is closed
}

// Launch starts argv (argv[0] looked up in PATH unless it holds a slash)
// with its output in dir/NAME.log, NAME being name, with env added to this
// process's environment.
func Launch(dir, name string, argv []string, env ...string) (*Process, error) {
	p := &Process{Name: name, Log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = SysProcAttr()
	if err := p.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended; call it after Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM, then SIGKILL after timeout, and returns once the
// process has exited.
func (p *Process) Stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the last lines of the process's output.
func (p *Process) Tail(lines int) string {
	b, _ := os.ReadFile(p.Log)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(len(l)-lines, 0):], "\n")
}

// await polls ready every 50 ms until it holds; it fails if the process
// exits first, timeout passes or ctx ends.
func (p *Process) await(ctx context.Context, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", p.Name, p.err, p.Tail(30))
		case <-time.After(50 * time.Millisecond): // polling a process with a deadline
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v:\n%s", p.Name, timeout, p.Tail(30))
		}
	}
	return nil
}
