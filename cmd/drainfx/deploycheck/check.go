package deploycheck

import (
	"fmt"
	"maps"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/kubemod"
	"github.com/drainfx/drainfx/probemod"
)

// MinStopPhase is the least time a manifest must leave for the stop phase
// (HTTP Shutdown, WebSocket/SSE close) beyond the longest drain, the
// teardown reserve and the margin.
const MinStopPhase = time.Second

// DefaultGracePeriodSeconds is terminationGracePeriodSeconds when the pod
// spec leaves it out (Kubernetes' default).
const DefaultGracePeriodSeconds = 30

// Severity tells an error (the manifest would lose work, or get the pod
// killed) from a warning (worth a look; the check still passes).
type Severity int

// The severities.
const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Finding is one problem in one object.
type Finding struct {
	Severity Severity
	// Object is the object at fault ("k8s/deployment.yaml: Deployment/web").
	Object string
	// Field is its field path ("spec.template.spec.containers[0].readinessProbe.httpGet.path").
	Field string
	// Message says what is wrong and what was wanted.
	Message string
}

// String is the finding on one line: "error: OBJECT: FIELD: MESSAGE".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", f.Severity, f.Object, f.Field, f.Message)
}

// Options adds what the manifests do not say.
type Options struct {
	// Env gives values to variables a container's environment does not
	// resolve from the input: unset ones, and keys of Secrets or
	// ConfigMaps kept outside it. When set, every container that Containers
	// does not exclude is checked as a drainfx service.
	Env map[string]string
	// Containers names the containers that run a drainfx service. Default:
	// those with a SHUTDOWN_* variable in their environment (all of them
	// when Env is set).
	Containers []string
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == Error })
}

// input indexes the objects by kind.
type input struct {
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	services   []Object
	pdbs       []Object
	// Who may do what: Roles and ClusterRoles by name, the bindings, and
	// whether the input says anything of it (a ServiceAccount or RBAC).
	roles        map[string][]rbacv1.PolicyRule
	clusterRoles map[string][]rbacv1.PolicyRule
	bindings     []binding
	knowsRBAC    bool
}

// binding is a RoleBinding or ClusterRoleBinding.
type binding struct {
	ref      rbacv1.RoleRef
	subjects []rbacv1.Subject
}

// Check checks every workload of objs against the budget of the drainfx
// services it runs, and returns the findings in input order.
func Check(objs []Object, opt Options) []Finding {
	in := input{secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{},
		roles: map[string][]rbacv1.PolicyRule{}, clusterRoles: map[string][]rbacv1.PolicyRule{}}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *corev1.Secret:
			in.secrets[v.Name] = v
		case *corev1.ConfigMap:
			in.configMaps[v.Name] = v
		case *corev1.Service:
			in.services = append(in.services, o)
		case *policyv1.PodDisruptionBudget:
			in.pdbs = append(in.pdbs, o)
		case *corev1.ServiceAccount:
			in.knowsRBAC = true
		case *rbacv1.Role:
			in.roles[v.Name], in.knowsRBAC = v.Rules, true
		case *rbacv1.ClusterRole:
			in.clusterRoles[v.Name], in.knowsRBAC = v.Rules, true
		case *rbacv1.RoleBinding:
			in.bindings, in.knowsRBAC = append(in.bindings, binding{v.RoleRef, v.Subjects}), true
		case *rbacv1.ClusterRoleBinding:
			in.bindings, in.knowsRBAC = append(in.bindings, binding{v.RoleRef, v.Subjects}), true
		}
	}
	var out []Finding
	var workloads, services int
	for _, o := range objs {
		w := workloadOf(o)
		if w == nil {
			continue
		}
		workloads++
		c := &checker{obj: o.String(), opt: opt, in: in, w: w}
		services += c.check()
		out = append(out, c.findings...)
	}
	if workloads > 0 && services == 0 {
		out = append(out, Finding{Severity: Warning, Object: "input", Field: "env",
			Message: fmt.Sprintf("no container of the %s runs a drainfx service (none has a SHUTDOWN_* variable): nothing checked; name them with -container", Plural(workloads, "workload"))})
	}
	return out
}

// workload is what the checks need of a Deployment, StatefulSet or
// DaemonSet.
type workload struct {
	kind     string
	replicas *int32
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
	strategy *appsv1.DeploymentStrategy // Deployments only
}

func workloadOf(o Object) *workload {
	switch v := o.Obj.(type) {
	case *appsv1.Deployment:
		return &workload{kind: o.Kind, replicas: v.Spec.Replicas, selector: v.Spec.Selector, template: &v.Spec.Template, strategy: &v.Spec.Strategy}
	case *appsv1.StatefulSet:
		return &workload{kind: o.Kind, replicas: v.Spec.Replicas, selector: v.Spec.Selector, template: &v.Spec.Template}
	case *appsv1.DaemonSet:
		return &workload{kind: o.Kind, selector: v.Spec.Selector, template: &v.Spec.Template}
	}
	return nil
}

type checker struct {
	obj      string
	opt      Options
	in       input
	w        *workload
	findings []Finding
}

func (c *checker) add(sev Severity, field, format string, args ...any) {
	c.findings = append(c.findings, Finding{Severity: sev, Object: c.obj, Field: field, Message: fmt.Sprintf(format, args...)})
}

// check checks the workload and returns how many drainfx containers it has.
func (c *checker) check() int {
	w := c.w
	if w.selector != nil {
		for _, k := range slices.Sorted(maps.Keys(w.selector.MatchLabels)) {
			if v := w.selector.MatchLabels[k]; w.template.Labels[k] != v {
				c.add(Error, "spec.selector.matchLabels."+k, "%s=%s does not match the pod template's labels", k, v)
			}
		}
	}
	var services int
	for i, ct := range w.template.Spec.Containers {
		if !c.isService(ct) {
			continue
		}
		services++
		c.container(i, ct)
	}
	if services == 0 {
		return 0
	}
	if w.replicas != nil && *w.replicas < 2 {
		c.add(Warning, "spec.replicas", "%d: a single pod cannot be replaced without a moment with none ready", *w.replicas)
	}
	if s := w.strategy; s != nil {
		switch {
		case s.Type == appsv1.RecreateDeploymentStrategyType:
			c.add(Error, "spec.strategy.type", "Recreate stops every pod before the new ones are ready; want RollingUpdate with maxUnavailable 0")
		case s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil:
			c.add(Error, "spec.strategy.rollingUpdate.maxUnavailable", "unset (Kubernetes' default 25%%): a pod leaves before its replacement is ready; want 0")
		case s.RollingUpdate.MaxUnavailable.String() != "0" && s.RollingUpdate.MaxUnavailable.String() != "0%":
			c.add(Error, "spec.strategy.rollingUpdate.maxUnavailable", "%s: a pod leaves before its replacement is ready; want 0 (with maxSurge 1 or more)", s.RollingUpdate.MaxUnavailable.String())
		}
	}
	c.pdbs()
	return services
}

func (c *checker) isService(ct corev1.Container) bool {
	if len(c.opt.Containers) > 0 {
		return slices.Contains(c.opt.Containers, ct.Name)
	}
	if len(c.opt.Env) > 0 {
		return true
	}
	for _, e := range ct.Env {
		if strings.HasPrefix(e.Name, "SHUTDOWN_") {
			return true
		}
	}
	return false
}

// container checks one container of a drainfx service.
func (c *checker) container(i int, ct corev1.Container) {
	pod := &c.w.template.Spec
	at := fmt.Sprintf("spec.template.spec.containers[%d]", i)
	env, unresolved := c.env(at, ct)
	cfg, err := modules.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		c.add(Error, at+".env", "%v", err)
		return
	}
	plan, err := lifecycle.NewPlan(cfg.Lifecycle)
	if err != nil { // FromEnv has validated it
		c.add(Error, at+".env", "%v", err)
		return
	}
	publicPort, adminPort := portOf(cfg.HTTP.Addr), portOf(cfg.Probe.Addr)
	for j, p := range ct.Ports {
		want, env := 0, ""
		switch p.Name {
		case "http":
			want, env = publicPort, modules.EnvPort
		case "admin":
			want, env = adminPort, modules.EnvAdminPort
		default:
			continue
		}
		if int(p.ContainerPort) != want {
			c.add(Error, fmt.Sprintf("%s.ports[%d].containerPort", at, j), "port %s is %d, but %s=%d", p.Name, p.ContainerPort, env, want)
		}
	}

	// Probes.
	ports := probePorts{admin: adminPort, public: publicPort, grpc: namedPort(ct, "grpc")}
	ready := c.probe(at+".readinessProbe", ct, ct.ReadinessProbe, ports, true, true, probemod.PathReadyz)
	c.probe(at+".startupProbe", ct, ct.StartupProbe, ports, false, true, probemod.PathStartupz)
	switch lp := ct.LivenessProbe; {
	case lp != nil && lp.HTTPGet != nil && lp.HTTPGet.Path == probemod.PathReadyz:
		c.add(Error, at+".livenessProbe.httpGet.path", "%s is the readiness path: it fails through the whole drain and the kubelet kills the container; want %s or %s",
			probemod.PathReadyz, probemod.PathLivez, probemod.PathHealthz)
	case lp != nil && lp.GRPC != nil:
		c.add(Error, at+".livenessProbe.grpc", "the gRPC health service answers NOT_SERVING from the drain's start and its port closes at the stop phase: the kubelet kills the container; want an httpGet of %s on the admin port",
			probemod.PathLivez)
	default:
		c.probe(at+".livenessProbe", ct, ct.LivenessProbe, ports, false, false, probemod.PathLivez, probemod.PathHealthz)
	}
	if ready {
		rp := ct.ReadinessProbe
		fails := "/readyz fail"
		if rp.GRPC != nil {
			fails = "the gRPC health service's NOT_SERVING"
		}
		period, threshold := orDefault(rp.PeriodSeconds, 10), orDefault(rp.FailureThreshold, 3)
		seen := time.Duration(period*threshold) * time.Second
		switch {
		case seen >= plan.MaxDrainDelay:
			c.add(Error, at+".readinessProbe", "periodSeconds %d × failureThreshold %d = %v: the kubelet cannot see %s before the drain ends (at most %v); want less than SHUTDOWN_DRAIN_DELAY %v",
				period, threshold, seen, fails, plan.MaxDrainDelay, show(plan.DrainDelay))
		case seen > max(plan.DrainDelay, 0):
			c.add(Warning, at+".readinessProbe", "periodSeconds %d × failureThreshold %d = %v is longer than the least drain (SHUTDOWN_DRAIN_DELAY %v): a drain that ends early ends before the kubelet sees %s",
				period, threshold, seen, show(plan.DrainDelay), fails)
		}
	}

	// The preStop hook: when the drain begins, counted from the pod's
	// deletion. At once with an httpGet or exec hook (or none: SIGTERM comes
	// at once), after the sleep with a sleep hook.
	var d0 time.Duration
	callsPrestop := false // the hook waits for the drain: a signal during it means the grace ran out
	// Without a token, /prestop (served whatever the hook) drains the pod
	// for anyone who reaches the admin port, and a call with no SIGTERM
	// after it ends the process: a warning, said once per container.
	noToken := cfg.Lifecycle.PrestopToken == "" && !unresolved[modules.EnvPrestopToken]
	const noTokenRisk = "anyone who reaches the admin port can drain the pod, and end it if no SIGTERM follows"
	if h := preStop(ct); h != nil {
		hat := at + ".lifecycle.preStop"
		switch {
		case h.HTTPGet != nil:
			callsPrestop = true
			g := h.HTTPGet
			if g.Path != probemod.PathPrestop {
				c.add(Error, hat+".httpGet.path", "%q, want %s", g.Path, probemod.PathPrestop)
			}
			if p := resolvePort(ct, g.Port); p != adminPort {
				c.add(Error, hat+".httpGet.port", "%s, want the admin port %d (ADMIN_PORT)", g.Port.String(), adminPort)
			}
			var got []string
			for _, hd := range g.HTTPHeaders {
				if strings.EqualFold(hd.Name, probemod.PrestopHeader) {
					got = append(got, hd.Value)
				}
			}
			token := cfg.Lifecycle.PrestopToken
			switch {
			case unresolved[modules.EnvPrestopToken]:
				// said where it failed to resolve
			case token == "" && len(got) > 0:
				c.add(Warning, hat+".httpGet.httpHeaders", "%s is sent, but PRESTOP_TOKEN is empty: %s", probemod.PrestopHeader, noTokenRisk)
				noToken = false
			case token == "":
				c.add(Warning, hat+".httpGet.httpHeaders", "no %s, and PRESTOP_TOKEN is empty: %s; set PRESTOP_TOKEN from a Secret and send it here", probemod.PrestopHeader, noTokenRisk)
				noToken = false
			case token != "" && (len(got) != 1 || got[0] != token):
				c.add(Error, hat+".httpGet.httpHeaders", "%s does not carry PRESTOP_TOKEN: /prestop answers 401 and the drain begins only at SIGTERM", probemod.PrestopHeader)
			}
		case h.Sleep != nil:
			d0 = time.Duration(h.Sleep.Seconds) * time.Second
		case h.Exec != nil && len(h.Exec.Command) == 2 && h.Exec.Command[1] == "prestop" && !isShell(h.Exec.Command[0]):
			// the service's own subcommand (modules.Prestop)
			callsPrestop = true
		case h.Exec != nil:
			c.add(Error, hat+".exec.command", "%q: want httpGet %s, sleep, or the service's own [BINARY, \"prestop\"] (a distroless image has no shell)", h.Exec.Command, probemod.PathPrestop)
		default:
			c.add(Error, hat, "want httpGet %s, sleep, or exec [BINARY, \"prestop\"]", probemod.PathPrestop)
		}
	}

	if noToken {
		c.add(Warning, at+".env", "PRESTOP_TOKEN is empty: %s; set it from a Secret", noTokenRisk)
	}

	// The service's SIGKILL is the kubelet's: the grace period it counts
	// from D0 must end when the pod's does.
	grace := time.Duration(DefaultGracePeriodSeconds) * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	const field = "spec.template.spec.terminationGracePeriodSeconds"
	reserve, margin := max(plan.TeardownReserve, 0), max(plan.Margin, 0) // lifecycle.None is none
	if need := d0 + plan.MaxDrainDelay + MinStopPhase + reserve + margin; grace < need {
		set := max(d0+plan.GracePeriod, need)
		c.add(Error, field, "%v is below preStop sleep %v + drain (max) %v + stop %v + teardown %v + margin %v = %v: set it to %v (preStop sleep + SHUTDOWN_GRACE_PERIOD %v)",
			grace.Seconds(), d0, plan.MaxDrainDelay, MinStopPhase, reserve, margin, need, math.Ceil(set.Seconds()), plan.GracePeriod)
	} else if want := d0 + plan.GracePeriod; grace != want {
		c.add(Error, field, "%v, want %v (preStop sleep %v + SHUTDOWN_GRACE_PERIOD %v): the service must count to the kubelet's SIGKILL",
			grace.Seconds(), want.Seconds(), d0, plan.GracePeriod)
	}

	c.deadlineFromAPI(at, ct, env, callsPrestop, d0)
	c.services(adminPort, ct)
}

// deadlineFromAPI checks how the service can learn of a grace period
// shorter than the pod spec's (kubectl delete or drain --grace-period, an
// eviction): POD_NAME from the downward API turns on modules/kubemod,
// which reads the pod's deletionTimestamp at D0; a preStop hook that
// calls /prestop tells it too (a signal during the call: the kubelet gave
// up on the hook, 2 s are left). With neither — no hook, or a sleep — it
// cannot know, and is SIGKILLed mid-drain.
func (c *checker) deadlineFromAPI(at string, ct corev1.Container, env map[string]string, callsPrestop bool, sleep time.Duration) {
	on := env[kubemod.EnvPodName] != ""
	for j, e := range ct.Env {
		eat := fmt.Sprintf("%s.env[%d]", at, j)
		var path string
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			path = e.ValueFrom.FieldRef.FieldPath
		}
		switch {
		case e.Name == kubemod.EnvPodName && path != "metadata.name":
			c.add(Error, eat, "%s is not the downward API's metadata.name: every pod would read the deadline of another (want valueFrom.fieldRef.fieldPath: metadata.name)", e.Name)
		case e.Name == kubemod.EnvPodNamespace && e.ValueFrom != nil && path != "metadata.namespace":
			c.add(Error, eat, "%s is not the downward API's metadata.namespace (want valueFrom.fieldRef.fieldPath: metadata.namespace)", e.Name)
		}
	}
	pod := &c.w.template.Spec
	switch {
	case on && pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken:
		c.add(Warning, "spec.template.spec.automountServiceAccountToken", "false, but %s is set: the pod's deadline cannot be read from the API without the service account token", kubemod.EnvPodName)
	case on:
		c.mayGetPods()
	case callsPrestop:
	case sleep > 0:
		c.add(Warning, at+".env", "no %s and a preStop sleep: a grace period shortened by Kubernetes (kubectl delete or drain --grace-period, an eviction) cannot be seen — the sleep takes its share, SIGTERM says nothing of it, and the pod is SIGKILLed mid-drain; set %s from the downward API (metadata.name) and give the ServiceAccount a Role with get on pods (modules/kubemod)",
			kubemod.EnvPodName, kubemod.EnvPodName)
	default:
		c.add(Warning, at+".env", "no %s and no preStop hook: a grace period shortened by Kubernetes (kubectl delete or drain --grace-period, an eviction) cannot be seen — SIGTERM says nothing of it, and the pod is SIGKILLed mid-drain; set %s from the downward API (metadata.name) and give the ServiceAccount a Role with get on pods (modules/kubemod), or call /prestop in a preStop hook",
			kubemod.EnvPodName, kubemod.EnvPodName)
	}
}

// env resolves the container's environment the way the kubelet would, from
// the Secrets and ConfigMaps of the input and then Options.Env. Variables
// that do not resolve are reported and returned in unresolved.
func (c *checker) env(at string, ct corev1.Container) (map[string]string, map[string]bool) {
	env, unresolved := map[string]string{}, map[string]bool{}
	for j, src := range ct.EnvFrom {
		fat := fmt.Sprintf("%s.envFrom[%d]", at, j)
		var data map[string]string
		switch {
		case src.SecretRef != nil:
			if s, ok := c.in.secrets[src.SecretRef.Name]; ok {
				data = secretData(s)
			} else if !ptrTrue(src.SecretRef.Optional) {
				c.add(Warning, fat+".secretRef.name", "no Secret %q in the input: its variables are not checked (give them with -env)", src.SecretRef.Name)
			}
		case src.ConfigMapRef != nil:
			if m, ok := c.in.configMaps[src.ConfigMapRef.Name]; ok {
				data = m.Data
			} else if !ptrTrue(src.ConfigMapRef.Optional) {
				c.add(Warning, fat+".configMapRef.name", "no ConfigMap %q in the input: its variables are not checked (give them with -env)", src.ConfigMapRef.Name)
			}
		}
		for k, v := range data {
			env[src.Prefix+k] = v
		}
	}
	for j, e := range ct.Env {
		eat := fmt.Sprintf("%s.env[%d]", at, j)
		v, err := c.resolve(e)
		if err != "" {
			if ov, ok := c.opt.Env[e.Name]; ok {
				env[e.Name] = ov
				continue
			}
			unresolved[e.Name] = true
			delete(env, e.Name)
			c.add(Error, eat+".valueFrom", "%s: %s (put it in the input, or give it with -env %s=VALUE and name the service's container with -container)", e.Name, err, e.Name)
			continue
		}
		env[e.Name] = v
	}
	for k, v := range c.opt.Env {
		if _, ok := env[k]; !ok && !unresolved[k] {
			env[k] = v
		}
	}
	return env, unresolved
}

// mayGetPods warns if the input speaks of RBAC (a ServiceAccount, a Role,
// a binding) but grants the pod's ServiceAccount no get on pods: the read
// of modules/kubemod would get 403 at every termination. An input with no
// RBAC at all says nothing: the Role may live elsewhere.
func (c *checker) mayGetPods() {
	if !c.in.knowsRBAC {
		return
	}
	sa := c.w.template.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	for _, b := range c.in.bindings {
		if !slices.ContainsFunc(b.subjects, func(s rbacv1.Subject) bool { return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa }) {
			continue
		}
		rules := c.in.clusterRoles[b.ref.Name]
		if b.ref.Kind == "Role" {
			rules = c.in.roles[b.ref.Name]
		}
		if slices.ContainsFunc(rules, getsPods) {
			return
		}
	}
	c.add(Warning, "spec.template.spec.serviceAccountName", "ServiceAccount %q: no Role or ClusterRole in the input bound to it allows get on pods, so the read of the pod's deadline (%s is set) gets 403; bind it one with apiGroups [\"\"], resources [pods], verbs [get]",
		sa, kubemod.EnvPodName)
}

// getsPods reports whether the rule allows get on every pod.
func getsPods(r rbacv1.PolicyRule) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	return has(r.APIGroups, "") && has(r.Resources, "pods") && has(r.Verbs, "get") && len(r.ResourceNames) == 0
}

// resolve returns an env var's value, or why it cannot be known.
func (c *checker) resolve(e corev1.EnvVar) (string, string) {
	switch {
	case e.ValueFrom == nil:
		return e.Value, ""
	case e.ValueFrom.SecretKeyRef != nil:
		ref := e.ValueFrom.SecretKeyRef
		s, ok := c.in.secrets[ref.Name]
		if !ok {
			return "", fmt.Sprintf("no Secret %q in the input", ref.Name)
		}
		if v, ok := secretData(s)[ref.Key]; ok {
			return v, ""
		}
		return "", fmt.Sprintf("Secret %q has no key %q", ref.Name, ref.Key)
	case e.ValueFrom.FieldRef != nil:
		// The downward API: known to the kubelet only (POD_NAME is
		// checked by deadlineFromAPI).
		return "<" + e.ValueFrom.FieldRef.FieldPath + ">", ""
	case e.ValueFrom.ConfigMapKeyRef != nil:
		ref := e.ValueFrom.ConfigMapKeyRef
		m, ok := c.in.configMaps[ref.Name]
		if !ok {
			return "", fmt.Sprintf("no ConfigMap %q in the input", ref.Name)
		}
		if v, ok := m.Data[ref.Key]; ok {
			return v, ""
		}
		return "", fmt.Sprintf("ConfigMap %q has no key %q", ref.Name, ref.Key)
	default:
		return "", "only values, Secret keys, ConfigMap keys and the downward API's fields are read"
	}
}

func secretData(s *corev1.Secret) map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = string(v)
	}
	maps.Copy(m, s.StringData) // the API server writes stringData over data
	return m
}

// probePorts are the ports a probe may be on: the admin port (HTTP), and
// for a gRPC probe PORT or the container port named grpc (0 if none).
type probePorts struct{ admin, public, grpc int }

// probe checks an httpGet probe on the admin port at one of paths or, if
// grpcOK, a gRPC probe of a drainfx gRPC server (grpcmod: NOT_SERVING from
// D0, like /readyz's 503; its probe connections do not count in the
// adaptive drain); a missing probe is an error only if required. It
// reports whether the probe is right.
func (c *checker) probe(at string, ct corev1.Container, p *corev1.Probe, ports probePorts, required, grpcOK bool, paths ...string) bool {
	adminPort := ports.admin
	want := fmt.Sprintf("an httpGet of %s on the admin port", paths[0])
	if grpcOK {
		want += " (or a grpc probe of the gRPC port)"
	}
	switch {
	case p == nil && required:
		c.add(Error, at, "none: new pods get traffic before they can serve and the drain's 503 is never seen; want %s", want)
		return false
	case p == nil:
		return false
	case p.GRPC != nil && grpcOK:
		return c.grpcProbe(at+".grpc.port", int(p.GRPC.Port), ports)
	case p.HTTPGet == nil:
		sev := Warning
		if required {
			sev = Error
		}
		c.add(sev, at, "not an httpGet: want %s", want)
		return false
	}
	ok := true
	if !slices.Contains(paths, p.HTTPGet.Path) {
		c.add(Error, at+".httpGet.path", "%q, want %s", p.HTTPGet.Path, strings.Join(paths, " or "))
		ok = false
	}
	if port := resolvePort(ct, p.HTTPGet.Port); port != adminPort {
		c.add(Error, at+".httpGet.port", "%s, want the admin port %d (ADMIN_PORT)", p.HTTPGet.Port.String(), adminPort)
		ok = false
	}
	return ok
}

// grpcProbe checks the port of a gRPC probe: the gRPC server's (PORT, or
// the container port named grpc), never the admin port, which speaks HTTP.
func (c *checker) grpcProbe(at string, port int, ports probePorts) bool {
	switch {
	case port == ports.admin:
		c.add(Error, at, "%d is the admin port, which speaks HTTP: the gRPC probe always fails; want the gRPC port (PORT %d, or the port named grpc)", port, ports.public)
		return false
	case port != ports.public && (ports.grpc == 0 || port != ports.grpc):
		c.add(Error, at, "%d: no gRPC server of the service there; want PORT %d or the port named grpc", port, ports.public)
		return false
	}
	return true
}

// services checks that no Service selecting the pods exposes the admin port.
func (c *checker) services(adminPort int, ct corev1.Container) {
	podLabels := labels.Set(c.w.template.Labels)
	for _, o := range c.in.services {
		s := o.Obj.(*corev1.Service)
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue // headless: names the pods, routes nothing
		}
		for j, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port) // targetPort defaults to port
			}
			if resolvePort(ct, target) == adminPort {
				c.findings = append(c.findings, Finding{Severity: Error, Object: o.String(),
					Field:   fmt.Sprintf("spec.ports[%d].targetPort", j),
					Message: fmt.Sprintf("%s is the admin port %d of %s: probes and /prestop must stay out of every Service that routes traffic", target.String(), adminPort, c.obj)})
			}
		}
	}
}

// pdbs warns of a PodDisruptionBudget that leaves no pod to evict.
func (c *checker) pdbs() {
	if c.w.replicas == nil {
		return
	}
	podLabels := labels.Set(c.w.template.Labels)
	for _, o := range c.in.pdbs {
		p := o.Obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || !sel.Matches(podLabels) {
			continue
		}
		if m := p.Spec.MinAvailable; m != nil && m.Type == intstr.Int && m.IntVal >= *c.w.replicas {
			c.findings = append(c.findings, Finding{Severity: Warning, Object: o.String(), Field: "spec.minAvailable",
				Message: fmt.Sprintf("%d with %d replicas of %s: no pod can be evicted, a node drain blocks", m.IntVal, *c.w.replicas, c.obj)})
		}
	}
}

func preStop(ct corev1.Container) *corev1.LifecycleHandler {
	if ct.Lifecycle == nil {
		return nil
	}
	return ct.Lifecycle.PreStop
}

func isShell(cmd string) bool {
	switch path.Base(cmd) {
	case "sh", "bash", "ash", "dash", "zsh":
		return true
	}
	return false
}

// portOf returns the port number of a listen address such as ":9090".
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// namedPort is the container port named name, or 0.
func namedPort(ct corev1.Container, name string) int {
	return resolvePort(ct, intstr.FromString(name))
}

// resolvePort turns a port (a number or a port name) into a number, from
// the container's ports; 0 if the name is not there.
func resolvePort(ct corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range ct.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

func orDefault(v, def int32) int64 {
	if v == 0 {
		return int64(def)
	}
	return int64(v)
}

func ptrTrue(b *bool) bool { return b != nil && *b }

func show(d time.Duration) string {
	if d < 0 { // lifecycle.None
		return "0s"
	}
	return d.String()
}

// Plural writes n and noun, the noun in the plural unless n is 1: "1
// workload", "2 errors".
func Plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
