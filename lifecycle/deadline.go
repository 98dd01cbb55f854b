package lifecycle

import (
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// kubeletMinGrace is the least time the kubelet leaves a container between
// SIGTERM and SIGKILL, whatever the grace period: after a preStop hook that
// ran out the grace period, the container still gets this long
// (minimumGracePeriodInSeconds in the kubelet's kuberuntime_container.go).
const kubeletMinGrace = 2 * time.Second

// Where a shorter deadline came from ([GraceShortened.Source]).
const (
	// graceFromSignal: a signal came while a preStop call was still
	// waiting for the drain. The kubelet sends SIGTERM only after the hook
	// has ended; a /prestop hook ends with the drain, so the kubelet gave
	// up on it — its grace period ran out — and SIGKILL comes
	// [kubeletMinGrace] after the signal.
	graceFromSignal = "signal during prestop"
)

// GraceShortened says that the real deadline came before the one the
// budget planned for: Kubernetes shortened the grace period (kubectl
// delete --grace-period, an eviction, a node shutdown).
type GraceShortened struct {
	// Source is who told: "signal during prestop" (a signal came while a
	// preStop call still waited for the drain: the kubelet gave up on the
	// hook, and SIGKILL comes 2 s after the signal), or the caller of
	// [Coordinator.ShortenGrace] (the pod's deletionTimestamp, read from
	// the API, for instance).
	Source string `json:"source"`
	// Configured is the grace period of the budget ([Config.GracePeriod]).
	Configured time.Duration `json:"configured"`
	// Real is the grace period the pod had, from D0 to the SIGKILL it
	// expects.
	Real time.Duration `json:"real"`
	// LearnedAt is when the real deadline became known, from D0.
	LearnedAt time.Duration `json:"learnedAt"`
}

// graceLog writes a shortened grace period as zap fields.
type graceLog GraceShortened

func (g graceLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("source", g.Source)
	enc.AddDuration("configured", g.Configured)
	enc.AddDuration("real", g.Real)
	enc.AddDuration("learnedAt", g.LearnedAt)
	return nil
}

// deadlines are the moments the timeline keeps after D0.
type deadlines struct {
	drainMin time.Time // the fixed drain's end, the adaptive drain's least
	drainMax time.Time // the drain's latest end
	stop     time.Time // the stop phase's end: what is left is cut
	teardown time.Time // the last teardown hook's end
}

// deadlinesLocked returns the deadlines: the drain's from D0, the stop
// phase's and the teardown's from stopBase (D0 + DrainEnd, or the moment
// the coordinator stopped by itself, ReasonNoStop), all moved earlier if
// the real SIGKILL comes before the one they planned for
// ([Coordinator.ShortenGrace]). Before D0 they are those of a drain
// beginning now. c.mu must be held.
//
// With a real deadline K learned at A, the phases after the drain keep
// their planned lengths (the stop phase's share, the teardown reserve, the
// margin) and the drain is shortened first; if there is not room for them
// from A on, the drain ends at A and what is left until K is split between
// the stop phase, the teardown and the margin in the proportions the budget
// gives them.
func (c *Coordinator) deadlinesLocked() deadlines {
	p := c.plan
	d0, stopBase := c.d0, c.stopBase
	if d0.IsZero() {
		d0 = c.clock.Now()
		stopBase = d0.Add(p.DrainEnd)
	}
	d := deadlines{
		drainMin: d0.Add(orNone(p.DrainDelay)),
		drainMax: d0.Add(p.DrainEnd),
		stop:     stopBase.Add(p.StopDeadline - p.DrainEnd),
		teardown: stopBase.Add(p.TeardownDeadline - p.DrainEnd),
	}
	if c.kill.IsZero() || !c.kill.Before(stopBase.Add(p.GracePeriod-p.DrainEnd)) {
		return d
	}
	at := c.killLearned
	if at.Before(d0) {
		at = d0
	}
	stopShare, reserve, margin := p.StopDeadline-p.DrainEnd, orNone(p.TeardownReserve), orNone(p.Margin)
	after := stopShare + reserve + margin
	var s deadlines
	if room := c.kill.Sub(at); room >= after {
		s = deadlines{drainMax: c.kill.Add(-after), stop: c.kill.Add(-reserve - margin), teardown: c.kill.Add(-margin)}
	} else {
		scale := func(x time.Duration) time.Duration {
			return time.Duration(float64(max(room, 0)) * float64(x) / float64(after))
		}
		s.drainMax = at
		s.stop = at.Add(scale(stopShare))
		s.teardown = s.stop.Add(scale(reserve))
	}
	d.drainMax = earlier(d.drainMax, s.drainMax)
	d.drainMin = earlier(d.drainMin, d.drainMax)
	d.stop = earlier(d.stop, s.stop)
	d.teardown = earlier(d.teardown, s.teardown)
	return d
}

// deadlines returns the deadlines now.
func (c *Coordinator) deadlines() deadlines {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadlinesLocked()
}

// ShortenGrace tells the coordinator that SIGKILL comes at kill, earlier
// than its budget planned (D0 + GracePeriod): every deadline moves so that
// the stop phase, the teardown and the margin end before kill, the drain
// shortened first (a drain under way ends early). source says who knew
// (it goes into the report and a WARN). A kill no earlier than the plan's,
// or later than one already given, changes nothing and returns false.
//
// The coordinator calls it itself when a signal comes while a preStop call
// is still waiting ("signal during prestop"); a module that reads the pod's
// deletionTimestamp from the Kubernetes API calls it at D0. The stop phase
// takes its deadline when it begins: a call after that moves only the
// teardown.
func (c *Coordinator) ShortenGrace(kill time.Time, source string) bool {
	now := c.clock.Now()
	c.mu.Lock()
	planned := c.deadlinesLocked().teardown.Add(orNone(c.plan.Margin))
	if c.d0.IsZero() || !kill.Before(planned) || (!c.kill.IsZero() && !kill.Before(c.kill)) {
		c.mu.Unlock()
		return false
	}
	c.kill, c.killLearned = kill, now
	g := GraceShortened{Source: source, Configured: c.plan.GracePeriod, Real: kill.Sub(c.d0), LearnedAt: now.Sub(c.d0)}
	close(c.moved)
	c.moved = make(chan struct{})
	d := c.deadlinesLocked()
	c.mu.Unlock()
	c.telemetry.setShortened(g)
	c.log.Warn(fmt.Sprintf("the grace period is shorter than the budget's: Kubernetes gave this pod %v from D0, "+
		"not GracePeriod (SHUTDOWN_GRACE_PERIOD) %v (%s); the drain, the stop phase and the teardown now end before SIGKILL",
		g.Real.Round(time.Millisecond), g.Configured, source),
		zap.Object("grace", graceLog(g)), zap.Duration("drainEndsIn", max(d.drainMax.Sub(now), 0)),
		zap.Duration("stopEndsIn", d.stop.Sub(now)), zap.Duration("killIn", kill.Sub(now)))
	return true
}

// movedCh returns a channel closed when the deadlines next move.
func (c *Coordinator) movedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.moved
}
