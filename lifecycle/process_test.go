package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// childEnv, when set to a duration, makes TestLifecycleChild run a real fx
// app with that drain delay instead of skipping.
const childEnv = "DRAINFX_LIFECYCLE_CHILD_DRAIN"

// TestLifecycleChild is the child process of TestProcessSignals: an fx app
// under app.Run with lifecycle.Module and an OnStop that drains, as the HTTP
// module's does.
func TestLifecycleChild(t *testing.T) {
	v := os.Getenv(childEnv)
	if v == "" {
		t.Skip("the child process of TestProcessSignals")
	}
	drain, err := time.ParseDuration(v)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lifecycle.Config{DrainDelay: drain, DrainQuiet: lifecycle.None}
	plan, err := lifecycle.NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx.New(
		fx.NopLogger,
		fx.StopTimeout(plan.StopTimeout),
		fx.Supply(cfg, zap.NewExample()), // JSON lines on stdout
		lifecycle.Module,
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
			for st := lifecycle.StateServing; st <= lifecycle.StateStopped; st++ {
				c.OnState(st, func() { fmt.Printf("state %s\n", st) })
			}
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					c.MarkStarted()
					fmt.Println("ready") // the signal handler is registered by now
					return nil
				},
				OnStop: c.Stop,
			})
		}),
	).Run()
}

// lineBuffer is a child's output, with a wait for a line to appear.
type lineBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (lb *lineBuffer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	select {
	case lb.changed <- struct{}{}:
	default:
	}
	return lb.b.Write(p)
}

func (lb *lineBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.String()
}

// waitFor waits until the child has printed text.
func (lb *lineBuffer) waitFor(t *testing.T, text string, exited <-chan struct{}) {
	t.Helper()
	timeout := time.After(eventTimeout)
	for !strings.Contains(lb.String(), text) {
		select {
		case <-lb.changed:
		case <-exited:
			if !strings.Contains(lb.String(), text) {
				t.Fatalf("child exited before printing %q:\n%s", text, lb)
			}
		case <-timeout:
			t.Fatalf("child did not print %q:\n%s", text, lb)
		}
	}
}

type child struct {
	cmd    *exec.Cmd
	out    *lineBuffer
	exited chan struct{}
	at     time.Time
	err    error
}

func startChild(t *testing.T, drain time.Duration) *child {
	t.Helper()
	c := &child{
		cmd:    exec.Command(os.Args[0], "-test.run=^TestLifecycleChild$", "-test.count=1"),
		out:    &lineBuffer{changed: make(chan struct{}, 1)},
		exited: make(chan struct{}),
	}
	c.cmd.Env = append(os.Environ(), childEnv+"="+drain.String(),
		// Under -race, a process that exits normally sleeps 1s first.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		c.at = time.Now()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	c.out.waitFor(t, "ready\n", c.exited)
	return c
}

func (c *child) signal(t *testing.T, sig syscall.Signal) time.Time {
	t.Helper()
	now := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return now
}

func (c *child) wait(t *testing.T) int {
	t.Helper()
	waittest.Recv(t, c.exited, eventTimeout, "the child to exit")
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("child: %v", c.err)
		return -1
	}
}

func TestProcessSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Parallel()

	t.Run("second SIGTERM exits 143 at once", func(t *testing.T) {
		t.Parallel()
		c := startChild(t, 10*time.Second)
		c.signal(t, syscall.SIGTERM)
		// fx's app.Run sees the signal too and may begin the drain first:
		// wait for the coordinator's own handler to have taken the first
		// signal, or the second could find its channel still full.
		c.out.waitFor(t, `"msg":"signal received: draining"`, c.exited)
		second := c.signal(t, syscall.SIGTERM)
		if code := c.wait(t); code != 143 {
			t.Fatalf("exit code %d, want 143; output:\n%s", code, c.out)
		}
		if took := c.at.Sub(second); took > time.Second {
			t.Errorf("exited %v after the second signal, want under 1s", took)
		}
		out := c.out.String()
		if strings.Contains(out, "state stopped") || !strings.Contains(out, `"msg":"second signal: exiting now"`) {
			t.Errorf("the child did not exit on the second signal:\n%s", out)
		}
	})

	// fx's app.Run does not listen for SIGHUP; the coordinator's handler
	// takes it as a termination signal: a drain, the report, exit 0.
	t.Run("SIGHUP drains, reports and exits 0", func(t *testing.T) {
		t.Parallel()
		c := startChild(t, 200*time.Millisecond)
		c.signal(t, syscall.SIGHUP)
		if code := c.wait(t); code != 0 {
			t.Fatalf("exit code %d, want 0; output:\n%s", code, c.out)
		}
		out := c.out.String()
		if got := childStates(out); got != "serving,draining,drained,stopping,tearing down,stopped" {
			t.Errorf("states %q; output:\n%s", got, out)
		}
		for _, want := range []string{`"msg":"signal received: draining"`, `"msg":"shutdown report"`, `"reason":"signal hangup"`} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in the output:\n%s", want, out)
			}
		}
	})

	t.Run("one SIGTERM drains and exits 0", func(t *testing.T) {
		t.Parallel()
		c := startChild(t, 200*time.Millisecond)
		c.signal(t, syscall.SIGTERM)
		if code := c.wait(t); code != 0 {
			t.Fatalf("exit code %d, want 0; output:\n%s", code, c.out)
		}
		out := c.out.String()
		if got := childStates(out); got != "serving,draining,drained,stopping,tearing down,stopped" {
			t.Errorf("states %q; output:\n%s", got, out)
		}
	})
}

// childStates is the states the child printed, in order, joined by commas.
func childStates(out string) string {
	var states []string
	for _, l := range strings.Split(out, "\n") {
		if st, ok := strings.CutPrefix(l, "state "); ok {
			states = append(states, st)
		}
	}
	return strings.Join(states, ",")
}
