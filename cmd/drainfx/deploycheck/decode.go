package deploycheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded Kubernetes object and where it came from.
type Object struct {
	// Source names the input: a file path, or "stdin",
	// followed by the document's number when the input holds several
	// ("deploy.yaml#2").
	Source string
	// Kind and Name are the object's kind and metadata.name.
	Kind, Name string
	// Obj is a pointer to the typed object: *appsv1.Deployment,
	// *appsv1.StatefulSet, *appsv1.DaemonSet, *corev1.Service,
	// *corev1.Secret, *corev1.ConfigMap, *policyv1.PodDisruptionBudget,
	// *corev1.ServiceAccount, or *rbacv1.Role, ClusterRole, RoleBinding or
	// ClusterRoleBinding.
	Obj any
}

func (o Object) String() string { return o.Source + ": " + o.Kind + "/" + o.Name }

// kinds are the objects the checker reads; others are skipped.
var kinds = map[string]func() any{
	"apps/v1 Deployment":            func() any { return new(appsv1.Deployment) },
	"apps/v1 StatefulSet":           func() any { return new(appsv1.StatefulSet) },
	"apps/v1 DaemonSet":             func() any { return new(appsv1.DaemonSet) },
	"v1 Service":                    func() any { return new(corev1.Service) },
	"v1 Secret":                     func() any { return new(corev1.Secret) },
	"v1 ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"policy/v1 PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
	// Who may read the pod (POD_NAME, modules/kubemod).
	"v1 ServiceAccount":                               func() any { return new(corev1.ServiceAccount) },
	"rbac.authorization.k8s.io/v1 Role":               func() any { return new(rbacv1.Role) },
	"rbac.authorization.k8s.io/v1 ClusterRole":        func() any { return new(rbacv1.ClusterRole) },
	"rbac.authorization.k8s.io/v1 RoleBinding":        func() any { return new(rbacv1.RoleBinding) },
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding": func() any { return new(rbacv1.ClusterRoleBinding) },
}

// DecodeStrict decodes one YAML object into its typed Kubernetes object
// (see [Object.Obj]); ok is false for a kind the checker does not read.
// Unknown fields, duplicate keys and wrong types are errors, as they are
// for `kubectl apply --validate=strict`.
func DecodeStrict(data []byte) (obj any, ok bool, err error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, false, err
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, false, err
	}
	newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, false, nil
	}
	obj = newObj()
	// Field names match case-sensitively, as the API server matches them
	// (encoding/json would take "stringdata" for "stringData").
	strict, err := sigsjson.UnmarshalStrict(js, obj)
	if err == nil {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, false, err
	}
	return obj, true, nil
}

// Decode reads the multi-document YAML of r (named source in the results)
// and returns the objects the checker reads. A document that does not
// decode is an error naming the source and the document.
func Decode(source string, r io.Reader) ([]Object, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 || string(bytes.TrimSpace(stripComments(doc))) == "---" {
			continue
		}
		docs = append(docs, doc)
	}
	var objs []Object
	var errs []error
	for i, doc := range docs {
		src := source
		if len(docs) > 1 {
			src = fmt.Sprintf("%s#%d", source, i+1)
		}
		obj, ok, err := DecodeStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if !ok {
			continue
		}
		kind, name := describe(obj)
		objs = append(objs, Object{Source: src, Kind: kind, Name: name, Obj: obj})
	}
	return objs, errors.Join(errs...)
}

// stripComments drops the comment lines of a document, so that a document
// of comments alone (a Helm template rendered empty) counts as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// Load reads files, directories (every .yaml and .yml file under them, in
// lexical order) and "-" (stdin) into objects.
func Load(stdin io.Reader, paths ...string) ([]Object, error) {
	var objs []Object
	var errs []error
	add := func(source string, r io.Reader) {
		o, err := Decode(source, r)
		objs = append(objs, o...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range paths {
		if p == "-" {
			add("stdin", stdin)
			continue
		}
		var files []string
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir():
				return nil
			case path == p || strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml"):
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		slices.Sort(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(f, bytes.NewReader(data))
		}
	}
	return objs, errors.Join(errs...)
}

func describe(obj any) (kind, name string) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return "Deployment", o.Name
	case *appsv1.StatefulSet:
		return "StatefulSet", o.Name
	case *appsv1.DaemonSet:
		return "DaemonSet", o.Name
	case *corev1.Service:
		return "Service", o.Name
	case *corev1.Secret:
		return "Secret", o.Name
	case *corev1.ConfigMap:
		return "ConfigMap", o.Name
	case *policyv1.PodDisruptionBudget:
		return "PodDisruptionBudget", o.Name
	case *corev1.ServiceAccount:
		return "ServiceAccount", o.Name
	case *rbacv1.Role:
		return "Role", o.Name
	case *rbacv1.ClusterRole:
		return "ClusterRole", o.Name
	case *rbacv1.RoleBinding:
		return "RoleBinding", o.Name
	case *rbacv1.ClusterRoleBinding:
		return "ClusterRoleBinding", o.Name
	}
	return fmt.Sprintf("%T", obj), ""
}
