package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/drainfx/drainfx/cmd/drainfx/deploycheck"
)

// The manifests of k8s/ go through the checker of the drainfx command
// (drainfx check k8s/): their budget is the service's own, read the way the
// service reads its environment. The command's tests hold the table of
// broken manifests, each caught.

// loadManifests decodes every manifest under dir.
func loadManifests(t *testing.T, dir string) []deploycheck.Object {
	t.Helper()
	objs, err := deploycheck.Load(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestManifestsDecodeStrictly(t *testing.T) {
	count := map[string]int{}
	for _, o := range loadManifests(t, "k8s") {
		count[o.Kind]++
	}
	want := map[string]int{"Deployment": 2, "Service": 2, "Secret": 1, "PodDisruptionBudget": 1,
		"ServiceAccount": 1, "Role": 1, "RoleBinding": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("decoded %v, want %v", count, want)
	}
}

func TestManifestsMatchTheService(t *testing.T) {
	objs := loadManifests(t, "k8s")
	for _, f := range deploycheck.Check(objs, deploycheck.Options{}) {
		t.Error(f)
	}
	// Each Deployment's container environment is one the service starts
	// with (its own loadConfig: DATABASE_URL and DATA_DIR too).
	for _, o := range objs {
		d, ok := o.Obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		env := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value // the token's Secret is checked above
		}
		if _, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Errorf("%v: %v", o, err)
		}
	}
	// The public Service routes to the http port alone.
	for _, o := range objs {
		s, ok := o.Obj.(*corev1.Service)
		if !ok || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("%v: ports %+v, want the http port alone", o, s.Spec.Ports)
		}
	}
}

// The pods may read themselves, and nothing else: every Deployment runs as
// the ServiceAccount of serviceaccount.yaml, with its token mounted and
// POD_NAME from the downward API (modules/kubemod), and role.yaml binds it
// a Role whose one rule is get on pods. (TestManifestsMatchTheService
// checks that some Role grants it; this one, that nothing more is.)
func TestManifestsRBAC(t *testing.T) {
	var (
		sa          *corev1.ServiceAccount
		role        *rbacv1.Role
		rb          *rbacv1.RoleBinding
		deployments []deploycheck.Object
	)
	for _, o := range loadManifests(t, "k8s") {
		switch v := o.Obj.(type) {
		case *corev1.ServiceAccount:
			sa = v
		case *rbacv1.Role:
			role = v
		case *rbacv1.RoleBinding:
			rb = v
		case *appsv1.Deployment:
			deployments = append(deployments, o)
		}
	}
	if sa == nil || role == nil || rb == nil {
		t.Fatalf("ServiceAccount %v, Role %v, RoleBinding %v: want one each", sa, role, rb)
	}
	wantRules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}
	if fmt.Sprint(role.Rules) != fmt.Sprint(wantRules) {
		t.Errorf("Role %s rules %+v, want get on pods alone", role.Name, role.Rules)
	}
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}) {
		t.Errorf("RoleBinding %s roleRef %+v, want the Role %s", rb.Name, rb.RoleRef, role.Name)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa.Name {
		t.Errorf("RoleBinding %s subjects %+v, want the ServiceAccount %s", rb.Name, rb.Subjects, sa.Name)
	}
	for _, o := range deployments {
		spec := o.Obj.(*appsv1.Deployment).Spec.Template.Spec
		if spec.ServiceAccountName != sa.Name || spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
			t.Errorf("%v: serviceAccountName %q (automount %v), want %s with its token", o, spec.ServiceAccountName, spec.AutomountServiceAccountToken, sa.Name)
		}
		env := map[string]string{}
		for _, e := range spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["POD_NAME"] != "metadata.name" || env["POD_NAMESPACE"] != "metadata.namespace" {
			t.Errorf("%v: downward API %v, want POD_NAME and POD_NAMESPACE", o, env)
		}
	}
	if len(deployments) != 2 {
		t.Errorf("%d Deployments, want 2", len(deployments))
	}
}

// Strict decoding refuses what Kubernetes would silently drop (an unknown
// field) or keep only once (a duplicate key).
func TestManifestDecodeFails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("k8s", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "      terminationGracePeriodSeconds: 30"
	if !bytes.Contains(data, []byte(anchor)) {
		t.Fatalf("k8s/deployment.yaml has no line %q", anchor)
	}
	tests := []struct {
		name string
		give string // replaces the anchor line
		want string
	}{
		{"misspelt field", "      terminationGracePeriod: 30", `unknown field "spec.template.spec.terminationGracePeriod"`},
		{"duplicate key", anchor + "\n      terminationGracePeriodSeconds: 60", "already set in map"},
		{"wrong type", `      terminationGracePeriodSeconds: "30s"`, "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := deploycheck.DecodeStrict(bytes.Replace(data, []byte(anchor), []byte(tt.give), 1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeStrict = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// The Dockerfile cannot be built here (no container engine in CI); its
// properties that the termination depends on are checked as text.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	var entrypoint, user string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			from = append(from, line)
		case strings.HasPrefix(line, "ENTRYPOINT "):
			entrypoint = line
		case strings.HasPrefix(line, "USER "):
			user = line
		}
	}
	if len(from) < 2 || !strings.HasPrefix(from[len(from)-1], "FROM gcr.io/distroless/static") {
		t.Errorf("stages %q: want a build stage, then distroless static", from)
	}
	// Exec form: the binary is PID 1 and gets SIGTERM; a shell form would
	// run it under /bin/sh (there is none on distroless), which keeps it.
	if !strings.HasPrefix(entrypoint, `ENTRYPOINT ["`) {
		t.Errorf("%q: want the exec form", entrypoint)
	}
	if !strings.Contains(string(data), "CGO_ENABLED=0") {
		t.Error("the binary is not built static (CGO_ENABLED=0)")
	}
	if user == "" || strings.Contains(user, "root") && !strings.Contains(user, "nonroot") {
		t.Errorf("%q: want a non-root user", user)
	}
}
