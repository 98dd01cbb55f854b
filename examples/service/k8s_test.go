package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// minStopPhase is the least time the manifests leave for the stop phase
// (HTTP Shutdown, WebSocket/SSE close) beyond the drain, the teardown
// reserve and the margin.
const minStopPhase = time.Second

// defaultGracePeriodSeconds is Kubernetes' terminationGracePeriodSeconds
// when the pod spec leaves it out.
const defaultGracePeriodSeconds = 30

// manifests are the decoded files of k8s/.
type manifests struct {
	deployments map[string]*appsv1.Deployment // by file
	services    []*corev1.Service
	secrets     map[string]*corev1.Secret // by name
	pdbs        []*policyv1.PodDisruptionBudget
}

// decodeStrict decodes one YAML object into a typed Kubernetes object
// chosen by its kind. Unknown fields and duplicate keys are errors.
func decodeStrict(data []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = new(appsv1.Deployment)
	case "v1 Service":
		obj = new(corev1.Service)
	case "v1 Secret":
		obj = new(corev1.Secret)
	case "policy/v1 PodDisruptionBudget":
		obj = new(policyv1.PodDisruptionBudget)
	default:
		return nil, fmt.Errorf("unexpected object %s %q", tm.APIVersion, tm.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// loadManifests decodes every .yaml file under dir, one object a file.
func loadManifests(dir string) (manifests, error) {
	m := manifests{deployments: map[string]*appsv1.Deployment{}, secrets: map[string]*corev1.Secret{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		obj, err := decodeStrict(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments[path] = o
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		}
		return nil
	})
	return m, err
}

// containerEnv resolves a container's environment the way the kubelet
// would: literal values, and Secret keys from the Secrets in the manifests.
func containerEnv(c corev1.Container, secrets map[string]*corev1.Secret) (func(string) (string, bool), error) {
	env := map[string]string{}
	var errs []error
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := secrets[ref.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("env %s: no Secret %q in the manifests", e.Name, ref.Name))
				continue
			}
			if v, ok := s.StringData[ref.Key]; ok {
				env[e.Name] = v
			} else if v, ok := s.Data[ref.Key]; ok {
				env[e.Name] = string(v)
			} else {
				errs = append(errs, fmt.Errorf("env %s: Secret %q has no key %q", e.Name, ref.Name, ref.Key))
			}
		default:
			errs = append(errs, fmt.Errorf("env %s: only values and Secret keys are checked", e.Name))
		}
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }, errors.Join(errs...)
}

// portOf returns the port number of a listen address such as ":9090".
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// resolvePort turns a probe's or hook's port (a number or a port name) into
// a number, from the container's ports.
func resolvePort(c corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// checkDeployment checks a Deployment against the service's own
// configuration, read from the container's environment with the service's
// loadConfig: ports, probe paths and ports, the preStop hook, the grace
// period against the shutdown budget, the rollout strategy. It returns every
// problem found.
func checkDeployment(d *appsv1.Deployment, secrets map[string]*corev1.Secret) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		fail("replicas %v, want at least 2", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxSurge == nil || ru.MaxSurge.String() != "1" || ru.MaxUnavailable == nil || ru.MaxUnavailable.String() != "0" {
		fail("strategy %+v, want RollingUpdate with maxSurge 1, maxUnavailable 0", d.Spec.Strategy)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			fail("selector %s=%s does not match the pod labels", k, v)
		}
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return errors.Join(append(errs, fmt.Errorf("%d containers, want the service alone", len(pod.Containers)))...)
	}
	c := pod.Containers[0]
	lookup, err := containerEnv(c, secrets)
	if err != nil {
		errs = append(errs, err)
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("the container's environment: %w", err))...)
	}
	publicPort, adminPort := portOf(cfg.Web.HTTP.Addr), portOf(cfg.Web.Probe.Addr)
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = int(p.ContainerPort)
	}
	if ports["http"] != publicPort || ports["admin"] != adminPort {
		fail("container ports http=%d admin=%d, want PORT=%d ADMIN_PORT=%d", ports["http"], ports["admin"], publicPort, adminPort)
	}

	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		paths []string
	}{
		{"startupProbe", c.StartupProbe, []string{probemod.PathStartupz}},
		{"readinessProbe", c.ReadinessProbe, []string{probemod.PathReadyz}},
		{"livenessProbe", c.LivenessProbe, []string{probemod.PathLivez, probemod.PathHealthz}},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			fail("%s: want an httpGet probe", p.name)
		case !contains(p.paths, p.probe.HTTPGet.Path):
			fail("%s: path %q, want %s", p.name, p.probe.HTTPGet.Path, strings.Join(p.paths, " or "))
		case resolvePort(c, p.probe.HTTPGet.Port) != adminPort:
			fail("%s: port %s, want the admin port %d", p.name, p.probe.HTTPGet.Port.String(), adminPort)
		}
	}

	// When the drain begins, counted from the pod's deletion: at once with
	// an httpGet preStop (or none: SIGTERM comes at once), after the sleep
	// with a sleep preStop.
	var d0 time.Duration
	switch h := preStop(c); {
	case h == nil:
	case h.HTTPGet != nil:
		g := h.HTTPGet
		if g.Path != probemod.PathPrestop || resolvePort(c, g.Port) != adminPort {
			fail("preStop: httpGet %s on port %s, want %s on the admin port %d", g.Path, g.Port.String(), probemod.PathPrestop, adminPort)
		}
		var got []string
		for _, hd := range g.HTTPHeaders {
			if strings.EqualFold(hd.Name, lifecycle.PrestopHeader) {
				got = append(got, hd.Value)
			}
		}
		token := cfg.Web.Lifecycle.PrestopToken
		switch {
		case token == "" && len(got) > 0:
			fail("preStop: header %s set, but PRESTOP_TOKEN is empty", lifecycle.PrestopHeader)
		case token != "" && (len(got) != 1 || got[0] != token):
			fail("preStop: header %s does not carry PRESTOP_TOKEN", lifecycle.PrestopHeader)
		}
	case h.Sleep != nil:
		d0 = time.Duration(h.Sleep.Seconds) * time.Second
	default:
		fail("preStop: want httpGet %s or sleep (the image has no shell for exec)", probemod.PathPrestop)
	}

	grace := time.Duration(defaultGracePeriodSeconds) * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	plan, err := lifecycle.NewPlan(cfg.Web.Lifecycle)
	if err != nil { // loadConfig has validated it
		return errors.Join(append(errs, err)...)
	}
	// The service's SIGKILL is the kubelet's: the grace period it counts
	// from D0 must end when the pod's does.
	if want := d0 + plan.GracePeriod; grace != want {
		fail("terminationGracePeriodSeconds=%v, want %v (preStop sleep %v + SHUTDOWN_GRACE_PERIOD %v)", grace.Seconds(), want.Seconds(), d0, plan.GracePeriod)
	}
	if need := d0 + plan.MaxDrainDelay + minStopPhase + plan.TeardownReserve + plan.Margin; grace < need {
		fail("terminationGracePeriodSeconds=%v is below preStop sleep %v + drain (max) %v + stop %v + teardown %v + margin %v = %v",
			grace.Seconds(), d0, plan.MaxDrainDelay, minStopPhase, plan.TeardownReserve, plan.Margin, need)
	}
	return errors.Join(errs...)
}

func preStop(c corev1.Container) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkService: the public port only, to the container's http port, with a
// selector that picks the Deployment's pods.
func checkService(s *corev1.Service, d *appsv1.Deployment) error {
	var errs []error
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			errs = append(errs, fmt.Errorf("service %s: selector %s=%s does not pick the pods", s.Name, k, v))
		}
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
		errs = append(errs, fmt.Errorf("service %s: ports %+v, want the http port alone", s.Name, s.Spec.Ports))
	}
	return errors.Join(errs...)
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m, err := loadManifests("k8s")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.deployments) != 2 || len(m.services) != 1 || len(m.secrets) != 1 || len(m.pdbs) != 1 {
		t.Errorf("decoded %d deployments, %d services, %d secrets, %d PDBs; want 2, 1, 1, 1",
			len(m.deployments), len(m.services), len(m.secrets), len(m.pdbs))
	}
}

func TestManifestsMatchTheService(t *testing.T) {
	m, err := loadManifests("k8s")
	if err != nil {
		t.Fatal(err)
	}
	for path, d := range m.deployments {
		if err := checkDeployment(d, m.secrets); err != nil {
			t.Errorf("%s:\n%v", path, err)
		}
		for _, s := range m.services {
			if err := checkService(s, d); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		for _, p := range m.pdbs {
			for k, v := range p.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("PDB %s: selector %s=%s does not pick the pods of %s", p.Name, k, v, path)
				}
			}
			if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
				t.Errorf("PDB %s: minAvailable %v leaves no disruption for %d replicas", p.Name, p.Spec.MinAvailable, *d.Spec.Replicas)
			}
		}
	}
}

// The check fails on manifests that would lose work or get the pod killed.
func TestManifestCheckFails(t *testing.T) {
	m, err := loadManifests("k8s")
	if err != nil {
		t.Fatal(err)
	}
	base := m.deployments[filepath.Join("k8s", "deployment.yaml")]
	if base == nil {
		t.Fatal("no k8s/deployment.yaml")
	}
	setEnv := func(name, value string) func(*appsv1.Deployment) {
		return func(d *appsv1.Deployment) {
			env := d.Spec.Template.Spec.Containers[0].Env
			for i := range env {
				if env[i].Name == name {
					env[i].Value = value
				}
			}
		}
	}
	tests := []struct {
		name string
		give func(d *appsv1.Deployment)
		want string
	}{
		{"shorter grace period", func(d *appsv1.Deployment) {
			*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 15
		}, "terminationGracePeriodSeconds=15 is below preStop sleep 0s + drain (max) 15s"},
		{"grace period unlike SHUTDOWN_GRACE_PERIOD", func(d *appsv1.Deployment) {
			*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 60
		}, "terminationGracePeriodSeconds=60, want 30"},
		{"grace period left to the default, drain too long for it", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = nil
			setEnv("SHUTDOWN_GRACE_PERIOD", "60s")(d)
			setEnv("SHUTDOWN_MAX_DRAIN_DELAY", "40s")(d)
		}, "terminationGracePeriodSeconds=30 is below"},
		{"budget over SHUTDOWN_GRACE_PERIOD", setEnv("SHUTDOWN_MAX_DRAIN_DELAY", "28s"), `SHUTDOWN_MAX_DRAIN_DELAY="28s"`},
		{"not a duration", setEnv("SHUTDOWN_DRAIN_DELAY", "3"), `SHUTDOWN_DRAIN_DELAY="3"`},
		{"wrong readiness path", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, `readinessProbe: path "/ready", want /readyz`},
		{"liveness on the public port", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromString("http")
		}, "livenessProbe: port http, want the admin port 9090"},
		{"startup probe on a wrong port number", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].StartupProbe.HTTPGet.Port = intstr.FromInt32(8080)
		}, "startupProbe: port 8080, want the admin port 9090"},
		{"ADMIN_PORT unlike the container port", setEnv("ADMIN_PORT", "9091"), "container ports http=8080 admin=9090, want PORT=8080 ADMIN_PORT=9091"},
		{"wrong preStop path", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.HTTPGet.Path = "/pre-stop"
		}, "preStop: httpGet /pre-stop"},
		{"preStop without the token", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.HTTPGet.HTTPHeaders = nil
		}, "does not carry PRESTOP_TOKEN"},
		{"preStop with a stale token", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.HTTPGet.HTTPHeaders[0].Value = "old-token"
		}, "does not carry PRESTOP_TOKEN"},
		{"preStop sleep without a longer grace period", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop = &corev1.LifecycleHandler{
				Sleep: &corev1.SleepAction{Seconds: 5}}
		}, "terminationGracePeriodSeconds=30, want 35"},
		{"preStop exec", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop = &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 5"}}}
		}, "the image has no shell"},
		{"maxUnavailable 1", func(d *appsv1.Deployment) {
			mu := intstr.FromInt32(1)
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &mu
		}, "want RollingUpdate with maxSurge 1, maxUnavailable 0"},
		{"token Secret missing", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Env[len(d.Spec.Template.Spec.Containers[0].Env)-1].ValueFrom.SecretKeyRef.Name = "other"
		}, `no Secret "other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base.DeepCopy()
			tt.give(d)
			err := checkDeployment(d, m.secrets)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkDeployment = %v, want an error with %q", err, tt.want)
			}
			t.Log(err)
		})
	}
	if err := checkDeployment(base.DeepCopy(), m.secrets); err != nil {
		t.Errorf("the unchanged manifest fails: %v", err)
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
		{"misspelt field", "      terminationGracePeriod: 30", `unknown field "terminationGracePeriod"`},
		{"duplicate key", anchor + "\n      terminationGracePeriodSeconds: 60", "already set in map"},
		{"wrong type", `      terminationGracePeriodSeconds: "30s"`, "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeStrict(bytes.Replace(data, []byte(anchor), []byte(tt.give), 1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeStrict = %v, want an error with %q", err, tt.want)
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
