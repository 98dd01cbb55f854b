package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// stopSignals are the signals the handler turns into the drain. SIGHUP is
// one of them, deliberately: Kubernetes never sends it, but a closed
// terminal or SSH session does, and its default action kills the process
// at once with no drain and no report (exit 129). Handled, it drains, writes
// the report and exits like SIGTERM. A service that wants SIGHUP for
// something else (a reload) sets [Config.IgnoreSignals] and handles all
// three itself.
var stopSignals = []os.Signal{syscall.SIGTERM, os.Interrupt, syscall.SIGHUP}

// signalHandler turns SIGTERM, SIGINT and SIGHUP into the drain: the first
// begins the drain and, when the drain phase is over, asks for the stop
// (and asks the app to stop, under fx); the second exits at once with
// 128+signal (143 for SIGTERM, 130 for SIGINT, 129 for SIGHUP). It runs
// from MarkStarted (under fx, from the lifecycle module's OnStart) until
// the report is out, unless [Config.IgnoreSignals]
// is set.
//
// fx's own app.Run listens for SIGTERM and SIGINT and begins app.Stop on
// the first, whose OnStop hooks call [Coordinator.Stop]: the stop phase
// follows the drain this handler has already begun, so both see one drain
// with one D0. fx does not listen for SIGHUP: after one, the app stops
// when this handler asks it to, at the end of the drain phase.
type signalHandler struct {
	c    *Coordinator
	sigs chan os.Signal
}

// handleSignalsLocked starts the signal handler, once, unless
// Config.IgnoreSignals is set; it is owned by c.wg and stops once the
// report is out. c.mu must be held.
func (c *Coordinator) handleSignalsLocked() {
	if c.plan.IgnoreSignals || c.signals || c.State() >= StateStopped {
		return
	}
	c.signals = true
	h := &signalHandler{c: c, sigs: make(chan os.Signal, 1)}
	signal.Notify(h.sigs, stopSignals...)
	c.wg.Add(1)
	go h.run()
}

func (h *signalHandler) run() {
	defer h.c.wg.Done()
	defer signal.Stop(h.sigs)
	var drained <-chan struct{} // armed by the first signal
	var reason Reason
	first := true
	for {
		select {
		case sig := <-h.sigs:
			if !first {
				code := exitCode(sig)
				h.c.log.Error("second signal: exiting now", zap.Stringer("signal", sig), zap.Int("code", code))
				_ = h.c.log.Sync()
				// The documented exception to "no os.Exit outside main": a
				// second signal is an operator asking for an immediate exit.
				h.c.exit(code)
				return
			}
			first = false
			if h.c.State() >= StateDraining {
				// After a preStop call: the kubelet's SIGTERM, the stop.
				h.c.log.Info("signal received: stopping (the drain had begun)", zap.Stringer("signal", sig))
			} else {
				h.c.log.Info("signal received: draining", zap.Stringer("signal", sig))
			}
			reason = h.c.signalled(sig)
			drained = h.c.Reached(StateDrained)
		case <-drained:
			drained = nil
			h.c.requestStop(context.Background(), reason)
			h.c.askShutdown()
		case <-h.c.Reached(StateStopped):
			return
		}
	}
}

func exitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// signalled is the one place a stop signal acts on the coordinator, whoever
// caught it (the signal handler, or fx's app.Run through [AppOptions]): it
// begins the drain, and if the signal came while a preStop call was still
// waiting for the drain, the kubelet gave up on the hook — its grace period
// ran out — and SIGKILL comes [kubeletMinGrace] after the signal: the
// deadlines move to fit ("signal during prestop"). It returns the drain's reason
// for this signal.
func (c *Coordinator) signalled(sig os.Signal) Reason {
	reason := signalReason(sig)
	if sig == os.Interrupt && c.State() < StateDraining {
		// A terminal's Ctrl-C: Kubernetes never sends SIGINT, so no proxy
		// routes here; drain DrainDelay at most, not the adaptive drain's
		// wait for the proxies.
		c.sigint.Store(true)
	}
	c.BeginDrain(reason)
	if c.State() == StateDraining && c.prestop.Load() {
		c.ShortenGrace(c.clock.Now().Add(kubeletMinGrace), graceFromSignal)
	}
	return reason
}

// signalReason is the drain's reason for sig: "signal terminated" for
// SIGTERM, "signal interrupt" for SIGINT, "signal hangup" for SIGHUP.
func signalReason(sig os.Signal) Reason { return Reason("signal " + sig.String()) }
