package wsmod

import (
	"net/http"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Module provides the [*Registry] for a [Config] in the graph (zero Config
// if none). Its OnStart starts the goroutine that ends the sessions when the
// stop phase begins — in parallel with the HTTP server's Shutdown — and its
// OnStop ([Registry.Stop]) waits for that. fx runs it after the HTTP
// module's OnStop, since the server depends on the routes, which depend on
// the registry.
var Module = fx.Module("ws", fx.Provide(NewFx))

// CheckOrigin decides whether a WebSocket upgrade may come from the
// request's Origin; supply one to replace [Config.AllowedOrigins].
type CheckOrigin func(r *http.Request) bool

// Params are the registry's dependencies under fx.
type Params struct {
	fx.In

	Config      Config      `optional:"true"`
	Logger      *zap.Logger `optional:"true"`
	CheckOrigin CheckOrigin `optional:"true"`
	Upgrader    Upgrader    `optional:"true"`
	Coordinator *lifecycle.Coordinator
	Lifecycle   fx.Lifecycle
}

// NewFx builds the registry and registers its hooks.
func NewFx(p Params) (*Registry, error) {
	opts := []Option{WithLogger(p.Logger)}
	if p.CheckOrigin != nil {
		opts = append(opts, WithCheckOrigin(p.CheckOrigin))
	}
	if p.Upgrader != nil {
		opts = append(opts, WithUpgrader(p.Upgrader))
	}
	r, err := New(p.Config, p.Coordinator, opts...)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: r.Start, OnStop: r.Stop})
	return r, nil
}
