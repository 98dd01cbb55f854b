package kubemod

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Module provides the [*Watcher] for the [Config] in the graph (zero Config
// if none: off, as no pod is named) and builds it, so that it reads the
// pod at D0. It needs the [*lifecycle.Coordinator] ([lifecycle.Module]).
// Supply a Config from [FromEnv]:
//
//	fx.Supply(kubemod.FromEnv(os.LookupEnv)), kubemod.Module
var Module = fx.Module("kube",
	fx.Provide(NewFx),
	fx.Invoke(func(*Watcher) {}),
)

// Params are the watcher's dependencies under fx.
type Params struct {
	fx.In

	Config      Config      `optional:"true"`
	Logger      *zap.Logger `optional:"true"`
	Coordinator *lifecycle.Coordinator
}

// NewFx builds the watcher ([New]) with the app's logger, under the
// component "kube". It needs no fx hooks: the coordinator owns the read
// (see [New]).
func NewFx(p Params) (*Watcher, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return New(p.Config, p.Coordinator, log.With(zap.String("component", "kube")))
}
