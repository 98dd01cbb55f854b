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
// was not terminating at the time (not terminated, or terminated later). It
// returns their times, sorted, and the number of opens the proxy's log
// could not place (kept out).
func survivorOpens(opens []sessionOpen, conns map[int][]proxyConn, pods []PodReport, from time.Time) (times []time.Time, unplaced int) {
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
		p, ok := bySlot[cs[i-1].slot]
		if !ok {
			unplaced++
			continue
		}
		if p.Terminated && !o.at.Before(p.T0) {
			continue // on a terminating pod
		}
		times = append(times, o.at)
	}
	slices.SortFunc(times, time.Time.Compare)
	return times, unplaced
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
