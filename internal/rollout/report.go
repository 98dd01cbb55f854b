package rollout

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the load table: what the clients of one kind saw and
// how much of it was lost.
type Row struct {
	Name       string
	Seen, Lost int64
	Note       string
}

// Result is what a rollout check measured.
type Result struct {
	Bin                    string
	Replicas, Replacements int
	PreStop                PreStop
	GracePeriod            time.Duration
	Propagation, Entry     Range
	Seed                   uint64
	Took                   time.Duration
	// DataPlane is the data plane played against; Via names what carried
	// the load ("HAProxy", "kube-proxy (nftables)"); LoadBalancer: with
	// DataPlaneKube, the load balancer in front took half the clients.
	DataPlane    string
	Via          string
	LoadBalancer bool

	// Load has one row per kind of client: requests (keep-alive and
	// new-connection, per route), WebSocket sessions, SSE streams.
	Load []Row
	// Stalled lists the clients that made no progress after the last
	// terminated pod had exited (each counts as a loss).
	Stalled []string
	// Samples are the first losses, stamped with the time since the load
	// began; Losses is the number of losses of the load.
	Samples []string
	Losses  int
	// Pods are the terminated pods in order, then the pods still serving at
	// the end.
	Pods []PodReport

	// SessionOpensPeak is the most WebSocket and SSE sessions opened on the
	// survivors — the pods not terminating at the time — within any
	// [OpensWindow] (100 ms), from the first termination on: the burst of
	// reconnections the other pods take when a pod ends its sessions. Each
	// open counts when the proxy handed the survivor its connection.
	// SessionOpensPeakAt is when that window began, since the rollout
	// began. SessionOpensPeakClient is the same peak with each open
	// counted when its client had the session open (the handshake's answer
	// read), which adds the clients' own delays. SessionOpens is the number
	// of opens counted; SessionOpensUnplaced those the proxy's connection
	// log could not place on a pod (not counted). All zero without
	// WebSocket and SSE clients.
	SessionOpensPeak       int
	SessionOpensPeakAt     time.Duration
	SessionOpensPeakClient int
	SessionOpens           int
	SessionOpensUnplaced   int
}

// Lost is the total loss: requests, sessions and streams lost, stalled
// clients, and pods that were SIGKILLed, exited non-zero or crashed.
func (r *Result) Lost() int64 {
	n := int64(len(r.Stalled))
	for _, row := range r.Load {
		n += row.Lost
	}
	for _, p := range r.Pods {
		if p.Failed() != "" {
			n++
		}
	}
	return n
}

// LoadLost is the loss of the load alone (requests, sessions, streams).
func (r *Result) LoadLost() int64 {
	var n int64
	for _, row := range r.Load {
		n += row.Lost
	}
	return n
}

// Pass reports whether nothing was lost.
func (r *Result) Pass() bool { return r.Lost() == 0 }

// Terminated returns the reports of the terminated pods.
func (r *Result) Terminated() []PodReport {
	var out []PodReport
	for _, p := range r.Pods {
		if p.Terminated {
			out = append(out, p)
		}
	}
	return out
}

// Slowest returns the terminated pod with the longest T0 → exit.
func (r *Result) Slowest() PodReport {
	var s PodReport
	for _, p := range r.Terminated() {
		if p.StopTime() > s.StopTime() {
			s = p
		}
	}
	return s
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// WriteTable prints the result: the load table, the pods table and a
// verdict line.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.DataPlane == DataPlaneKube {
		lb := "no load balancer"
		if r.LoadBalancer {
			lb = fmt.Sprintf("a load balancer in front (entry %v, propagation %v)", r.Entry, r.Propagation)
		}
		fmt.Fprintf(tw, "rollout check: %s, %d replicas, %d replacements, preStop %v, grace period %v, real data plane: %s, %s, seed %d, %.1fs\n",
			filepath.Base(r.Bin), r.Replicas, r.Replacements, r.PreStop, r.GracePeriod, r.Via, lb, r.Seed, r.Took.Seconds())
	} else {
		fmt.Fprintf(tw, "rollout check: %s, %d replicas, %d replacements, preStop %v, grace period %v, propagation %v, entry %v, seed %d, %.1fs\n",
			filepath.Base(r.Bin), r.Replicas, r.Replacements, r.PreStop, r.GracePeriod, r.Propagation, r.Entry, r.Seed, r.Took.Seconds())
	}
	via := r.Via
	if via == "" {
		via = "HAProxy"
	}
	if r.LoadBalancer {
		via += " and the load balancer"
	}
	fmt.Fprintf(tw, "\nload through %s\tseen\tlost\n", via)
	for _, row := range r.Load {
		fmt.Fprintln(tw, strings.TrimRight(fmt.Sprintf("%s\t%d\t%d\t%s", row.Name, row.Seen, row.Lost, row.Note), "\t"))
	}
	if len(r.Stalled) > 0 {
		fmt.Fprintf(tw, "clients stalled after the last exit\t\t%d\t%s\n", len(r.Stalled), strings.Join(r.Stalled, ", "))
	}
	if r.SessionOpens > 0 {
		note := ""
		if r.SessionOpensUnplaced > 0 {
			note = fmt.Sprintf("; %d not placed on a pod", r.SessionOpensUnplaced)
		}
		fmt.Fprintf(tw, "\npeak session opens per %v on the survivors: %d (at %s, as the proxy handed them the connections; %d as the clients saw the sessions open; %d opened on them from the first termination on%s)\n",
			OpensWindow, r.SessionOpensPeak, secs(r.SessionOpensPeakAt), r.SessionOpensPeakClient, r.SessionOpens, note)
	}
	if r.DataPlane == DataPlaneKube {
		r.writeKubePods(tw)
	} else {
		r.writeModelPods(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS: nothing lost"
	if !r.Pass() {
		verdict = fmt.Sprintf("FAIL: %d lost", r.Lost())
	}
	s := r.Slowest()
	_, err := fmt.Fprintf(w, "%s; slowest T0→exit %s (%s)\n", verdict, secs(s.StopTime()), s.Name)
	if err == nil && len(r.Samples) > 0 {
		_, err = fmt.Fprintf(w, "first losses (%d in all):\n  %s\n", r.Losses, strings.Join(r.Samples, "\n  "))
	}
	return err
}

func (r *Result) writeModelPods(tw io.Writer) {
	fmt.Fprintln(tw, "\npod\tready→in proxy\tT0→out of proxy\tpreStop\tT0→exit\tSIGTERM→exit\tsessions closed\texit")
	for _, p := range r.Pods {
		entry := "-"
		if p.EntryDelay > 0 {
			entry = secs(p.Entered.Sub(p.Ready))
		}
		if !p.Terminated {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t%s\n", p.Name, entry, serving(p))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, entry, secs(p.Propagation), r.preStopCell(p), secs(p.StopTime()),
			sigtermCell(p), sessionsCell(p), exitCell(p))
	}
	fmt.Fprintln(tw, "(T0: termination began — the preStop request or sleep, or SIGTERM without a hook; the endpoint removal starts then too)")
	fmt.Fprintln(tw, "(sessions closed: the pod's WebSocket and SSE sessions, the window their ends were spread over and the most ended in any 100 ms, from wsmod's \"sessions closed\" line; - if the pod logged none)")
}

// sessionsCell is what the pod's log said of its sessions' ends.
func sessionsCell(p PodReport) string {
	if !p.SessionsLogged {
		return "-"
	}
	s := fmt.Sprintf("%d over %s", p.SessionsClosed, secs(p.SessionCloseWindow))
	if p.SessionClosePeak > 0 {
		s += fmt.Sprintf(", ≤%d/100ms", p.SessionClosePeak)
	}
	return s
}

// writeKubePods prints what the real components showed of each pod: the
// endpoint (EndpointSlice watch), the connections the node sent it
// (conntrack), what the pod saw (drainfx's shutdown report).
func (r *Result) writeKubePods(tw io.Writer) {
	head := []string{"pod", "ready→endpoint ready", "ready→first conn", "DELETE→terminating", "DELETE→last conn"}
	if r.LoadBalancer {
		head = append(head, "ready→in LB", "DELETE→last LB conn")
	}
	head = append(head, "pod: D0→last arrival", "preStop", "T0→exit", "SIGTERM→exit", "exit")
	fmt.Fprintln(tw, "\n"+strings.Join(head, "\t"))
	var worst time.Duration
	for _, p := range r.Pods {
		k := p.Kube
		if k == nil {
			continue
		}
		row := []string{p.Name, since(p.Ready, k.Endpoint.Ready), since(p.Ready, k.FirstConn)}
		if !p.Terminated {
			row = append(row, "", "")
			if r.LoadBalancer {
				row = append(row, since(p.Ready, k.LBIn), "")
			}
			row = append(row, "", "", "", "", serving(p))
			fmt.Fprintln(tw, strings.Join(row, "\t"))
			continue
		}
		worst = max(worst, p.T0.Sub(k.Deleted))
		row = append(row, since(k.Deleted, k.Endpoint.Terminating), since(k.Deleted, k.LastConn))
		if r.LoadBalancer {
			row = append(row, since(p.Ready, k.LBIn), since(k.Deleted, k.LBLastConn))
		}
		arrival := "-"
		if k.PodLastArrival >= 0 {
			arrival = secs(k.PodLastArrival)
		}
		row = append(row, arrival, r.preStopCell(p), secs(p.StopTime()), sigtermCell(p), exitCell(p))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	fmt.Fprintf(tw, "(DELETE: the Pod's graceful DELETE; T0, the kubelet's kill sequence, followed it by ≤ %dms. Endpoint: a watch of the EndpointSlices. Conn: a new connection the node sent the pod, from its conntrack events. D0→last arrival: the pod's own shutdown report, if it logs drainfx's.)\n",
		worst.Milliseconds())
}

// since is from → to, "-" if to is zero, "before" if to precedes from.
func since(from, to time.Time) string {
	switch {
	case to.IsZero() || from.IsZero():
		return "-"
	case to.Before(from):
		return "before"
	}
	return secs(to.Sub(from))
}

func serving(p PodReport) string {
	if p.Crashed {
		return "exited while serving: " + p.Failed()
	}
	return "still serving at the end (not counted)"
}

func (r *Result) preStopCell(p PodReport) string {
	if r.PreStop.Kind == PreStopNone {
		return "-"
	}
	s := secs(p.PreStopTook)
	if p.PreStopTimedOut {
		s += " (timed out: SIGTERM, SIGKILL 2s later)"
	}
	if p.PreStopErr != "" {
		s += " (" + p.PreStopErr + ")"
	}
	return s
}

func sigtermCell(p PodReport) string {
	if p.SIGTERM.IsZero() {
		return "-"
	}
	return secs(p.SIGTERMToExit())
}

func exitCell(p PodReport) string {
	exit := fmt.Sprint(p.ExitCode)
	if f := p.Failed(); f != "" {
		exit += " ← " + f
	}
	return exit
}
