package httpmod_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// fdChildEnv makes the test binary the child of
// TestPublicConnectionsLeaveDescriptorsForTheProbes.
const fdChildEnv = "DRAINFX_TEST_FD_CHILD"

// A process with `ulimit -n 256` and 400 keep-alive clients on its public
// port: by default the public server takes no more connections than the
// open-file limit leaves room for (192 here), so the admin server still
// accepts the kubelet's probes. Without the bound the public server takes
// every descriptor, the admin server's accept fails with EMFILE, and a
// liveness probe that times out restarts the pod. The service runs in a
// child process (this test binary again), whose limit alone is lowered.
func TestPublicConnectionsLeaveDescriptorsForTheProbes(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		fdChild(t)
		return
	}
	t.Parallel()
	const clients, limit = 400, 192
	cmd := exec.Command(os.Args[0], "-test.run=^TestPublicConnectionsLeaveDescriptorsForTheProbes$", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrs := make(chan []string, 1)
	var out bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "addrs" {
				addrs <- f[1:]
			}
			out.WriteString(sc.Text() + "\n")
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close() // the child stops
		if err := waittest.Recv(t, exited, waitTimeout, "the child's exit"); err != nil {
			t.Errorf("child: %v\n%s%s", err, out.String(), stderr.String())
		}
	})
	a := waittest.Recv(t, addrs, waitTimeout, "the child's addresses")
	public, admin := a[0], a[1]

	answered := make(chan struct{}, clients)
	for range clients {
		conn, err := net.DialTimeout("tcp", public, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() }) // before the child stops
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		go func() {
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				resp.Body.Close()
				answered <- struct{}{}
			}
		}()
	}
	for range limit {
		waittest.Recv(t, answered, waitTimeout, "the public server's answers")
	}
	probes := &http.Client{Timeout: 3 * time.Second} // a kubelet's probe times out after 1s by default
	defer probes.CloseIdleConnections()
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := probes.Get("http://" + admin + path)
		if err != nil {
			t.Errorf("GET %s with %d public connections under ulimit -n 256: %v", path, clients, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
}

// fdChild is the service of the test above: a public server and an admin
// server under an open-file limit of 256, until stdin closes.
func fdChild(t *testing.T) {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 256, Max: 256}); err != nil {
		t.Fatal(err)
	}
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, okMux()) // MaxConns: the default
	if err != nil {
		t.Fatal(err)
	}
	admin, err := probemod.New(probemod.Config{Addr: "127.0.0.1:0"}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	fmt.Printf("addrs %s %s\n", s.Addr(), admin.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), servertest.WaitTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Error(err)
	}
	if err := admin.Stop(ctx); err != nil {
		t.Error(err)
	}
}
