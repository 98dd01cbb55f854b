package kubemod_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/kubemod"
)

// The pod's name and namespace come from the downward API; the rest has
// in-cluster defaults.
func ExampleFromEnv() {
	env := map[string]string{"POD_NAME": "web-7d4b9-x2x8p", "POD_NAMESPACE": "shop"}
	cfg := kubemod.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }).WithDefaults()
	fmt.Println(cfg.Namespace+"/"+cfg.PodName, cfg.Timeout)
	fmt.Println(cfg.TokenFile)
	// Output:
	// shop/web-7d4b9-x2x8p 2s
	// /var/run/secrets/kubernetes.io/serviceaccount/token
}

// Under fx: supply the Config (kubemod.FromEnv(os.LookupEnv) in a
// service) beside the lifecycle module. Without a pod name it is off.
func Example() {
	var w *kubemod.Watcher
	app := fx.New(fx.NopLogger,
		fx.Supply(lifecycle.Config{IgnoreSignals: true}),
		lifecycle.Module,
		fx.Supply(kubemod.Config{}), // no POD_NAME: off
		kubemod.Module,
		fx.Populate(&w),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-w.Done():
		fmt.Println("off: nothing to read at D0")
	default:
		fmt.Println("on")
	}
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// off: nothing to read at D0
}
