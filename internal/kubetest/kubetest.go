// Package kubetest starts a real Kubernetes API server for a test: etcd and
// kube-apiserver, built by internal/ci/kube.sh, on free loopback ports in
// the test's temporary directory, with RBAC on, service account tokens
// signed by a key generated here, and an admin bearer token. Both
// processes are stopped when the test ends ([testing.TB.Cleanup]); if the
// test process dies first, the kernel kills them (Linux).
//
// No controller manager, scheduler or kubelet runs: nothing acts on the
// objects a test creates. So a test creates the namespace's "default"
// ServiceAccount itself before the first Pod ([Server.Namespace] does),
// binds its Pods to a node by name ([Server.BoundPod]: a Pod on no node is
// deleted at once whatever the grace period), and a graceful DELETE
// ([Server.DeletePod]) leaves the Pod Terminating for good, with its
// deletionTimestamp and deletionGracePeriodSeconds set.
//
// The helpers speak REST with net/http and encoding/json, as the code under
// test does: no client-go.
//
// # Binaries
//
// [Start] looks for etcd and kube-apiserver in [BinDir]. Without them it
// skips the test with one line naming the command that builds them
// ([BuildCommand]); with CI=true it fails instead, so that CI never passes
// without running these tests. Under -short it skips.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildCommand builds the binaries, from the repository's root.
const BuildCommand = "bash internal/ci/kube.sh"

// startTimeout bounds each process's start (etcd healthy, kube-apiserver
// ready); stopTimeout the wait after SIGTERM before SIGKILL.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 10 * time.Second
)

// BinDir is where internal/ci/kube.sh puts the binaries:
// $DRAINFX_KUBE_DIR/bin, by default $HOME/.cache/drainfx-kube/bin.
func BinDir() string {
	dir := os.Getenv("DRAINFX_KUBE_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "drainfx-kube")
	}
	return filepath.Join(dir, "bin")
}

// Server is a running kube-apiserver.
type Server struct {
	// URL is its base URL, https://127.0.0.1:PORT.
	URL string
	// CAFile holds the certificate it serves (with the CA that signed it,
	// both generated at its start), to trust it.
	CAFile string
	// Token is a bearer token of a member of system:masters.
	Token string
	// StartedIn is the time from kube-apiserver's launch to its first
	// /readyz 200.
	StartedIn time.Duration

	client *http.Client
	procs  []*process
}

// Start starts etcd and kube-apiserver for the test and waits until the
// API server is ready; both are stopped when the test ends. Without the
// binaries it skips the test (fails it with CI=true), naming
// [BuildCommand].
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("kube-apiserver: skipped in -short mode")
	}
	bin := BinDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.Mode()&0o111 == 0 {
			msg := fmt.Sprintf("kube-apiserver: no %s in %s; build etcd and kube-apiserver with: %s", name, bin, BuildCommand)
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
	dir := tb.TempDir()
	s := &Server{Token: randomHex(tb, 24)}
	tokens := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", s.Token)
	writeFile(tb, filepath.Join(dir, "tokens.csv"), []byte(tokens))
	writeSigningKey(tb, filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub"))
	ports := freePorts(tb, 3)
	etcdURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))

	etcd := s.launch(tb, dir, filepath.Join(bin, "etcd"),
		"--name", "drainfx",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "drainfx="+peerURL,
		"--unsafe-no-fsync", // a throw-away store
		"--log-level", "warn",
	)
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	etcd.await(tb, func() bool {
		resp, err := plain.Get(etcdURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	certDir := filepath.Join(dir, "certs")
	s.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	s.CAFile = filepath.Join(certDir, "apiserver.crt")
	launched := time.Now()
	kas := s.launch(tb, dir, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--cert-dir", certDir, // a self-signed serving certificate, for 127.0.0.1 among others
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
	)
	kas.await(tb, func() bool {
		if s.client == nil {
			// The certificate is written at start, before serving.
			c, err := clientTrusting(s.CAFile)
			if err != nil {
				return false
			}
			s.client = c
		}
		code, _, err := s.request(context.Background(), s.Token, http.MethodGet, "/readyz", nil)
		return err == nil && code == http.StatusOK
	})
	s.StartedIn = time.Since(launched)
	tb.Logf("kube-apiserver %s ready %v after its launch", s.URL, s.StartedIn.Round(time.Millisecond))
	return s
}

// Pids returns the process ids of etcd and kube-apiserver.
func (s *Server) Pids() []int {
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// process is one child process, waited for by a goroutine of its own that
// ends when the process does.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// launch starts a binary with its output in dir/NAME.log, and registers
// its stop: SIGTERM, then SIGKILL after stopTimeout; the cleanup returns
// once the process has exited.
func (s *Server) launch(tb testing.TB, dir, path string, args ...string) *process {
	tb.Helper()
	p := &process{name: filepath.Base(path), log: filepath.Join(dir, filepath.Base(path)+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("%s log (last lines):\n%s", p.name, p.tail())
		}
	})
	return p
}

// await polls ready until it holds, failing the test if the process exits
// first or startTimeout passes.
func (p *process) await(tb testing.TB, ready func() bool) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for !ready() {
		select {
		case <-p.done:
			tb.Fatalf("%s exited before it was ready (%v):\n%s", p.name, p.err, p.tail())
		case <-time.After(50 * time.Millisecond): // polling a process with a deadline
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %v:\n%s", p.name, startTimeout, p.tail())
		}
	}
}

// tail returns the last lines of the process's output.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-30, 0):], "\n")
}

// clientTrusting returns an HTTP client that trusts the PEM certificates
// in caFile.
func clientTrusting(caFile string) (*http.Client, error) {
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemData) {
		return nil, errors.New("no certificate in " + caFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true, // nothing left idle when the test ends
	}, Timeout: 30 * time.Second}, nil
}

// writeSigningKey writes the service account signing key (ECDSA P-256,
// ES256 tokens) and its public key, as kube-apiserver reads them.
func writeSigningKey(tb testing.TB, keyFile, pubFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	writeFile(tb, pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePorts returns n loopback ports free a moment ago (listened on with
// port 0 at once, then closed).
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// request sends one request with a bearer token and returns the status
// and the body.
func (s *Server) request(ctx context.Context, token, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}
