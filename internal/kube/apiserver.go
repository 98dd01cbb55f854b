package kube

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
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// startTimeout bounds each process's start (etcd healthy, kube-apiserver
// ready, kube-proxy healthy); stopTimeout the wait after SIGTERM before
// SIGKILL.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 10 * time.Second
)

// APIServerOptions says where an API server runs.
type APIServerOptions struct {
	// Dir holds the data, certificates, tokens and logs (etcd.log,
	// kube-apiserver.log). Required.
	Dir string
	// Netns, if set, is the network namespace etcd and kube-apiserver run
	// in, on its loopback: the API server is then reached through
	// [Netns.Dial] (the client [APIServer.Do] uses does). Default: this
	// process's namespace, on free loopback ports.
	Netns Netns
}

// APIServer is a running etcd and kube-apiserver: RBAC on, service account
// tokens signed by a key generated at start, an admin bearer token, the
// service range [ServiceCIDR]. No controller runs unless started beside it
// ([StartDataPlane]).
type APIServer struct {
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

	netns  Netns
	client *http.Client
	procs  []*Process
}

// ServiceCIDR is the range ClusterIPs are allocated from.
const ServiceCIDR = "10.96.0.0/24"

// StartAPIServer starts etcd and kube-apiserver and waits until the API
// server is ready. On an error, whatever it started is stopped.
func StartAPIServer(ctx context.Context, opts APIServerOptions) (s *APIServer, err error) {
	if err := NeedBinaries("etcd", "kube-apiserver"); err != nil {
		return nil, err
	}
	dir, bin := opts.Dir, BinDir()
	token, err := randomHex(24)
	if err != nil {
		return nil, err
	}
	s = &APIServer{Token: token, netns: opts.Netns}
	defer func() {
		if err != nil {
			s.Stop()
			s = nil
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), fmt.Appendf(nil, "%s,admin,admin,\"system:masters\"\n", token), 0o600); err != nil {
		return s, err
	}
	if err := writeSigningKey(filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")); err != nil {
		return s, err
	}
	// In a namespace of its own every loopback port is free.
	ports := []int{2379, 2380, 6443}
	if opts.Netns == "" {
		if ports, err = freePorts(3); err != nil {
			return s, err
		}
	}
	etcdURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	s.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	s.CAFile = filepath.Join(dir, "certs", "apiserver.crt")

	etcd, err := s.launch(dir, filepath.Join(bin, "etcd"),
		"--name", "drainfx",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "drainfx="+peerURL,
		"--unsafe-no-fsync", // a throw-away store
		"--log-level", "warn",
	)
	if err != nil {
		return s, err
	}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: s.dial}, Timeout: 5 * time.Second}
	err = etcd.await(ctx, startTimeout, func() bool {
		resp, err := plain.Get(etcdURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		return s, err
	}

	launched := time.Now()
	kas, err := s.launch(dir, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--cert-dir", filepath.Dir(s.CAFile), // a self-signed serving certificate, for 127.0.0.1 among others
		"--service-cluster-ip-range", ServiceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
	)
	if err != nil {
		return s, err
	}
	err = kas.await(ctx, startTimeout, func() bool {
		if s.client == nil {
			// The certificate is written at start, before serving.
			roots, err := certPool(s.CAFile)
			if err != nil {
				return false
			}
			s.client = &http.Client{Transport: s.transport(roots)}
		}
		code, _, err := s.Do(ctx, http.MethodGet, "/readyz", nil, "")
		return err == nil && code == http.StatusOK
	})
	if err != nil {
		return s, err
	}
	s.StartedIn = time.Since(launched)
	return s, nil
}

// launch starts a binary, inside the server's namespace if it has one.
func (s *APIServer) launch(dir, path string, args ...string) (*Process, error) {
	argv := append([]string{path}, args...)
	if s.netns != "" {
		argv = s.netns.Command(path, args...)
	}
	p, err := Launch(dir, filepath.Base(path), argv)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	return p, nil
}

// Stop stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s), and
// returns once both have exited.
func (s *APIServer) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop(stopTimeout)
	}
	s.procs = nil
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}

// Processes returns etcd and kube-apiserver, as started.
func (s *APIServer) Processes() []*Process { return s.procs }

// Netns is the namespace the server listens in ("" for this process's).
func (s *APIServer) Netns() Netns { return s.netns }

// dial reaches the server's loopback.
func (s *APIServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.netns != "" {
		return s.netns.Dial(ctx, network, addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (s *APIServer) transport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         s.dial,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}
}

// requestTimeout bounds a request of [APIServer.Do].
const requestTimeout = 30 * time.Second

// Do sends one request with the admin token and returns the status and
// the body. body is sent as is, with contentType (default
// application/json).
func (s *APIServer) Do(ctx context.Context, method, path string, body []byte, contentType string) (int, []byte, error) {
	return s.DoAs(ctx, s.Token, method, path, body, contentType)
}

// DoAs is [APIServer.Do] with another bearer token.
func (s *APIServer) DoAs(ctx context.Context, token, method, path string, body []byte, contentType string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.open(ctx, token, method, path, body, contentType)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// Stream sends a GET (a watch) and returns the response, whose body the
// caller reads and closes; ctx bounds the whole stream.
func (s *APIServer) Stream(ctx context.Context, path string) (*http.Response, error) {
	resp, err := s.open(ctx, s.Token, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
	}
	return resp, nil
}

func (s *APIServer) open(ctx context.Context, token, method, path string, body []byte, contentType string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	return s.client.Do(req)
}

// WriteKubeconfig writes a kubeconfig for the admin to path, for the
// Kubernetes components (they reach the server from its namespace).
func (s *APIServer) WriteKubeconfig(path string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: drainfx
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: drainfx
  context:
    cluster: drainfx
    user: admin
current-context: drainfx
`, s.URL, s.CAFile, s.Token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func certPool(caFile string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemData) {
		return nil, errors.New("no certificate in " + caFile)
	}
	return roots, nil
}

// writeSigningKey writes the service account signing key (ECDSA P-256,
// ES256 tokens) and its public key, as kube-apiserver reads them.
func writeSigningKey(keyFile, pubFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// freePorts returns n loopback ports free a moment ago (listened on with
// port 0 at once, then closed).
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
