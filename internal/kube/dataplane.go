package kube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// NodeName is the name of the one node: the Node object, kube-proxy's
// --hostname-override, the spec.nodeName of the pods.
const NodeName = "drainfx-node"

// The kube-proxy modes [StartDataPlane] runs.
const (
	ProxyNFTables = "nftables"
	ProxyIPTables = "iptables"
)

// DataPlaneOptions configures [StartDataPlane].
type DataPlaneOptions struct {
	// Dir holds the API server's data and every component's log. Required.
	Dir string
	// ProxyMode is kube-proxy's --proxy-mode: nftables (default) or
	// iptables.
	ProxyMode string
	// ProxyArgs are added to kube-proxy's flags.
	ProxyArgs []string
}

// DataPlane is a node's service data plane: etcd, kube-apiserver,
// kube-controller-manager (the EndpointSlice controller alone) and
// kube-proxy, all in the node namespace of Net, and the Node object
// NodeName, Ready. No kubelet runs: the caller plays it.
type DataPlane struct {
	API       *APIServer
	Net       *Network
	ProxyMode string
	// StartedIn is the time StartDataPlane took.
	StartedIn time.Duration
	// KubeProxy and ControllerManager are the two components; their logs
	// are in Dir.
	KubeProxy, ControllerManager *Process
	// Conntrack logs the node's new TCP connections ([DataPlane.Connections]).
	Conntrack *Process
	// Kubeconfig is the admin's kubeconfig the components use (server
	// https://127.0.0.1:6443 in the node namespace).
	Kubeconfig string
}

// CheckDataPlane returns an error matching [ErrCannotRun] that says what
// this machine lacks to run a data plane with kube-proxy in mode, or nil.
func CheckDataPlane(mode string) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: needs Linux (network namespaces), not %s", ErrCannotRun, runtime.GOOS)
	}
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, fmt.Errorf("%w: needs root (it creates network namespaces and kube-proxy writes their netfilter rules)", ErrCannotRun))
	}
	cmds := map[string]string{"ip": "iproute2", "conntrack": "conntrack"}
	switch mode {
	case ProxyNFTables, "":
		cmds["nft"] = "nftables"
	case ProxyIPTables:
		cmds["iptables-restore"] = "iptables"
	default:
		return fmt.Errorf("kube-proxy mode %q: want %s or %s", mode, ProxyNFTables, ProxyIPTables)
	}
	if err := needCommands(cmds); err != nil {
		errs = append(errs, err)
	}
	if err := NeedBinaries("etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StartDataPlane checks the machine ([CheckDataPlane]), creates the
// network ([NewNetwork]), starts the API server in the node namespace,
// creates the Node (Ready, InternalIP [NodeIP]) and the "default"
// ServiceAccount of namespace default, starts the controller manager,
// kube-proxy and a conntrack event logger in the node, and returns once
// kube-proxy's health check passes (it has synced its rules once). On an error, everything started is stopped and
// removed.
func StartDataPlane(ctx context.Context, opts DataPlaneOptions) (d *DataPlane, err error) {
	start := time.Now()
	if opts.ProxyMode == "" {
		opts.ProxyMode = ProxyNFTables
	}
	if err := CheckDataPlane(opts.ProxyMode); err != nil {
		return nil, err
	}
	d = &DataPlane{ProxyMode: opts.ProxyMode, Kubeconfig: filepath.Join(opts.Dir, "kubeconfig")}
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	if d.Net, err = NewNetwork(ctx); err != nil {
		return d, err
	}
	apiDir := filepath.Join(opts.Dir, "apiserver")
	if err := os.MkdirAll(apiDir, 0o700); err != nil {
		return d, err
	}
	if d.API, err = StartAPIServer(ctx, APIServerOptions{Dir: apiDir, Netns: d.Net.Node}); err != nil {
		return d, err
	}
	if err := d.API.WriteKubeconfig(d.Kubeconfig); err != nil {
		return d, err
	}
	if err := d.registerNode(ctx); err != nil {
		return d, err
	}

	bin := BinDir()
	kcm := d.Net.Node.Command(filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", d.Kubeconfig,
		"--controllers", "endpointslice-controller",
		"--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "10257",
		"--v", "2")
	if d.ControllerManager, err = Launch(opts.Dir, "kube-controller-manager", kcm); err != nil {
		return d, err
	}
	// Loopback health checks inside the node namespace, on certificates the
	// components made for themselves.
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: d.Net.Node.Dial, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a loopback health check
	}}
	healthy := func(url string) func() bool {
		return func() bool {
			resp, err := insecure.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
	}
	if err := d.ControllerManager.await(ctx, startTimeout, healthy("https://127.0.0.1:10257/healthz")); err != nil {
		return d, err
	}

	kp := d.Net.Node.Command(filepath.Join(bin, "kube-proxy"), append([]string{
		"--kubeconfig", d.Kubeconfig,
		"--proxy-mode", opts.ProxyMode,
		"--hostname-override", NodeName,
		"--cluster-cidr", clusterIPs,
		"--nodeport-addresses", "primary",
		// The host's sysctls stay as they are: nf_conntrack_max is global.
		"--conntrack-max-per-core", "0",
		"--conntrack-tcp-timeout-established", "0",
		"--conntrack-tcp-timeout-close-wait", "0",
		"--metrics-bind-address", "127.0.0.1:10249",
		"--healthz-bind-address", "127.0.0.1:10256",
		"--v", "2",
	}, opts.ProxyArgs...)...)
	if d.KubeProxy, err = Launch(opts.Dir, "kube-proxy", kp); err != nil {
		return d, err
	}
	if err := d.KubeProxy.await(ctx, startTimeout, healthy("http://127.0.0.1:10256/healthz")); err != nil {
		return d, err
	}
	// Every new TCP connection the node tracks, stamped by conntrack (a
	// larger socket buffer than its default, so that a burst is not
	// dropped).
	ct, err := lookCommand("conntrack")
	if err != nil {
		return d, err
	}
	if d.Conntrack, err = Launch(opts.Dir, "conntrack", d.Net.Node.Command(ct, "-E", "-e", "NEW", "-p", "tcp", "-o", "timestamp", "-b", "8388608")); err != nil {
		return d, err
	}
	d.StartedIn = time.Since(start)
	return d, nil
}

// registerNode creates what a kubelet and the controllers not running
// would: the Node, Ready, and the ServiceAccount every Pod names.
func (d *DataPlane) registerNode(ctx context.Context) error {
	now := time.Now().UTC().Format(time.RFC3339)
	reqs := []struct {
		method, path, body, contentType string
	}{
		{http.MethodPost, "/api/v1/nodes", fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{"kubernetes.io/hostname":%q}},"spec":{"podCIDR":%q,"podCIDRs":[%q]}}`,
			NodeName, NodeName, PodCIDR, PodCIDR), ""},
		{http.MethodPatch, "/api/v1/nodes/" + NodeName + "/status", fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q},{"type":"Hostname","address":%q}],"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
			NodeIP, NodeName, now, now), "application/merge-patch+json"},
		{http.MethodPost, "/api/v1/namespaces/default/serviceaccounts", `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}`, ""},
	}
	for _, r := range reqs {
		code, out, err := d.API.Do(ctx, r.method, r.path, []byte(r.body), r.contentType)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		if code/100 != 2 {
			return fmt.Errorf("%s %s: %d %s", r.method, r.path, code, out)
		}
	}
	return nil
}

// Close stops kube-proxy, the controller manager and the API server, and
// deletes the network with whatever still runs in it. It may be called on
// a partly started data plane.
func (d *DataPlane) Close() error {
	for _, p := range []*Process{d.Conntrack, d.KubeProxy, d.ControllerManager} {
		if p != nil {
			p.Stop(stopTimeout)
		}
	}
	if d.API != nil {
		d.API.Stop()
	}
	if d.Net != nil {
		return d.Net.Close()
	}
	return nil
}
