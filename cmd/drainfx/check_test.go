package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const exampleK8s = "../../examples/service/k8s"

func runOut(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckExampleManifests(t *testing.T) {
	t.Parallel()
	code, out, errOut := runOut(t, "", "check", exampleK8s)
	if code != 0 || strings.Contains(out, "error:") {
		t.Fatalf("drainfx check %s = %d, want 0\n%s%s", exampleK8s, code, out, errOut)
	}
	if !strings.Contains(out, "2 workloads: 0 errors, 0 warnings") {
		t.Errorf("summary: %q, want both Deployments checked clean", out)
	}
}

// The broken manifests: each changes the example's deployment.yaml in one
// way, goes through the command with the example's Secret and Service on
// stdin, and must exit 1 with a line naming the field at fault.
func TestCheckBrokenManifests(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte { return readFile(t, exampleK8s, name) }
	var base appsv1.Deployment
	if err := yaml.UnmarshalStrict(read("deployment.yaml"), &base); err != nil {
		t.Fatal(err)
	}
	others := "---\n" + string(read("secret.yaml")) + "---\n" + string(read("service.yaml"))
	ct := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	setEnv := func(name, value string) func(*appsv1.Deployment) {
		return func(d *appsv1.Deployment) {
			env := ct(d).Env
			for i := range env {
				if env[i].Name == name {
					env[i].Value = value
				}
			}
		}
	}
	const c0 = "spec.template.spec.containers[0]"
	tests := []struct {
		name      string
		give      func(d *appsv1.Deployment)
		wantField string
		want      string
	}{
		{"shorter grace period", func(d *appsv1.Deployment) {
			*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 15
		}, "spec.template.spec.terminationGracePeriodSeconds", "15 is below preStop sleep 0s + drain (max) 15s"},
		{"shorter grace period: the value to set", func(d *appsv1.Deployment) {
			*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 15
		}, "spec.template.spec.terminationGracePeriodSeconds", "set it to 30 (preStop sleep + SHUTDOWN_GRACE_PERIOD 30s)"},
		{"grace period unlike SHUTDOWN_GRACE_PERIOD", func(d *appsv1.Deployment) {
			*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 60
		}, "spec.template.spec.terminationGracePeriodSeconds", "60, want 30"},
		{"grace period left to the default, drain too long for it", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = nil
			setEnv("SHUTDOWN_GRACE_PERIOD", "60s")(d)
			setEnv("SHUTDOWN_MAX_DRAIN_DELAY", "40s")(d)
		}, "spec.template.spec.terminationGracePeriodSeconds", "30 is below"},
		{"budget over SHUTDOWN_GRACE_PERIOD", setEnv("SHUTDOWN_MAX_DRAIN_DELAY", "28s"), c0 + ".env", `SHUTDOWN_MAX_DRAIN_DELAY="28s"`},
		{"not a duration", setEnv("SHUTDOWN_DRAIN_DELAY", "3"), c0 + ".env", `SHUTDOWN_DRAIN_DELAY="3"`},
		{"wrong readiness path", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe.HTTPGet.Path = "/ready"
		}, c0 + ".readinessProbe.httpGet.path", `"/ready", want /readyz`},
		{"readiness too slow to see the drain", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe.PeriodSeconds = 10
			ct(d).ReadinessProbe.FailureThreshold = 3
		}, c0 + ".readinessProbe", "periodSeconds 10 × failureThreshold 3 = 30s"},
		{"liveness on the public port", func(d *appsv1.Deployment) {
			ct(d).LivenessProbe.HTTPGet.Port = intstr.FromString("http")
		}, c0 + ".livenessProbe.httpGet.port", "http, want the admin port 9090"},
		{"liveness on the readiness path", func(d *appsv1.Deployment) {
			ct(d).LivenessProbe.HTTPGet.Path = "/readyz"
		}, c0 + ".livenessProbe.httpGet.path", "the kubelet kills the container"},
		{"startup probe on a wrong port number", func(d *appsv1.Deployment) {
			ct(d).StartupProbe.HTTPGet.Port = intstr.FromInt32(8080)
		}, c0 + ".startupProbe.httpGet.port", "8080, want the admin port 9090"},
		{"ADMIN_PORT unlike the container port", setEnv("ADMIN_PORT", "9091"), c0 + ".ports[1].containerPort", "port admin is 9090, but ADMIN_PORT=9091"},
		{"wrong preStop path", func(d *appsv1.Deployment) {
			ct(d).Lifecycle.PreStop.HTTPGet.Path = "/pre-stop"
		}, c0 + ".lifecycle.preStop.httpGet.path", `"/pre-stop", want /prestop`},
		{"preStop without the token", func(d *appsv1.Deployment) {
			ct(d).Lifecycle.PreStop.HTTPGet.HTTPHeaders = nil
		}, c0 + ".lifecycle.preStop.httpGet.httpHeaders", "does not carry PRESTOP_TOKEN"},
		{"preStop with a stale token", func(d *appsv1.Deployment) {
			ct(d).Lifecycle.PreStop.HTTPGet.HTTPHeaders[0].Value = "old-token"
		}, c0 + ".lifecycle.preStop.httpGet.httpHeaders", "does not carry PRESTOP_TOKEN"},
		{"preStop sleep without a longer grace period", func(d *appsv1.Deployment) {
			ct(d).Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}
		}, "spec.template.spec.terminationGracePeriodSeconds", "30, want 35"},
		{"preStop exec through a shell", func(d *appsv1.Deployment) {
			ct(d).Lifecycle.PreStop = &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 5"}}}
		}, c0 + ".lifecycle.preStop.exec.command", "a distroless image has no shell"},
		{"maxUnavailable 1", func(d *appsv1.Deployment) {
			mu := intstr.FromInt32(1)
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &mu
		}, "spec.strategy.rollingUpdate.maxUnavailable", "1: a pod leaves before its replacement is ready"},
		{"token Secret missing", func(d *appsv1.Deployment) {
			env := ct(d).Env
			env[envIndex(t, env, "PRESTOP_TOKEN")].ValueFrom.SecretKeyRef.Name = "other"
		}, c0 + ".env[8].valueFrom", `no Secret "other" in the input`},
		{"POD_NAME a literal", func(d *appsv1.Deployment) {
			env := ct(d).Env
			env[envIndex(t, env, "POD_NAME")] = corev1.EnvVar{Name: "POD_NAME", Value: "drainfx-service"}
		}, c0 + ".env[9]", "POD_NAME is not the downward API's metadata.name: every pod would read the deadline of another"},
		{"POD_NAME another field", func(d *appsv1.Deployment) {
			ct(d).Env[envIndex(t, ct(d).Env, "POD_NAME")].ValueFrom.FieldRef.FieldPath = "spec.nodeName"
		}, c0 + ".env[9]", "want valueFrom.fieldRef.fieldPath: metadata.name"},
		{"POD_NAMESPACE another field", func(d *appsv1.Deployment) {
			ct(d).Env[envIndex(t, ct(d).Env, "POD_NAMESPACE")].ValueFrom.FieldRef.FieldPath = "metadata.name"
		}, c0 + ".env[10]", "POD_NAMESPACE is not the downward API's metadata.namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := base.DeepCopy()
			tt.give(d)
			y, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runOut(t, string(y)+others, "check", "-")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			var line string
			for l := range strings.Lines(out) {
				if strings.HasPrefix(l, "error: ") && strings.Contains(l, ": "+tt.wantField+": ") && strings.Contains(l, tt.want) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no error line naming %s with %q in:\n%s", tt.wantField, tt.want, out)
			}
			t.Log(strings.TrimSpace(line))
		})
	}
}

// A grace period shortened by Kubernetes is seen through a preStop hook
// that calls /prestop (a signal during the call), or through the pod's
// deletionTimestamp read from the API (POD_NAME, modules/kubemod). A
// workload with neither is warned of; one with either is not.
func TestCheckShortenedGraceVisible(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte { return readFile(t, exampleK8s, name) }
	var base appsv1.Deployment
	if err := yaml.UnmarshalStrict(read("deployment.yaml"), &base); err != nil {
		t.Fatal(err)
	}
	others := "---\n" + string(read("secret.yaml"))
	ct := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	noPodName := func(d *appsv1.Deployment) {
		ct(d).Env = slices.DeleteFunc(ct(d).Env, func(e corev1.EnvVar) bool { return strings.HasPrefix(e.Name, "POD_") })
	}
	noHook := func(d *appsv1.Deployment) { ct(d).Lifecycle = nil }
	sleep := func(d *appsv1.Deployment) {
		ct(d).Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}
		*d.Spec.Template.Spec.TerminationGracePeriodSeconds = 35
	}
	exec := func(d *appsv1.Deployment) {
		ct(d).Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/service", "prestop"}}}
	}
	const c0 = "spec.template.spec.containers[0]"
	rbac := "---\n" + string(read("serviceaccount.yaml")) + "---\n" + string(read("role.yaml"))
	otherSA := func(d *appsv1.Deployment) { d.Spec.Template.Spec.ServiceAccountName = "other" }
	tests := []struct {
		name      string
		give      []func(*appsv1.Deployment)
		rbac      string // more input
		wantField string // of the one warning; "" for none
		want      string
	}{
		{"httpGet /prestop and POD_NAME", nil, "", "", ""},
		{"POD_NAME, bound to get pods", nil, rbac, "", ""},
		{"POD_NAME, bound to no Role", []func(*appsv1.Deployment){otherSA}, rbac, "spec.template.spec.serviceAccountName",
			`ServiceAccount "other": no Role or ClusterRole in the input bound to it allows get on pods`},
		{"POD_NAME, a Role for one pod's name", nil, strings.Replace(rbac, "verbs: [get]", "verbs: [get]\n    resourceNames: [web-0]", 1),
			"spec.template.spec.serviceAccountName", `ServiceAccount "drainfx-service": no Role`},
		{"POD_NAME, a ClusterRole with every verb", []func(*appsv1.Deployment){otherSA}, `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: ["*"], resources: [pods, services], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects: [{kind: ServiceAccount, name: other}]
`, "", ""},
		{"httpGet /prestop: the 2 s rule", []func(*appsv1.Deployment){noPodName}, "", "", ""},
		{"exec prestop", []func(*appsv1.Deployment){noPodName, exec}, "", "", ""},
		{"SIGTERM only, POD_NAME", []func(*appsv1.Deployment){noHook}, "", "", ""},
		{"sleep, POD_NAME", []func(*appsv1.Deployment){sleep}, "", "", ""},
		{"SIGTERM only", []func(*appsv1.Deployment){noPodName, noHook}, "", c0 + ".env",
			"no POD_NAME and no preStop hook: a grace period shortened by Kubernetes (kubectl delete or drain --grace-period, an eviction) cannot be seen"},
		{"sleep", []func(*appsv1.Deployment){noPodName, sleep}, "", c0 + ".env", "no POD_NAME and a preStop sleep"},
		{"POD_NAME without a token", []func(*appsv1.Deployment){func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.AutomountServiceAccountToken = new(false)
		}}, "", "spec.template.spec.automountServiceAccountToken", "false, but POD_NAME is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := base.DeepCopy()
			for _, f := range tt.give {
				f(d)
			}
			y, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runOut(t, string(y)+others+tt.rbac, "check", "-")
			if code != 0 {
				t.Fatalf("exit %d, want 0 (warnings only)\n%s%s", code, out, errOut)
			}
			if tt.want == "" {
				if !strings.Contains(out, "0 errors, 0 warnings") {
					t.Errorf("want no finding:\n%s", out)
				}
				return
			}
			if !strings.Contains(out, "0 errors, 1 warning") || !strings.Contains(out, "warning: stdin#1: Deployment/drainfx-service: "+tt.wantField+": "+tt.want) {
				t.Errorf("want one warning on %s with %q:\n%s", tt.wantField, tt.want, out)
			}
		})
	}
}

// envIndex returns the index of the variable name in env.
func envIndex(t *testing.T, env []corev1.EnvVar, name string) int {
	t.Helper()
	for i, e := range env {
		if e.Name == name {
			return i
		}
	}
	t.Fatalf("no %s in the example's environment", name)
	return -1
}

func TestCheckAdminPortInService(t *testing.T) {
	t.Parallel()
	dep, sec := readFile(t, exampleK8s, "deployment.yaml"), readFile(t, exampleK8s, "secret.yaml")
	svc := func(clusterIP string) string {
		return `apiVersion: v1
kind: Service
metadata: {name: admin}
spec:
  clusterIP: ` + clusterIP + `
  selector: {app.kubernetes.io/name: drainfx-service}
  ports: [{name: admin, port: 9090, targetPort: admin}]
`
	}
	tests := []struct {
		name     string
		give     string
		wantCode int
	}{
		{"routed", svc(`""`), 1},
		{"headless", svc("None"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, _ := runOut(t, string(dep)+"---\n"+string(sec)+"---\n"+tt.give, "check", "-")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, out)
			}
			if tt.wantCode == 1 && !strings.Contains(out, "stdin#3: Service/admin: spec.ports[0].targetPort: admin is the admin port 9090") {
				t.Errorf("no line naming the Service's port:\n%s", out)
			}
		})
	}
}

func TestCheckInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		give     string
		args     []string
		wantCode int
		want     string
	}{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n", nil, 2, `unknown field "spec.replica"`},
		{"no drainfx container", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: app}]}}}\n", nil, 0, "nothing checked"},
		{"budget from flags", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: app}]}}}\n",
			[]string{"-env", "SHUTDOWN_GRACE_PERIOD=10s"}, 1, "readinessProbe: none"},
		{"other kinds skipped", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n", nil, 0, "0 objects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runOut(t, tt.give, append(append([]string{"check"}, tt.args...), "-")...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}

// gRPC probes: the gRPC example's Deployment with native grpc probes where
// they fit (readiness, startup) passes; a grpc probe on the wrong port, or
// for liveness, is an error naming the field.
func TestCheckGRPCProbes(t *testing.T) {
	t.Parallel()
	const grpcK8s = "../../examples/grpc/k8s"
	secret, b := readFile(t, grpcK8s, "secret.yaml"), readFile(t, grpcK8s, "deployment.yaml")
	var base appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &base); err != nil {
		t.Fatal(err)
	}
	ct := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	grpcProbe := func(port int32, period, threshold int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}},
			PeriodSeconds: period, FailureThreshold: threshold}
	}
	const c0 = "spec.template.spec.containers[0]"
	tests := []struct {
		name      string
		give      func(d *appsv1.Deployment)
		wantField string // "" = no error
		want      string
	}{
		{"grpc readiness and startup on PORT", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe = grpcProbe(8080, 1, 1)
			ct(d).StartupProbe = grpcProbe(8080, 1, 30)
		}, "", ""},
		{"grpc readiness on the admin port", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe = grpcProbe(9090, 1, 1)
		}, c0 + ".readinessProbe.grpc.port", "9090 is the admin port, which speaks HTTP"},
		{"grpc readiness on another port", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe = grpcProbe(7000, 1, 1)
		}, c0 + ".readinessProbe.grpc.port", "7000: no gRPC server of the service there"},
		{"grpc readiness too slow to see the drain", func(d *appsv1.Deployment) {
			ct(d).ReadinessProbe = grpcProbe(8080, 10, 3)
		}, c0 + ".readinessProbe", "periodSeconds 10 × failureThreshold 3 = 30s"},
		{"grpc liveness", func(d *appsv1.Deployment) {
			ct(d).LivenessProbe = grpcProbe(8080, 10, 3)
		}, c0 + ".livenessProbe.grpc", "NOT_SERVING from the drain's start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := base.DeepCopy()
			tt.give(d)
			y, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runOut(t, string(y)+"---\n"+string(secret), "check", "-")
			if tt.wantField == "" {
				if code != 0 || strings.Contains(out, "error:") {
					t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
				}
				return
			}
			var line string
			for l := range strings.Lines(out) {
				if strings.HasPrefix(l, "error: ") && strings.Contains(l, ": "+tt.wantField+": ") && strings.Contains(l, tt.want) {
					line = l
				}
			}
			if code != 1 || line == "" {
				t.Fatalf("exit %d, want 1 with an error line naming %s with %q in:\n%s%s", code, tt.wantField, tt.want, out, errOut)
			}
			t.Log(strings.TrimSpace(line))
		})
	}
}

func TestRolloutFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"no binary", nil, "-bin is required"},
		{"bad request", []string{"-bin", "x", "-request", "GET"}, "want METHOD PATH"},
		{"bad header", []string{"-bin", "x", "-header", "Content-Type"}, "want Name: value"},
		{"no client", []string{"-bin", "x", "-keepalive", "0", "-newconn", "0", "-ws-path", "", "-sse-path", ""}, "no client"},
		{"bad range", []string{"-bin", "x", "-propagation", "3s-1s"}, "-propagation"},
		{"negative gRPC clients", []string{"-bin", "x", "-grpc", "-1"}, "Load.GRPC=-1 is negative"},
		{"unknown data plane", []string{"-bin", "x", "-dataplane", "k8s"}, `DataPlane="k8s": want haproxy or kube`},
		{"proxy mode without kube", []string{"-bin", "x", "-proxy-mode", "iptables"}, "-proxy-mode: only with -dataplane kube"},
		{"unknown proxy mode", []string{"-bin", "x", "-dataplane", "kube", "-proxy-mode", "ipvs"}, `ProxyMode="ipvs": want nftables or iptables`},
		{"entry without a load balancer", []string{"-bin", "x", "-dataplane", "kube", "-entry", "1s"}, "-entry with -dataplane kube"},
		{"grace not whole seconds", []string{"-bin", "x", "-dataplane", "kube", "-grace", "2500ms"}, "GracePeriod=2.5s: Kubernetes takes whole seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runOut(t, "", append([]string{"rollout"}, tt.give...)...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want 2 with %q:\n%s%s", code, tt.want, out, errOut)
			}
		})
	}
}

// -dataplane kube without the Kubernetes binaries says so and names the
// command that builds them (and, when not root, that it needs root).
func TestRolloutKubeCannotRun(t *testing.T) {
	t.Setenv("DRAINFX_KUBE_DIR", t.TempDir())
	code, out, errOut := runOut(t, "", "rollout", "-bin", "x", "-dataplane", "kube")
	if code != 2 || !strings.Contains(errOut, "no etcd, kube-apiserver, kube-controller-manager, kube-proxy in") ||
		!strings.Contains(errOut, `"bash internal/ci/kube.sh"`) {
		t.Errorf("exit %d, want 2 naming the binaries and the build command:\n%s%s", code, out, errOut)
	}
	t.Log(strings.TrimSpace(errOut))
}

// Without PRESTOP_TOKEN, anyone who reaches the admin port can drain the
// pod (and end it): a warning — not an error, the manifests still work —
// naming PRESTOP_TOKEN, once per container, whatever the preStop hook.
func TestCheckNoPrestopToken(t *testing.T) {
	t.Parallel()
	b, secret := readFile(t, exampleK8s, "deployment.yaml"), readFile(t, exampleK8s, "secret.yaml")
	var base appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &base); err != nil {
		t.Fatal(err)
	}
	const c0 = "spec.template.spec.containers[0]"
	ct := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	noToken := func(d *appsv1.Deployment) {
		ct(d).Env = slices.DeleteFunc(ct(d).Env, func(e corev1.EnvVar) bool { return e.Name == "PRESTOP_TOKEN" })
	}
	tests := []struct {
		name      string
		give      func(d *appsv1.Deployment)
		wantField string // "": no warning about the token
	}{
		{"httpGet with the token", func(*appsv1.Deployment) {}, ""},
		{"httpGet, no token, no header", func(d *appsv1.Deployment) {
			noToken(d)
			ct(d).Lifecycle.PreStop.HTTPGet.HTTPHeaders = nil
		}, c0 + ".lifecycle.preStop.httpGet.httpHeaders"},
		{"httpGet, no token, a header", noToken, c0 + ".lifecycle.preStop.httpGet.httpHeaders"},
		{"exec prestop, no token", func(d *appsv1.Deployment) {
			noToken(d)
			ct(d).Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/service", "prestop"}}}
		}, c0 + ".env"},
		{"no hook, no token", func(d *appsv1.Deployment) {
			noToken(d)
			ct(d).Lifecycle = nil
		}, c0 + ".env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := base.DeepCopy()
			tt.give(d)
			y, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runOut(t, string(y)+"---\n"+string(secret), "check", "-")
			if code != 0 {
				t.Fatalf("exit %d, want 0 (warnings only)\n%s%s", code, out, errOut)
			}
			var lines []string
			for l := range strings.Lines(out) {
				if strings.Contains(l, "PRESTOP_TOKEN is empty") {
					lines = append(lines, l)
				}
			}
			switch {
			case tt.wantField == "" && len(lines) > 0:
				t.Errorf("a warning with the token set:\n%s", out)
			case tt.wantField != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], "warning: ") ||
				!strings.Contains(lines[0], ": "+tt.wantField+": ") || !strings.Contains(lines[0], "anyone who reaches the admin port can drain the pod")):
				t.Errorf("want one warning at %s naming PRESTOP_TOKEN, got:\n%s", tt.wantField, out)
			default:
				t.Log(strings.TrimSpace(strings.Join(lines, "")))
			}
		})
	}
}

// drainfx rollout warns when -grace is not the grace period the service
// counts with, and says which value rehearses the deployment as configured.
func TestRolloutGraceWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // "" for no warning
	}{
		{"default both", nil, ""},
		{"shorter", []string{"-grace", "12s"}, "-grace 12s is shorter than the service's grace period 30s (SHUTDOWN_GRACE_PERIOD 30s)"},
		{"longer", []string{"-grace", "40s", "-env", "SHUTDOWN_GRACE_PERIOD=10s"}, "-grace 40s is longer than the service's grace period 10s"},
		{"sleep counted", []string{"-grace", "35s", "-prestop", "sleep=5s"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// -bin that does not exist: the run stops after the flags are
			// read and the warning is written.
			args := append([]string{"rollout", "-bin", "/nonexistent/service", "-q", "-timeout", "1s"}, tt.args...)
			_, _, errOut := runOut(t, "", args...)
			got := ""
			for l := range strings.Lines(errOut) {
				if w, ok := strings.CutPrefix(l, "drainfx rollout: warning: "); ok {
					got = w
				}
			}
			switch {
			case tt.want == "" && got != "":
				t.Errorf("warning %q, want none", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("warning %q, want %q\n%s", got, tt.want, errOut)
			}
		})
	}
}

// readFile reads a manifest of an example (dir/name) or fails the test.
func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
