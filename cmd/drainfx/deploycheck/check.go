package deploycheck

import (
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
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
}

// Check checks every workload of objs against the budget of the drainfx
// services it runs, and returns the findings in input order.
func Check(objs []Object, opt Options) []Finding {
	in := input{secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
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
			Message: fmt.Sprintf("no container of the %d workloads runs a drainfx service (none has a SHUTDOWN_* variable): nothing checked; name them with -container", workloads)})
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
	ready := c.probe(at+".readinessProbe", ct, ct.ReadinessProbe, adminPort, true, probemod.PathReadyz)
	c.probe(at+".startupProbe", ct, ct.StartupProbe, adminPort, false, probemod.PathStartupz)
	if lp := ct.LivenessProbe; lp != nil && lp.HTTPGet != nil && lp.HTTPGet.Path == probemod.PathReadyz {
		c.add(Error, at+".livenessProbe.httpGet.path", "%s is the readiness path: it fails through the whole drain and the kubelet kills the container; want %s or %s",
			probemod.PathReadyz, probemod.PathLivez, probemod.PathHealthz)
	} else {
		c.probe(at+".livenessProbe", ct, ct.LivenessProbe, adminPort, false, probemod.PathLivez, probemod.PathHealthz)
	}
	if ready {
		rp := ct.ReadinessProbe
		period, threshold := orDefault(rp.PeriodSeconds, 10), orDefault(rp.FailureThreshold, 3)
		seen := time.Duration(period*threshold) * time.Second
		switch {
		case seen >= plan.MaxDrainDelay:
			c.add(Error, at+".readinessProbe", "periodSeconds %d × failureThreshold %d = %v: the kubelet cannot see /readyz fail before the drain ends (at most %v); want less than SHUTDOWN_DRAIN_DELAY %v",
				period, threshold, seen, plan.MaxDrainDelay, show(plan.DrainDelay))
		case seen > max(plan.DrainDelay, 0):
			c.add(Warning, at+".readinessProbe", "periodSeconds %d × failureThreshold %d = %v is longer than the least drain (SHUTDOWN_DRAIN_DELAY %v): a drain that ends early ends before the kubelet sees /readyz fail",
				period, threshold, seen, show(plan.DrainDelay))
		}
	}

	// The preStop hook: when the drain begins, counted from the pod's
	// deletion. At once with an httpGet or exec hook (or none: SIGTERM comes
	// at once), after the sleep with a sleep hook.
	var d0 time.Duration
	// Without a token, /prestop (served whatever the hook) drains the pod
	// for anyone who reaches the admin port, and a call with no SIGTERM
	// after it ends the process: a warning, said once per container.
	noToken := cfg.Lifecycle.PrestopToken == "" && !unresolved[modules.EnvPrestopToken]
	const noTokenRisk = "anyone who reaches the admin port can drain the pod, and end it if no SIGTERM follows"
	if h := preStop(ct); h != nil {
		hat := at + ".lifecycle.preStop"
		switch {
		case h.HTTPGet != nil:
			g := h.HTTPGet
			if g.Path != probemod.PathPrestop {
				c.add(Error, hat+".httpGet.path", "%q, want %s", g.Path, probemod.PathPrestop)
			}
			if p := resolvePort(ct, g.Port); p != adminPort {
				c.add(Error, hat+".httpGet.port", "%s, want the admin port %d (ADMIN_PORT)", g.Port.String(), adminPort)
			}
			var got []string
			for _, hd := range g.HTTPHeaders {
				if strings.EqualFold(hd.Name, lifecycle.PrestopHeader) {
					got = append(got, hd.Value)
				}
			}
			token := cfg.Lifecycle.PrestopToken
			switch {
			case unresolved[modules.EnvPrestopToken]:
				// said where it failed to resolve
			case token == "" && len(got) > 0:
				c.add(Warning, hat+".httpGet.httpHeaders", "%s is sent, but PRESTOP_TOKEN is empty: %s", lifecycle.PrestopHeader, noTokenRisk)
				noToken = false
			case token == "":
				c.add(Warning, hat+".httpGet.httpHeaders", "no %s, and PRESTOP_TOKEN is empty: %s; set PRESTOP_TOKEN from a Secret and send it here", lifecycle.PrestopHeader, noTokenRisk)
				noToken = false
			case token != "" && (len(got) != 1 || got[0] != token):
				c.add(Error, hat+".httpGet.httpHeaders", "%s does not carry PRESTOP_TOKEN: /prestop answers 401 and the drain begins only at SIGTERM", lifecycle.PrestopHeader)
			}
		case h.Sleep != nil:
			d0 = time.Duration(h.Sleep.Seconds) * time.Second
		case h.Exec != nil && len(h.Exec.Command) == 2 && h.Exec.Command[1] == "prestop" && !isShell(h.Exec.Command[0]):
			// the service's own subcommand (modules.Prestop)
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
		c.add(Error, field, "%v is below preStop sleep %v + drain (max) %v + stop %v + teardown %v + margin %v = %v",
			grace.Seconds(), d0, plan.MaxDrainDelay, MinStopPhase, reserve, margin, need)
	} else if want := d0 + plan.GracePeriod; grace != want {
		c.add(Error, field, "%v, want %v (preStop sleep %v + SHUTDOWN_GRACE_PERIOD %v): the service must count to the kubelet's SIGKILL",
			grace.Seconds(), want.Seconds(), d0, plan.GracePeriod)
	}

	c.services(adminPort, ct)
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
		return "", "only values, Secret keys and ConfigMap keys are read"
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

// probe checks an httpGet probe on the admin port at one of paths; a
// missing probe is an error only if required. It reports whether the probe
// is right.
func (c *checker) probe(at string, ct corev1.Container, p *corev1.Probe, adminPort int, required bool, paths ...string) bool {
	switch {
	case p == nil && required:
		c.add(Error, at, "none: new pods get traffic before they can serve and the drain's 503 is never seen; want an httpGet of %s on the admin port", paths[0])
		return false
	case p == nil:
		return false
	case p.HTTPGet == nil:
		sev := Warning
		if required {
			sev = Error
		}
		c.add(sev, at, "not an httpGet: want %s on the admin port", strings.Join(paths, " or "))
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
