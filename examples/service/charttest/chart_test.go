package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/drainfx/drainfx/cmd/drainfx/deploycheck"
)

// renderChart renders chart/ as `helm template test chart/ --set …` would
// (values given as a map over values.yaml) and decodes its objects.
func renderChart(t *testing.T, set map[string]any) []deploycheck.Object {
	t.Helper()
	ch, err := loader.Load(filepath.Join("..", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.CoalesceValues(ch, set)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "test", Namespace: "default", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	var objs []deploycheck.Object
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		o, err := deploycheck.Decode(name, strings.NewReader(files[name]))
		if err != nil {
			t.Fatalf("%v\n%s", err, files[name])
		}
		objs = append(objs, o...)
	}
	return objs
}

// The chart renders objects the checker passes, with its defaults and with
// the other preStop mode and monitoring; a values change that breaks the
// budget fails the check, naming the field.
func TestChart(t *testing.T) {
	t.Parallel()
	const kinds = "Deployment PodDisruptionBudget Secret Service"
	const withRBAC = "Deployment PodDisruptionBudget Role RoleBinding Secret Service ServiceAccount"
	sleep := map[string]any{"mode": "sleep"}
	kube := map[string]any{"enabled": true}
	tests := []struct {
		name        string
		give        map[string]any
		wantKinds   string
		want        string // an error; "" for none
		wantWarning string // the one warning; "" for none
	}{
		{"defaults", nil, kinds, "", ""},
		// A sleep, then SIGTERM: nothing tells the service of a shorter
		// grace period but the API.
		{"preStop sleep", map[string]any{"preStop": sleep}, kinds, "",
			"containers[0].env: no POD_NAME and a preStop sleep: a grace period shortened by Kubernetes"},
		{"kubeDeadline", map[string]any{"kubeDeadline": kube}, withRBAC, "", ""},
		{"preStop sleep with kubeDeadline", map[string]any{"preStop": sleep, "kubeDeadline": kube}, withRBAC, "", ""},
		{"monitoring", map[string]any{"monitoring": map[string]any{"enabled": true}}, "Deployment PodDisruptionBudget Secret Service Service", "", ""},
		{"a new token, in both places", map[string]any{"preStop": map[string]any{"token": "s3cret"}}, "Deployment PodDisruptionBudget Secret Service", "", ""},
		{"max drain beyond the grace period", map[string]any{"shutdown": map[string]any{"maxDrainDelay": "28s"}}, "",
			`containers[0].env: SHUTDOWN_GRACE_PERIOD="30s", SHUTDOWN_DRAIN_DELAY="3s", SHUTDOWN_DRAIN_QUIET="1s", SHUTDOWN_MAX_DRAIN_DELAY="28s"`, ""},
		{"shorter grace period, drain left as it was", map[string]any{"shutdown": map[string]any{"gracePeriodSeconds": 15}}, "",
			`SHUTDOWN_MAX_DRAIN_DELAY="15s", SHUTDOWN_TEARDOWN_RESERVE="3s": lifecycle: MaxDrainDelay=15s + TeardownReserve=3s + Margin=1s = 19s must be below GracePeriod=15s`, ""},
		{"slow readiness probe", map[string]any{"readinessProbe": map[string]any{"periodSeconds": 10, "failureThreshold": 3}}, "",
			"readinessProbe: periodSeconds 10 × failureThreshold 3 = 30s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := renderChart(t, tt.give)
			findings := deploycheck.Check(objs, deploycheck.Options{})
			if tt.wantWarning != "" {
				if len(findings) != 1 || findings[0].Severity != deploycheck.Warning || !strings.Contains(findings[0].String(), tt.wantWarning) {
					t.Errorf("findings %q, want one warning with %q", findings, tt.wantWarning)
				}
				findings = nil
			}
			if tt.want == "" {
				kubeDeadline(t, objs, tt.wantKinds == withRBAC)
				var kinds []string
				for _, o := range objs {
					kinds = append(kinds, o.Kind)
				}
				slices.Sort(kinds)
				if got := strings.Join(kinds, " "); got != tt.wantKinds {
					t.Errorf("rendered %s, want %s", got, tt.wantKinds)
				}
				for _, f := range findings {
					t.Error(f)
				}
				return
			}
			for _, f := range findings {
				if f.Severity == deploycheck.Error && strings.Contains(f.String(), tt.want) {
					t.Log(f)
					return
				}
			}
			t.Errorf("findings %q, want an error with %q", findings, tt.want)
		})
	}
}

// kubeDeadline checks that the Deployment reads its pod's deadline from the
// API (POD_NAME from the downward API, run as the chart's ServiceAccount)
// when on, and has no trace of it when off.
func kubeDeadline(t *testing.T, objs []deploycheck.Object, on bool) {
	t.Helper()
	for _, o := range objs {
		d, ok := o.Obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		spec := d.Spec.Template.Spec
		var podName string
		for _, e := range spec.Containers[0].Env {
			if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				podName = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if on && (podName != "metadata.name" || spec.ServiceAccountName != "test") {
			t.Errorf("%v: POD_NAME from %q, serviceAccountName %q; want metadata.name and the release's", o, podName, spec.ServiceAccountName)
		}
		if !on && (podName != "" || spec.ServiceAccountName != "") {
			t.Errorf("%v: POD_NAME from %q, serviceAccountName %q with kubeDeadline off", o, podName, spec.ServiceAccountName)
		}
	}
}
