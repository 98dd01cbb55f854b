package charttest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// decodeOperator decodes a Prometheus Operator object strictly: unknown
// fields (a misspelt one the operator would drop) and duplicate keys fail.
func decodeOperator(t *testing.T, path string, obj any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestServiceMonitor(t *testing.T) {
	var sm monitoringv1.ServiceMonitor
	decodeOperator(t, filepath.Join("..", "k8s", "monitoring", "servicemonitor.yaml"), &sm)
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("endpoints %+v, want the admin port's /metrics", sm.Spec.Endpoints)
	}
}

// The PrometheusRule decodes with the operator's types, and its rule groups
// pass `promtool check rules` (Debian package prometheus). Without promtool
// the second half skips, naming the package; under CI=true it fails.
func TestPrometheusRule(t *testing.T) {
	var pr monitoringv1.PrometheusRule
	decodeOperator(t, filepath.Join("..", "k8s", "monitoring", "prometheusrule.yaml"), &pr)
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
		}
	}
	for _, want := range []string{"DrainfxWorkCut", "DrainfxDrainEndedByMaximum", "DrainfxReadinessFlapping"} {
		if !alerts[want] {
			t.Errorf("no alert %s in %v", want, alerts)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found; CI must install the Debian package prometheus")
		}
		t.Skip("promtool not found; install the Debian package prometheus")
	}
	groups, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, groups, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, groups)
	}
	t.Logf("%s", out)
}
