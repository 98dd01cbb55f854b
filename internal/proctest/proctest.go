// Package proctest runs real processes of the project's example services in
// tests: build once ([Main] for a TestMain), start with an environment
// ([StartService] on free ports), wait for ports, send requests ([Get],
// [Do]) and signals, and time the exit.
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package at pkg (an import path or ./dir relative to
// the test's package) into dir and returns the binary's path. A directory
// is built from within it, so in the module that holds it (or the
// workspace): the rollout check builds the examples, a module of their own.
func Build(tb testing.TB, pkg, dir string) string {
	tb.Helper()
	bin, err := BuildErr(pkg, dir)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// BuildErr is [Build] for TestMain, where there is no testing.TB.
func BuildErr(pkg, dir string) (string, error) {
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if pkg == "." || filepath.IsAbs(pkg) || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") {
		cmd = exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = abs
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is a running process.
type Proc struct {
	cmd    *exec.Cmd
	out    syncBuffer
	done   chan struct{}
	exited time.Time
	err    error
}

// Start starts bin with the current environment plus env ("K=V").
func Start(tb testing.TB, bin string, env ...string) *Proc {
	tb.Helper()
	return StartArgs(tb, bin, nil, env...)
}

// StartArgs is [Start] with command-line arguments.
func StartArgs(tb testing.TB, bin string, args []string, env ...string) *Proc {
	tb.Helper()
	p := &Proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.exited = time.Now()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("output of %s:\n%s", bin, p.Output())
		}
	})
	return p
}

// Pid is the process's id (for /proc/PID/…).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Proc) Signal(tb testing.TB, sig syscall.Signal) time.Time {
	tb.Helper()
	now := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal %v: %v", sig, err)
	}
	return now
}

// Wait waits up to timeout for the exit and returns the exit code and when
// it happened.
func (p *Proc) Wait(tb testing.TB, timeout time.Duration) (code int, at time.Time) {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		tb.Fatalf("process still running after %v\n%s", timeout, p.Output())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0, p.exited
	case errors.As(p.err, &ee):
		return ee.ExitCode(), p.exited
	default:
		tb.Fatalf("wait: %v", p.err)
		return -1, p.exited
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHTTP polls url until it answers want, the process exits, or timeout.
func (p *Proc) WaitHTTP(tb testing.TB, url string, want int, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = strconv.Itoa(resp.StatusCode)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			tb.Fatalf("process exited while waiting for %s: %s", url, p.Output())
		case <-ctx.Done():
			tb.Fatalf("%s did not answer %d within %v (last: %s)\n%s", url, want, timeout, last, p.Output())
		case <-time.After(20 * time.Millisecond): // polling interval, not a guess at an event
		}
	}
}

// WaitOutput polls the output until it contains substr, and fails the test
// if the process exits first or timeout passes.
func (p *Proc) WaitOutput(tb testing.TB, substr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(p.Output(), substr) {
		select {
		case <-p.done:
			if strings.Contains(p.Output(), substr) {
				return
			}
			tb.Fatalf("process exited before writing %q:\n%s", substr, p.Output())
		case <-deadline:
			tb.Fatalf("no %q in the output within %v:\n%s", substr, timeout, p.Output())
		case <-time.After(10 * time.Millisecond): // polling interval, not a guess at an event
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// URL formats http://127.0.0.1:port + path.
func URL(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }
