package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

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
	tests := []struct {
		name      string
		give      map[string]any
		wantKinds string
		want      string // a finding; "" for none
	}{
		{"defaults", nil, "Deployment PodDisruptionBudget Secret Service", ""},
		{"preStop sleep", map[string]any{"preStop": map[string]any{"mode": "sleep"}}, "Deployment PodDisruptionBudget Secret Service", ""},
		{"monitoring", map[string]any{"monitoring": map[string]any{"enabled": true}}, "Deployment PodDisruptionBudget Secret Service Service", ""},
		{"a new token, in both places", map[string]any{"preStop": map[string]any{"token": "s3cret"}}, "Deployment PodDisruptionBudget Secret Service", ""},
		{"max drain beyond the grace period", map[string]any{"shutdown": map[string]any{"maxDrainDelay": "28s"}}, "",
			`containers[0].env: SHUTDOWN_GRACE_PERIOD="30s", SHUTDOWN_DRAIN_DELAY="3s", SHUTDOWN_DRAIN_QUIET="1s", SHUTDOWN_MAX_DRAIN_DELAY="28s"`},
		{"shorter grace period, drain left as it was", map[string]any{"shutdown": map[string]any{"gracePeriodSeconds": 15}}, "",
			`SHUTDOWN_MAX_DRAIN_DELAY="15s", SHUTDOWN_TEARDOWN_RESERVE="3s": lifecycle: MaxDrainDelay=15s + TeardownReserve=3s + Margin=1s = 19s must be below GracePeriod=15s`},
		{"slow readiness probe", map[string]any{"readinessProbe": map[string]any{"periodSeconds": 10, "failureThreshold": 3}}, "",
			"readinessProbe: periodSeconds 10 × failureThreshold 3 = 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := renderChart(t, tt.give)
			findings := deploycheck.Check(objs, deploycheck.Options{})
			if tt.want == "" {
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
