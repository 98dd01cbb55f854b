package wsmod

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// closePlan is when the stop phase ends its sessions: n of them, one in each
// of n equal slots of the window, at a random point of its slot, so that no
// span of the window holds more than one session per slot it covers, plus
// one.
type closePlan struct {
	n          int
	window     time.Duration // the last session is ended before start+window
	wanted     time.Duration // n / CloseRate: the window the rate asks for
	compressed bool          // wanted did not fit in half the room left
	// slack is how late the schedule may run, the window slipping by as
	// much, and still end every session in time for its handshake: the
	// room left once the window is planned.
	slack time.Duration
}

// planCloses plans n closes at rate per second (negative: all at once)
// within room, the time from the start of the stop phase to the close
// deadline. It keeps writeTimeout — or half the room, if that is less —
// for the last sessions' close handshakes, and the window takes at most
// half of what is left: the other half is for a schedule that runs late,
// on a node busy with the reconnections of this pod's and others'
// sessions, to slip into rather than end the sessions it owes in a burst.
// A window that filled the room to writeTimeout left no slack: on 2 busy
// cores, 5,000 sessions planned over 4 s of a 5 s room ended late in
// bursts of up to 1,350 per 100 ms, and some 800 close replies missed the
// deadline.
func planCloses(n, rate int, room, writeTimeout time.Duration) closePlan {
	p := closePlan{n: n}
	if n == 0 || rate < 0 {
		return p
	}
	left := max(room-min(writeTimeout, room/2), 0)
	p.wanted = time.Duration(float64(n) / float64(rate) * float64(time.Second))
	p.window = p.wanted
	if fit := left / 2; p.window > fit {
		p.window, p.compressed = fit, true
	}
	p.slack = left - p.window
	return p
}

// offset is when the i-th session is ended, from the start of the stop
// phase: at u (in [0, 1)) of the way through its slot.
func (p closePlan) offset(i int, u float64) time.Duration {
	if p.window <= 0 {
		return 0
	}
	return time.Duration((float64(i) + u) * float64(p.window) / float64(p.n))
}

// earlyBy is how much early a session may be ended rather than waited for:
// the sessions due within it are ended together, so that the schedule
// wakes up at most about once a millisecond. It adds at most
// CloseRate/1000 sessions to any span.
const earlyBy = time.Millisecond

// catchUp is how late the schedule may run and still catch up, ending the
// overdue sessions together (at most CloseRate/200 of them): a timer that
// fires a few milliseconds late on a busy node is caught up, where letting
// every such delay slip the window would stretch it by the sum of them.
// Later than that (the process was not run: a CPU quota's throttling, a
// stall), the rest of the window slips.
const catchUp = 5 * time.Millisecond

// closeSpread ends the sessions of list (shuffled here) on plan p from
// start: it waits on the registry's clock until each one's time, then
// starts its close frame or final event in a goroutine of wg, as a peer
// with a full buffer holds its own up to WriteTimeout and must not hold
// the others'. It runs on the stop participant's goroutine: no goroutine
// waits for a session's turn.
//
// A schedule that finds itself late by more than catchUp (the process was
// not run for a while: a CPU quota's throttling, a loaded node) does not end
// the overdue sessions in a burst: the rest of the window slips by as much,
// within the plan's slack, and only what the slack cannot absorb is caught
// up. If ctx ends first (the close deadline came, or the stop was cut
// short), the rest are ended at once.
func (r *Registry) closeSpread(ctx context.Context, list []*session, start time.Time, p closePlan, wg *sync.WaitGroup) closeTally {
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	t := closeTally{start: start, times: make([]time.Duration, 0, len(list))}
	var slipped time.Duration
	for i, s := range list {
		if p.window > 0 {
			at := start.Add(slipped + p.offset(i, rand.Float64()))
			if late := r.clock.Now().Sub(at); late > catchUp && slipped < p.slack {
				d := min(late-catchUp, p.slack-slipped)
				slipped += d
				at = at.Add(d)
			}
			if !r.wait(ctx, at) {
				for _, s := range list[i:] {
					r.startClose(s, wg, &t)
				}
				return t
			}
		}
		r.startClose(s, wg, &t)
	}
	return t
}

// closeTally is what the schedule did: when it ended each session, from
// the start of the stop phase, in order.
type closeTally struct {
	start time.Time
	times []time.Duration
	head  int // times[head:] are within tallyWindow of the last
	peak  int // the most within any tallyWindow
}

// tallyWindow is the span of closeTally.peak: the 100 ms of the close
// rate's promise to the other pods.
const tallyWindow = 100 * time.Millisecond

func (t *closeTally) add(at time.Time) {
	d := at.Sub(t.start)
	t.times = append(t.times, d)
	for d-t.times[t.head] >= tallyWindow {
		t.head++
	}
	t.peak = max(t.peak, len(t.times)-t.head)
}

// window is the span from the start of the stop phase to the last session
// ended.
func (t *closeTally) window() time.Duration {
	if len(t.times) == 0 {
		return 0
	}
	return t.times[len(t.times)-1]
}

// startClose ends s in a goroutine of wg, unless its handler has returned,
// and notes it in t.
func (r *Registry) startClose(s *session, wg *sync.WaitGroup, t *closeTally) {
	now := r.clock.Now()
	t.add(now)
	if r.onClose != nil {
		r.onClose(now)
	}
	if !r.listed(s) {
		return
	}
	wg.Go(func() { r.beginClose(s) })
}

// waitClock waits on the registry's clock until at most earlyBy before t;
// false if ctx ended first. It is the registry's wait.
func (r *Registry) waitClock(ctx context.Context, t time.Time) bool {
	d := t.Sub(r.clock.Now())
	if d <= earlyBy {
		return ctx.Err() == nil
	}
	fired := make(chan struct{})
	stop := r.clock.AfterFunc(d, func() { close(fired) })
	defer stop()
	select {
	case <-fired:
		return true
	case <-ctx.Done():
		return false
	}
}
