package httpmod

import (
	"fmt"
	"net/http"
)

// Route registers handlers on the [net/http.ServeMux] that [Module] serves
// when the app provides no handler of its own with [AsHandler]. Routes are
// registered once, when the server is built. Provide them with [AsRoute].
type Route interface {
	Register(mux *http.ServeMux)
}

// RouteFunc adapts a function to [Route].
type RouteFunc func(mux *http.ServeMux)

// Register calls f(mux).
func (f RouteFunc) Register(mux *http.ServeMux) { f(mux) }

// newMux returns a ServeMux with routes registered, in order; nil routes
// are skipped. A pattern that ServeMux rejects (it panics on a conflict or
// a malformed pattern) becomes an error naming the route.
func newMux(routes []Route) (mux *http.ServeMux, err error) {
	mux = http.NewServeMux()
	for _, r := range routes {
		if r == nil {
			continue
		}
		if err := register(mux, r); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

func register(mux *http.ServeMux, r Route) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("httpmod: route %T: %v", r, v)
		}
	}()
	r.Register(mux)
	return nil
}
