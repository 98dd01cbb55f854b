// Package kube runs real Kubernetes components on this machine, without
// containers and without a kubelet:
//
//   - [StartAPIServer]: etcd and kube-apiserver on loopback, for the tests
//     against a real API server (internal/kubetest wraps it);
//   - [StartDataPlane]: a node's service data plane — the API server,
//     kube-controller-manager running the EndpointSlice controller alone,
//     and kube-proxy (nftables or iptables) — inside network namespaces
//     of its own ([Network]): a "node" namespace that routes a "client"
//     namespace and one namespace per pod over a bridge. The caller plays
//     the kubelet: it starts pod processes with [Netns.Command], reports
//     their readiness to the API server and deletes them.
//
// The binaries are built from source by internal/ci/kube.sh, which pins
// their versions, into [BinDir]; nothing is downloaded at run time.
//
// # What it leaves behind
//
// Nothing, when [DataPlane.Close] runs: the processes are stopped, every
// namespace is deleted after the processes still inside it are killed
// (all of them started here), and kube-proxy's nftables or iptables rules,
// its conntrack entries and its sysctls lived in the node namespace and go
// with it. The host's own namespace is not touched: kube-proxy runs with
// --conntrack-max-per-core=0 and its conntrack timeouts left as they are
// (nf_conntrack_max is the one of those sysctls that is global). If the
// process dies before Close, its children die with it (Linux's parent
// death signal), and the next [StartDataPlane] deletes the namespaces of
// any run whose process is gone (they are named drainfx-PID-…).
package kube

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// BuildCommand builds the binaries, from the repository's root.
const BuildCommand = "bash internal/ci/kube.sh"

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

// ErrCannotRun is matched by the errors that say what this machine lacks
// to run the components: a binary, root, network namespaces, a command.
var ErrCannotRun = errors.New("cannot run the Kubernetes components here")

// NeedBinaries returns an error matching [ErrCannotRun] that names the
// binaries missing from [BinDir] and [BuildCommand], or nil.
func NeedBinaries(names ...string) error {
	bin := BinDir()
	var missing []string
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: no %s in %s; build them with %q in a drainfx checkout (from the Go module proxy; about 12 minutes cold on 2 cores, cached afterwards)",
		ErrCannotRun, strings.Join(missing, ", "), bin, BuildCommand)
}

// needCommands returns an error matching [ErrCannotRun] naming the
// commands missing from PATH (and /usr/sbin, /sbin) with their Debian
// packages, or nil.
func needCommands(cmds map[string]string) error {
	var missing []string
	for cmd, pkg := range cmds {
		if _, err := lookCommand(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", cmd, pkg))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%w: not found: %s", ErrCannotRun, strings.Join(missing, ", "))
}

// lookCommand finds cmd in PATH, then in /usr/sbin and /sbin (not in the
// PATH of every shell).
func lookCommand(cmd string) (string, error) {
	p, err := exec.LookPath(cmd)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err2 := exec.LookPath(filepath.Join(dir, cmd)); err2 == nil {
			return p, nil
		}
	}
	return "", err
}
