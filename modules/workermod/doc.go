// Package workermod supervises a service's background goroutines — queue
// consumers, outbox relays, cache refreshers — on the drain timeline of a
// [lifecycle.Coordinator]: each worker's context ends at the moment that
// suits it, each is waited for within a deadline, and one that ignores its
// context is reported and left behind without holding up the rest of the
// shutdown.
//
// # When a worker stops
//
// A [Worker] says when its context ends:
//
//   - [AtDrain]: at D0, the first moment of the drain. A consumer stops
//     taking new messages while the pod is leaving the load balancer and
//     finishes what it holds. The coordinator waits for it in the stop
//     phase, through the supervisor's stop participant "drain workers",
//     until the end of the stop phase (D0 + GracePeriod − TeardownReserve
//     − Margin); if it is still running then it is counted as cut
//     ("workers" in the shutdown report), logged, and left running.
//   - [AtTeardown] (the default): in the teardown phase, after the servers
//     have stopped, in reverse order of registration. Each such worker is a
//     teardown hook of its own ("worker NAME",
//     [lifecycle.Coordinator.AtTeardown]), registered when it is added,
//     with its share of the teardown reserve; one that overruns it is cut
//     and reported ("hooks") and the next teardown hook still runs.
//
// The coordinator runs the teardown only once every stop participant has
// returned (or overrun its deadline), so the drain workers are always waited for before any teardown
// worker is stopped (a consumer may feed a teardown worker), and no
// teardown worker stops while the servers still serve requests that use
// it, whatever the order of the modules in fx.New.
//
// # Failures
//
// A worker that returns an error before its context ended, or panics, has
// failed: the failure is logged (with the stack of a panic, see
// [PanicError]) and the app shuts down with exit code 1 — under fx through
// fx.Shutdowner. With [Config.Restart], the worker is run again after an
// exponential backoff instead. A worker that returns nil early is done and
// is not run again. An error returned after the context ended (other than
// the context's own) is returned by the worker's stop — [Supervisor.Stop],
// the worker's fx OnStop — so fx logs it and app.Run exits non-zero.
//
// # Under fx
//
// [Module] provides the [*Supervisor]. Register workers with [AsWorker], or
// call [Supervisor.Add] from the constructor of the component that owns the
// worker: its teardown hook is registered then, after those of the
// component's dependencies (clients, pools: built first), so the
// coordinator stops the worker before them — reverse dependency order.
// Each worker also has fx hooks: OnStart starts it, OnStop asks the
// coordinator for the stop ([lifecycle.Coordinator.Stop]), waits for the
// shutdown to be over and returns the worker's outcome, so fx logs a
// worker's error and app.Run exits non-zero.
//
// Without fx, [New], [Supervisor.Add], [Supervisor.Start] and
// [Supervisor.Stop] do the same.
//
// # Limits
//
// Go cannot stop a goroutine from outside: a worker that ignores its
// context keeps running after it was cut, until the process exits; its
// result is dropped. Whatever it holds (a connection, a message) is not
// released by the supervisor.
package workermod
