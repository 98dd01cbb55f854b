package rollout

import (
	"slices"
	"time"
)

// OpensWindow is the window of [Result.SessionOpensPeak].
const OpensWindow = 100 * time.Millisecond

// connSlack is how much later than the proxy's accept time (truncated to
// the millisecond) a client may stamp its open and still be matched to
// that connection: the open comes after the accept, the handshake between.
const connSlack = 5 * time.Millisecond

// survivorOpens places every session open at or after from on the pod the
// proxy sent its connection to — the connection of the same client port
// accepted last before the open — and keeps those on a survivor: a pod that
// was not terminating at the time (not terminated, or terminated later).
// It returns two times of each, sorted: atPod, when the proxy handed the
// survivor the session's connection (the client's time for a session on a
// kept-alive connection, for which the proxy saw no new one), and
// atClient, when the client had the session open; and the number of opens
// the proxy's log could not place (kept out).
//
// The pod's time is the one that tells what the survivors took: the
// client's adds its own delays — the handshake's answer read by a client
// that shares the CPU, collects garbage and wakes up late — which bunch
// opens the survivors took apart.
func survivorOpens(opens []sessionOpen, conns map[int][]proxyConn, pods []PodReport, from time.Time) (atPod, atClient []time.Time, unplaced int) {
	bySlot := make(map[int]PodReport, len(pods))
	for _, p := range pods {
		bySlot[p.Slot] = p
	}
	for _, o := range opens {
		if o.at.Before(from) {
			continue
		}
		cs := conns[o.port]
		i, _ := slices.BinarySearchFunc(cs, o.at.Add(connSlack), func(c proxyConn, t time.Time) int {
			if c.at.After(t) {
				return 1
			}
			return -1
		})
		if i == 0 {
			unplaced++
			continue
		}
		c := cs[i-1]
		p, ok := bySlot[c.slot]
		if !ok {
			unplaced++
			continue
		}
		if p.Terminated && !o.at.Before(p.T0) {
			continue // on a terminating pod
		}
		onPod := c.at
		if o.reused {
			onPod = o.at
		}
		atPod = append(atPod, onPod)
		atClient = append(atClient, o.at)
	}
	slices.SortFunc(atPod, time.Time.Compare)
	slices.SortFunc(atClient, time.Time.Compare)
	return atPod, atClient, unplaced
}

// peak returns the most times (sorted) within any window of length w, and
// the first time of the first such window.
func peak(times []time.Time, w time.Duration) (n int, at time.Time) {
	lo := 0
	for hi, t := range times {
		for t.Sub(times[lo]) >= w {
			lo++
		}
		if hi-lo+1 > n {
			n, at = hi-lo+1, times[lo]
		}
	}
	return n, at
}
