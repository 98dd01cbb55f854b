// Package fxserver holds the fx wiring that the server modules (httpmod,
// grpcmod, probemod's admin server) share.
package fxserver

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// ShutdownOnServeError returns the function a server calls when it can no
// longer serve (its WithServeError option): it asks the app to stop with
// exit code 1 through sd. The server logs the serve error itself; a failed
// Shutdown is logged with log (nil: not logged) and the field
// component=component.
func ShutdownOnServeError(sd fx.Shutdowner, log *zap.Logger, component string) func(error) {
	if log == nil {
		log = zap.NewNop()
	}
	return func(error) {
		if err := sd.Shutdown(fx.ExitCode(1)); err != nil {
			log.Error("shutdown after serve error", zap.String("component", component), zap.Error(err))
		}
	}
}
