package probemod

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/fxserver"
	"github.com/drainfx/drainfx/lifecycle"
)

// The value groups behind [AsCheck] and [AsAdminRoute].
const (
	checksGroup = `group:"probemod.checks"`
	routesGroup = `group:"probemod.adminroutes"`
)

// Module provides the [*Admin] server and its [*Probes] for the
// [*lifecycle.Coordinator] in the graph, with the checks of [AsCheck] and
// the routes of [AsAdminRoute]. It listens in OnStart (a busy port fails
// the start). Its OnStop first calls [lifecycle.Coordinator.Stop], which
// returns once the whole timeline has run (drain, stop phase, teardown)
// and the shutdown report is out, and only then stops the admin server: the
// kubelet's probes, a preStop call and a metrics scrape are answered
// through the whole shutdown, whichever order fx calls the OnStop hooks
// in. A serve error asks the app to stop with exit code 1.
var Module = fx.Module("probe",
	fx.Provide(NewFx),
	fx.Invoke(func(*Admin) {}), // the admin server runs whether or not anything asks for it
)

// Params are the admin server's dependencies under fx.
type Params struct {
	fx.In

	Config      Config       `optional:"true"`
	Logger      *zap.Logger  `optional:"true"`
	Checks      []Check      `group:"probemod.checks"`
	AdminRoutes []AdminRoute `group:"probemod.adminroutes"`
	Coordinator *lifecycle.Coordinator
	Lifecycle   fx.Lifecycle
	Shutdowner  fx.Shutdowner
}

// Result is what [Module] provides.
type Result struct {
	fx.Out

	Admin  *Admin
	Probes *Probes
}

// NewFx builds the admin server and registers its start and its stop.
func NewFx(p Params) (Result, error) {
	a, err := New(p.Config, p.Coordinator, p.Checks,
		WithLogger(p.Logger),
		WithRoutes(p.AdminRoutes...),
		OnServeError(fxserver.ShutdownOnServeError(p.Shutdowner, p.Logger, "probe")),
	)
	if err != nil {
		return Result{}, err
	}
	c := p.Coordinator
	p.Lifecycle.Append(fx.Hook{
		OnStart: a.Start,
		OnStop: func(ctx context.Context) error {
			// The timeline first, however long: the admin server answers
			// through drain, stop and teardown (the checks' resources are
			// torn down before it stops), and stops last. If ctx ends
			// first, it stops all the same.
			err := c.Stop(ctx)
			return errors.Join(err, a.Stop(ctx))
		},
	})
	return Result{Admin: a, Probes: a.Probes()}, nil
}

var (
	checkType     = reflect.TypeFor[Check]()
	checkFuncType = reflect.TypeFor[func(context.Context) error]()
	errorType     = reflect.TypeFor[error]()
	routeType     = reflect.TypeFor[AdminRoute]()
)

// AsCheck adds a readiness check named name to [Module]'s checks. fn is one
// of:
//
//   - a func(context.Context) error, the check itself;
//   - a [Check], for its Timeout, CacheTTL or FailureThreshold (its Name,
//     if set, must be name);
//   - a constructor returning either of those, and optionally an error,
//     whose parameters fx injects.
//
// For example:
//
//	probemod.AsCheck("db", func(db *sql.DB) func(context.Context) error { return db.PingContext })
func AsCheck(name string, fn any) fx.Option {
	ctor, err := checkConstructor(name, fn)
	if err != nil {
		return fx.Error(fmt.Errorf("probemod.AsCheck(%q): %w", name, err))
	}
	return fx.Provide(fx.Annotate(ctor, fx.ResultTags(checksGroup)))
}

func checkConstructor(name string, fn any) (any, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("name %w", err)
	}
	switch f := fn.(type) {
	case nil:
		return nil, errors.New("nil check")
	case func(context.Context) error:
		return func() Check { return Check{Name: name, Check: f} }, nil
	case Check:
		ck, err := named(name, f)
		if err != nil {
			return nil, err
		}
		return func() Check { return ck }, nil
	}
	ft := reflect.TypeOf(fn)
	if ft.Kind() != reflect.Func {
		return nil, fmt.Errorf("got %T, want a func(context.Context) error, a Check or a constructor of either", fn)
	}
	switch {
	case ft.NumOut() == 1, ft.NumOut() == 2 && ft.Out(1) == errorType:
	default:
		return nil, fmt.Errorf("constructor %v must return a check and optionally an error", ft)
	}
	out := ft.Out(0)
	if out != checkType && !out.ConvertibleTo(checkFuncType) {
		return nil, fmt.Errorf("constructor %v returns %v, want func(context.Context) error or Check", ft, out)
	}
	in := make([]reflect.Type, ft.NumIn())
	for i := range in {
		in[i] = ft.In(i)
	}
	wrapped := reflect.FuncOf(in, []reflect.Type{checkType, errorType}, ft.IsVariadic())
	fv := reflect.ValueOf(fn)
	return reflect.MakeFunc(wrapped, func(args []reflect.Value) []reflect.Value {
		var res []reflect.Value
		if ft.IsVariadic() {
			res = fv.CallSlice(args)
		} else {
			res = fv.Call(args)
		}
		ck, err := Check{}, error(nil)
		if len(res) == 2 && !res[1].IsNil() {
			err = res[1].Interface().(error)
		}
		if err == nil {
			if out == checkType {
				ck, err = named(name, res[0].Interface().(Check))
			} else if res[0].IsNil() {
				err = errors.New("constructor returned a nil check")
			} else {
				ck = Check{Name: name, Check: res[0].Convert(checkFuncType).Interface().(func(context.Context) error)}
			}
		}
		if err != nil {
			err = fmt.Errorf("probemod.AsCheck(%q): %w", name, err)
		}
		return []reflect.Value{reflect.ValueOf(ck), reflect.ValueOf(&err).Elem()}
	}).Interface(), nil
}

func named(name string, ck Check) (Check, error) {
	if ck.Name != "" && ck.Name != name {
		return Check{}, fmt.Errorf("Check.Name=%q differs from the name", ck.Name)
	}
	ck.Name = name
	return ck, nil
}

// AsAdminRoute adds a route to the admin server of [Module], such as
// /metrics. route is an [AdminRoute] or a constructor returning one, and
// optionally an error, whose parameters fx injects.
func AsAdminRoute(route any) fx.Option {
	if r, ok := route.(AdminRoute); ok {
		return fx.Provide(fx.Annotate(func() AdminRoute { return r }, fx.ResultTags(routesGroup)))
	}
	ft := reflect.TypeOf(route)
	if ft == nil || ft.Kind() != reflect.Func || ft.NumOut() == 0 || ft.Out(0) != routeType ||
		ft.NumOut() > 2 || ft.NumOut() == 2 && ft.Out(1) != errorType {
		return fx.Error(fmt.Errorf("probemod.AsAdminRoute: got %T, want an AdminRoute or a constructor returning (AdminRoute) or (AdminRoute, error)", route))
	}
	return fx.Provide(fx.Annotate(route, fx.ResultTags(routesGroup)))
}
