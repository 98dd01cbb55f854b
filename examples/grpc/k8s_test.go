package main

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/drainfx/drainfx/cmd/drainfx/deploycheck"
)

// The manifests of k8s/ go through the checker of the drainfx command
// (drainfx check k8s/): their budget is the service's own, read the way the
// service reads its environment.
func TestManifests(t *testing.T) {
	objs, err := deploycheck.Load(nil, "k8s")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, o := range objs {
		count[o.Kind]++
	}
	if want := map[string]int{"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "Secret": 1}; fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("decoded %v, want %v", count, want)
	}
	for _, f := range deploycheck.Check(objs, deploycheck.Options{}) {
		t.Error(f)
	}
	// The container's environment is one the service starts with.
	for _, o := range objs {
		d, ok := o.Obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		env := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		cfg, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Errorf("%v: %v", o, err)
			continue
		}
		if cfg.grpc.Addr != ":8080" || cfg.grpc.MaxConnectionAge.String() != "5m0s" {
			t.Errorf("%v: gRPC server %+v, want :8080 with MaxConnectionAge 5m", o, cfg.grpc)
		}
	}
}
