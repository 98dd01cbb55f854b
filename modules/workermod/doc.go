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
//     finishes what it holds. It is waited for until the end of the stop
//     phase (D0 + GracePeriod − TeardownReserve − Margin); if it is still
//     running then it is counted as cut ("workers" in the shutdown report),
//     logged, and left running.
//   - [AtTeardown] (the default): in the teardown phase, after the servers
//     have stopped, in reverse order of registration. Each such worker has
//     a stop hook of its own ([lifecycle.Coordinator.StopHook]) with its
//     share of the teardown reserve; one that overruns it is cut and
//     reported ("hooks") and the next stop hook still runs.
//
// The drain workers are always waited for before any teardown worker is
// stopped, so a consumer may feed a teardown worker.
//
// # Failures
//
// A worker that returns an error before its context ended, or panics, has
// failed: the failure is logged (with the stack of a panic, see
// [PanicError]) and the app shuts down with exit code 1 — under fx through
// fx.Shutdowner. With [Config.Restart], the worker is run again after an
// exponential backoff instead. A worker that returns nil early is done and
// is not run again. An error returned after the context ended (other than
// the context's own) is returned by the worker's stop, so fx logs it and
// app.Run exits non-zero.
//
// # Under fx
//
// [Module] provides the [*Supervisor]. Register workers with [AsWorker], or
// call [Supervisor.Add] from the constructor of the component that owns the
// worker: its hooks are appended then, so fx stops the worker after the
// components that depend on that one (the HTTP handlers) and before its own
// dependencies (clients, pools) — reverse dependency order. fx orders
// [AsWorker] workers by when the module builds the supervisor instead; see
// [AsWorker].
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
