package kubemod

import (
	"errors"
	"net"
	"net/url"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// The environment variables [FromEnv] reads: the pod's name and namespace,
// from the downward API (fieldRef metadata.name and metadata.namespace).
const (
	EnvPodName      = "POD_NAME"      // empty or unset: the module is off
	EnvPodNamespace = "POD_NAMESPACE" // default: the service account's namespace file
)

// The in-cluster defaults: the kubelet sets the two variables in every
// container, and mounts the service account's files at [ServiceAccountDir].
const (
	EnvServiceHost    = "KUBERNETES_SERVICE_HOST"
	EnvServicePort    = "KUBERNETES_SERVICE_PORT"
	ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultTokenFile     = ServiceAccountDir + "/token"
	DefaultCAFile        = ServiceAccountDir + "/ca.crt"
	DefaultNamespaceFile = ServiceAccountDir + "/namespace"
	DefaultTimeout       = 2 * time.Second
)

// Config says which pod to read and how to reach the API server. Every
// field but PodName has an in-cluster default, so that a Deployment needs
// only POD_NAME from the downward API (and a Role, see the package
// documentation).
type Config struct {
	// PodName is the pod whose deletion is read. Default empty: the module
	// is off (it says so once at start-up). [FromEnv]: POD_NAME.
	PodName string `yaml:"podName" json:"podName"`
	// Namespace is the pod's namespace. Default: POD_NAMESPACE with
	// [FromEnv], else the service account's namespace file
	// ([DefaultNamespaceFile]), read by [New].
	Namespace string `yaml:"namespace" json:"namespace"`
	// APIURL is the API server's base URL, https only. Default
	// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, read from
	// the process environment by [New].
	APIURL string `yaml:"apiURL" json:"apiURL"`
	// TokenFile holds the service account token sent as the bearer token.
	// It is read again for each request (the kubelet rotates it) and never
	// logged. Default [DefaultTokenFile].
	TokenFile string `yaml:"tokenFile" json:"tokenFile"`
	// CAFile holds the PEM certificates that the API server's certificate
	// must chain to. Default [DefaultCAFile].
	CAFile string `yaml:"caFile" json:"caFile"`
	// Timeout bounds the read at D0, files and request together. Default
	// 2s. The read never holds up the drain: the stop phase cancels it if
	// it is still under way.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// ErrConfig is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrConfig = errors.New("kubemod: invalid config")

// FromEnv reads the pod's name and namespace through lookup (pass
// [os.LookupEnv]): POD_NAME and POD_NAMESPACE. The other fields keep their
// in-cluster defaults.
func FromEnv(lookup func(string) (string, bool)) Config {
	var c Config
	c.PodName, _ = lookup(EnvPodName)
	c.Namespace, _ = lookup(EnvPodNamespace)
	return c
}

// WithDefaults returns c with every zero field set to its default, but
// Namespace and APIURL, which [New] resolves from the service account's
// files and the environment.
func (c Config) WithDefaults() Config {
	if c.TokenFile == "" {
		c.TokenFile = DefaultTokenFile
	}
	if c.CAFile == "" {
		c.CAFile = DefaultCAFile
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate resolves defaults and checks c; the error names the field and
// its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	bad.Negative("Timeout", c.Timeout)
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			bad.Addf("APIURL=%q is not an https://host[:port] URL", c.APIURL)
		}
	}
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "kubemod: "+bad.String())
	}
	return nil
}

// inClusterURL is the API server's URL from the variables the kubelet sets
// in every container; "" outside a cluster.
func inClusterURL(lookup func(string) (string, bool)) string {
	host, _ := lookup(EnvServiceHost)
	port, _ := lookup(EnvServicePort)
	if host == "" || port == "" {
		return ""
	}
	return "https://" + net.JoinHostPort(host, port)
}
