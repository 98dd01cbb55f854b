package rollout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

// proxy is kube-proxy played by HAProxy: TCP mode, no retries, one server
// per pod slot, starting in maintenance. A server put in maintenance gets
// no new connections and keeps its established ones, as conntrack does.
type proxy struct {
	cmd     *exec.Cmd
	sock    string
	addr    string // the frontend, 127.0.0.1:port
	out     lockedBuffer
	connLog string // one line per connection: client port, server, accept time

	done    chan struct{} // closed when haproxy has exited
	waitErr error

	mu sync.Mutex // one runtime API command at a time
}

// The connection log (stdout) has one line per connection, written as soon
// as the server side is connected (logasap): the client's port, the server
// (sN, the pod slot) and the accept time, Unix seconds with milliseconds.
const haproxyConfig = `global
    stats socket %s mode 600 level admin
    maxconn 8192
    log stdout format raw local0

defaults
    mode tcp
    retries 0
    log global
    option logasap
    log-format "%%cp %%s %%Ts.%%ms"
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    maxconn 8192

frontend kube-proxy
    bind %s
    default_backend be

backend be
    balance roundrobin
%s`

// proxyOptions is one HAProxy: the haproxy binary at path, its
// configuration and admin socket in dir, the frontend address, one server
// per backend address (all disabled at start). With netns, it runs in
// that command's namespace (argv prefix) and dial reaches its frontend.
type proxyOptions struct {
	path, dir, frontend string
	backends            []string
	netns               []string
	dial                dialFunc
}

// startProxy writes HAProxy's configuration and starts it.
func startProxy(ctx context.Context, o proxyOptions) (*proxy, error) {
	p := &proxy{
		sock:    filepath.Join(o.dir, "haproxy.sock"),
		addr:    o.frontend,
		connLog: filepath.Join(o.dir, "connections.log"),
		done:    make(chan struct{}),
	}
	var servers strings.Builder
	for i, addr := range o.backends {
		fmt.Fprintf(&servers, "    server s%d %s disabled\n", i, addr)
	}
	cfg := filepath.Join(o.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, p.sock, p.addr, servers.String()), 0o600); err != nil {
		return nil, err
	}
	dial := o.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	logf, err := os.Create(p.connLog)
	if err != nil {
		return nil, err
	}
	// -db: stay in the foreground.
	argv := append(append([]string(nil), o.netns...), o.path, "-db", "-f", cfg)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logf, &p.out
	p.cmd.SysProcAttr = kube.SysProcAttr()
	err = p.cmd.Start()
	logf.Close() // the child has its own copy
	if err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	// Ready when the runtime API answers and the frontend accepts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errAPI := p.command("show info")
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, errFE := dial(dctx, "tcp", p.addr)
		cancel()
		if errFE == nil {
			c.Close()
		}
		if errAPI == nil && errFE == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("haproxy exited at start (%v):\n%s", p.waitErr, p.out.String())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling interval
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("haproxy not ready after 10s (api: %v, frontend: %v):\n%s", errAPI, errFE, p.out.String())
		}
	}
}

// command runs one command on the runtime API and returns its answer.
func (p *proxy) command(cmd string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := net.DialTimeout("unix", p.sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(c)
	return string(out), err
}

// setState puts server sN in state "ready" or "maint". It returns once
// HAProxy has answered: from then on, new connections follow the state.
func (p *proxy) setState(slot int, state string) error {
	out, err := p.command(fmt.Sprintf("set server be/s%d state %s", slot, state))
	if err != nil {
		return fmt.Errorf("haproxy: set server s%d state %s: %w", slot, state, err)
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("haproxy: set server s%d state %s: %s", slot, state, s)
	}
	return nil
}

// proxyConn is one connection through the proxy.
type proxyConn struct {
	at   time.Time // accepted, to the millisecond
	slot int       // the server: the pod slot
}

// conns reads the connection log: the connections of each client port, in
// the order they were accepted. Lines it cannot read (HAProxy's own
// messages) are skipped.
func (p *proxy) conns() (map[int][]proxyConn, error) {
	f, err := os.Open(p.connLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[int][]proxyConn)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		port, c, ok := parseConnLine(sc.Text())
		if ok {
			out[port] = append(out[port], c)
		}
	}
	for _, cs := range out {
		slices.SortStableFunc(cs, func(a, b proxyConn) int { return a.at.Compare(b.at) })
	}
	return out, sc.Err()
}

// parseConnLine reads "PORT sN SECONDS.MILLIS".
func parseConnLine(line string) (port int, c proxyConn, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || !strings.HasPrefix(f[1], "s") {
		return 0, c, false
	}
	port, err1 := strconv.Atoi(f[0])
	slot, err2 := strconv.Atoi(f[1][1:])
	sec, ms, found := strings.Cut(f[2], ".")
	s, err3 := strconv.ParseInt(sec, 10, 64)
	m, err4 := strconv.ParseInt(ms, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !found {
		return 0, c, false
	}
	return port, proxyConn{at: time.Unix(s, m*int64(time.Millisecond)), slot: slot}, true
}

// stop ends HAProxy (hard stop: the load has ended) and waits for it.
func (p *proxy) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
