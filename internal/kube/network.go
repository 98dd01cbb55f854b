package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The addresses of a [Network]. The node routes between its two links:
// the pods' bridge and a point-to-point link to the client namespace (a
// client outside the cluster's pod range, as another node or a load
// balancer is).
const (
	PodCIDR    = "10.244.0.0/24"
	BridgeIP   = "10.244.0.1" // the node on the pods' bridge: the kubelet's probes come from it
	NodeIP     = "10.250.0.1" // the node on the client link: its InternalIP
	ClientIP   = "10.250.0.2"
	clusterIPs = "10.244.0.0/16" // kube-proxy's --cluster-cidr
	// MaxPods is the number of pod addresses: 10.244.0.10 to .249.
	MaxPods = 240
)

// Network is a node's network: a node namespace with a bridge for the
// pods, a client namespace routed through the node, and a namespace per
// pod, each with a veth pair to the bridge. Every name starts with
// drainfx-PID-N-, so that a run's namespaces are told apart from
// another's and from anything else on the machine.
type Network struct {
	Node, Client Netns
	prefix       string

	mu   sync.Mutex
	pods map[int]Netns
	made []Netns // node and client, in the order made
}

var networks atomic.Int64

// NewNetwork creates the node and client namespaces, after deleting the
// namespaces of earlier runs whose process is gone. On an error, whatever
// it made is deleted.
func NewNetwork(ctx context.Context) (n *Network, err error) {
	sweepStale(ctx)
	prefix := fmt.Sprintf("drainfx-%d-%d-", os.Getpid(), networks.Add(1))
	n = &Network{Node: Netns(prefix + "node"), Client: Netns(prefix + "client"), prefix: prefix, pods: map[int]Netns{}}
	defer func() {
		if err != nil {
			_ = n.Close()
			n = nil
		}
	}()
	node, client := string(n.Node), string(n.Client)
	steps := [][]string{
		{"netns", "add", node},
		{"-n", node, "link", "set", "lo", "up"},
		{"-n", node, "link", "add", "br0", "type", "bridge"},
		{"-n", node, "addr", "add", BridgeIP + "/24", "dev", "br0"},
		{"-n", node, "link", "set", "br0", "up"},
		{"netns", "add", client},
		{"-n", client, "link", "set", "lo", "up"},
		{"-n", node, "link", "add", "cl0", "type", "veth", "peer", "name", "eth0", "netns", client},
		{"-n", node, "addr", "add", NodeIP + "/30", "dev", "cl0"},
		{"-n", node, "link", "set", "cl0", "up"},
		{"-n", client, "addr", "add", ClientIP + "/30", "dev", "eth0"},
		{"-n", client, "link", "set", "eth0", "up"},
		{"-n", client, "route", "add", "default", "via", NodeIP},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			if args[0] == "netns" && len(n.made) == 0 {
				return n, fmt.Errorf("%w: network namespaces: %v", ErrCannotRun, err)
			}
			return n, err
		}
		if args[0] == "netns" {
			n.made = append(n.made, Netns(args[2]))
		}
	}
	// The node forwards between its links (a sysctl of its own namespace).
	if err := n.Node.do(func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) }); err != nil {
		return n, fmt.Errorf("ip_forward in %s: %w", n.Node, err)
	}
	return n, nil
}

// PodIP is the address of the pod namespace i.
func PodIP(i int) string { return "10.244.0." + strconv.Itoa(10+i) }

// AddPod creates the pod namespace i (0 ≤ i < [MaxPods]) with [PodIP](i)
// on its eth0, linked to the node's bridge, default route via the node.
func (n *Network) AddPod(ctx context.Context, i int) (Netns, error) {
	if i < 0 || i >= MaxPods {
		return "", fmt.Errorf("pod %d: at most %d pods", i, MaxPods)
	}
	ns := Netns(n.prefix + "pod" + strconv.Itoa(i))
	node, pod, veth := string(n.Node), string(ns), "p"+strconv.Itoa(i)
	if err := ip(ctx, "netns", "add", pod); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.pods[i] = ns
	n.mu.Unlock()
	steps := [][]string{
		{"-n", pod, "link", "set", "lo", "up"},
		{"-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod},
		{"-n", node, "link", "set", veth, "master", "br0"},
		{"-n", node, "link", "set", veth, "up"},
		{"-n", pod, "addr", "add", PodIP(i) + "/24", "dev", "eth0"},
		{"-n", pod, "link", "set", "eth0", "up"},
		{"-n", pod, "route", "add", "default", "via", BridgeIP},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return "", err
		}
	}
	return ns, nil
}

// RemovePod deletes the pod namespace i (its veth pair goes with it),
// killing any process still inside.
func (n *Network) RemovePod(ctx context.Context, i int) error {
	n.mu.Lock()
	ns, ok := n.pods[i]
	delete(n.pods, i)
	n.mu.Unlock()
	if !ok {
		return nil
	}
	return deleteNetns(ctx, ns)
}

// Close deletes every namespace of the network, the pods' first, killing
// the processes still inside them (all started by this run).
func (n *Network) Close() error {
	// A context of its own: teardown runs after the run's has ended.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n.mu.Lock()
	var all []Netns
	for _, ns := range n.pods {
		all = append(all, ns)
	}
	n.pods = map[int]Netns{}
	for i := len(n.made) - 1; i >= 0; i-- {
		all = append(all, n.made[i])
	}
	n.made = nil
	n.mu.Unlock()
	var errs []error
	for _, ns := range all {
		errs = append(errs, deleteNetns(ctx, ns))
	}
	return errors.Join(errs...)
}

// deleteNetns kills the processes inside ns, waits for them to be gone
// (5 s at most), and deletes it.
func deleteNetns(ctx context.Context, ns Netns) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := netnsPids(ctx, ns)
		if err != nil || len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		for _, pid := range pids {
			kill(pid)
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel's process table, bounded by deadline
	}
	if err := ip(ctx, "netns", "del", string(ns)); err != nil {
		if _, statErr := os.Stat(ns.Path()); os.IsNotExist(statErr) {
			return nil
		}
		return err
	}
	return nil
}

func netnsPids(ctx context.Context, ns Netns) ([]int, error) {
	out, err := exec.CommandContext(ctx, ipCommand(), "netns", "pids", string(ns)).Output()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

var staleName = regexp.MustCompile(`^drainfx-(\d+)-\d+-`)

// sweepStale deletes the namespaces of runs whose process is gone (killed
// before it could clean up).
func sweepStale(ctx context.Context) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || alive(pid) {
			continue
		}
		_ = deleteNetns(ctx, Netns(e.Name()))
	}
}

// ipCommand is ip(8): in PATH, or in /usr/sbin or /sbin.
func ipCommand() string {
	if p, err := lookCommand("ip"); err == nil {
		return p
	}
	return "ip"
}

// ip runs one ip(8) command; its output is in the error.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, ipCommand(), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
