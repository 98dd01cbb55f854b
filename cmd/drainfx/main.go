// Command drainfx checks a drainfx service's Kubernetes manifests against its
// shutdown budget, and rehearses a rolling update of its binary behind a
// real proxy, counting every request, WebSocket session and SSE stream
// lost.
//
//	go run github.com/drainfx/drainfx/cmd/drainfx@latest check k8s/
//	helm template my-release ./chart | drainfx check -
//	drainfx rollout -bin ./myservice -request 'GET /' -request 'POST /orders @order.json' -ws-path '' -sse-path ''
//
// Exit codes: check — 0 when there is no error (warnings are printed), 1 on
// an error, 2 if the input cannot be read; rollout — 0 when nothing was
// lost, 1 when something was, 2 if the rehearsal could not run. Run
// "drainfx check -h" or "drainfx rollout -h" for the flags.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  drainfx check [flags] PATH...   check manifests (files, directories, - for stdin) against the service's budget
  drainfx rollout -bin BINARY [flags]   rehearse a rolling update of the binary behind HAProxy, under load
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "check":
		return runCheck(args[1:], stdin, stdout, stderr)
	case "rollout":
		return runRollout(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "drainfx: unknown command %q\n%s", args[0], usage)
	return 2
}
