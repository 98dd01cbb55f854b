package lifecycle

// Test hooks for package lifecycle_test.

// WithShutdown is withShutdown: what the coordinator calls to ask the app
// to stop (fx.Shutdowner under fx).
var WithShutdown = withShutdown

// WithExit replaces os.Exit for the second signal's exit.
func WithExit(exit func(code int)) Option {
	return func(o *options) {
		if exit != nil {
			o.exit = exit
		}
	}
}
