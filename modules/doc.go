// Package modules bundles the drainfx modules for fx.Options composition.
//
// [Web] is the usual start: the drain coordinator ([lifecycle.Module]), the
// public server for any http.Handler ([httpmod.Module]; echo routes with
// echoroute.Module), the admin server with probes and preStop
// ([probemod.Module]), fx's own events through zap, an fx stop
// timeout derived from the shutdown budget instead of fx's 15 s default,
// and the Go runtime's memory limit set from the container's as the app is
// built ([Config.MemoryLimitRatio]; GOMEMLIMIT, if set, wins). GOMAXPROCS
// needs nothing: the runtime follows the container's CPU limit since Go
// 1.25, for a main module whose go line is 1.25 or later.
// Add wsmod, Prometheus metrics on the admin server (modules/metricsmod)
// and the resource modules (modules/sqlmod, modules/workermod,
// modules/grpcmod) beside it as the service needs them; swap any module for
// your own by leaving it out and providing what it provided. metricsmod,
// echoroute and the resource modules are Go modules of their own: an app's
// module graph holds only the integrations it imports.
//
// [FromEnv] reads the bundle's configuration from the environment variables
// the examples and the Kubernetes manifests use.
package modules
