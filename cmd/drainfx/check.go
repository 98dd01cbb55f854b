package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/drainfx/drainfx/cmd/drainfx/deploycheck"
)

// envFlag is a repeatable NAME=VALUE flag.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }
func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q: want NAME=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drainfx check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		env        envFlag
		containers listFlag
		quiet      = fs.Bool("q", false, "print only the findings, not the summary line")
	)
	fs.Var(&env, "env", "NAME=VALUE for a variable the input does not resolve (a Secret kept elsewhere, a budget set outside the manifests); with -env, every container is checked unless -container names some (repeatable)")
	fs.Var(&containers, "container", "name of a container that runs a drainfx service (repeatable; default: those with a SHUTDOWN_* variable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: drainfx check [flags] PATH...\n\nChecks every Deployment, StatefulSet and DaemonSet container that runs a drainfx service against\nits shutdown budget. PATH is a file, a directory (its .yaml and .yml files) or - (stdin).\nOne line per finding; exit 1 on an error, 0 with warnings only, 2 if the input cannot be read.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	opt := deploycheck.Options{Containers: containers}
	if len(env) > 0 {
		opt.Env = map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			opt.Env[k] = v
		}
	}
	objs, err := deploycheck.Load(stdin, fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, "drainfx check:", err)
		return 2
	}
	findings := deploycheck.Check(objs, opt)
	var errs, warns, workloads int
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
		if f.Severity == deploycheck.Error {
			errs++
		} else {
			warns++
		}
	}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet":
			workloads++
		}
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s, %s: %s, %s\n", deploycheck.Plural(len(objs), "object"), deploycheck.Plural(workloads, "workload"),
			deploycheck.Plural(errs, "error"), deploycheck.Plural(warns, "warning"))
	}
	if errs > 0 {
		return 1
	}
	return 0
}
