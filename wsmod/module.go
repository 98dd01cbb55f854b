package wsmod

import (
	"net/http"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Module provides the [*Registry] for a [Config] in the graph (zero Config
// if none). The registry ends the sessions as a stop participant of the
// coordinator — in parallel with the HTTP server's Shutdown — from the
// moment it is built; the module's OnStop ([Registry.Stop]) asks for the
// stop and waits for the shutdown, as every drainfx OnStop does, so the
// order in which fx runs the modules' OnStop hooks does not matter.
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
	p.Lifecycle.Append(fx.Hook{OnStop: r.Stop})
	return r, nil
}
