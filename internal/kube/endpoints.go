package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// EndpointTimes is what a watch of a Service's EndpointSlices saw of one
// pod's endpoint, stamped when the event reached the watcher (zero: not
// seen). Terminating and Removed are what every consumer of the slices —
// kube-proxy, ingress controllers, load balancer controllers — is told.
type EndpointTimes struct {
	Added       time.Time // first in a slice
	Ready       time.Time // first with ready=true
	Terminating time.Time // first with terminating=true
	Removed     time.Time // gone from every slice after having been in one
}

// EndpointWatch watches the EndpointSlices of one Service, from its start
// until Stop, and records per pod (targetRef.name) when its endpoint
// changed.
type EndpointWatch struct {
	api              *APIServer
	namespace, query string
	cancel           context.CancelFunc
	done             chan struct{}

	mu      sync.Mutex
	slices  map[string][]endpoint // by slice name
	pods    map[string]*EndpointTimes
	changed chan struct{} // closed and replaced at every change
	err     error         // the last failure of the watch (it retries)
}

type endpoint struct {
	Addresses  []string `json:"addresses"`
	Conditions struct {
		Ready       *bool `json:"ready"`
		Serving     *bool `json:"serving"`
		Terminating *bool `json:"terminating"`
	} `json:"conditions"`
	TargetRef *struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"targetRef"`
}

type endpointSlice struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Endpoints []endpoint `json:"endpoints"`
}

// WatchEndpoints starts watching the EndpointSlices of the Service; the
// watch runs until [EndpointWatch.Stop] or ctx ends. A watch that breaks
// is started again from a new list.
func (s *APIServer) WatchEndpoints(ctx context.Context, namespace, service string) *EndpointWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &EndpointWatch{
		api:       s,
		namespace: namespace,
		query:     "labelSelector=" + url.QueryEscape("kubernetes.io/service-name="+service),
		cancel:    cancel,
		done:      make(chan struct{}),
		slices:    map[string][]endpoint{},
		pods:      map[string]*EndpointTimes{},
		changed:   make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if err := w.watch(ctx); err != nil && ctx.Err() == nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				t := time.NewTimer(100 * time.Millisecond) // a pause before the next list
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}
	}()
	return w
}

// watch lists the slices, then watches them from the list's version until
// the stream ends.
func (w *EndpointWatch) watch(ctx context.Context) error {
	base := "/apis/discovery.k8s.io/v1/namespaces/" + url.PathEscape(w.namespace) + "/endpointslices?" + w.query
	code, body, err := w.api.Do(ctx, http.MethodGet, base, nil, "")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("list endpointslices: %d %s", code, body)
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []endpointSlice `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("list endpointslices: %w", err)
	}
	now := time.Now()
	w.mu.Lock()
	w.slices = map[string][]endpoint{}
	for _, s := range list.Items {
		w.slices[s.Metadata.Name] = s.Endpoints
	}
	w.updateLocked(now)
	w.mu.Unlock()

	resp, err := w.api.Stream(ctx, base+"&watch=true&resourceVersion="+url.QueryEscape(list.Metadata.ResourceVersion))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		now := time.Now()
		var s endpointSlice
		if err := json.Unmarshal(ev.Object, &s); err != nil {
			return fmt.Errorf("watch endpointslices: %w", err)
		}
		w.mu.Lock()
		switch ev.Type {
		case "ADDED", "MODIFIED":
			w.slices[s.Metadata.Name] = s.Endpoints
		case "DELETED":
			delete(w.slices, s.Metadata.Name)
		default: // ERROR (a version too old): list again
			w.mu.Unlock()
			return errors.New("watch endpointslices: " + string(ev.Object))
		}
		w.updateLocked(now)
		w.mu.Unlock()
	}
}

// updateLocked records the transitions the slices show now.
func (w *EndpointWatch) updateLocked(now time.Time) {
	present := map[string]bool{}
	for _, eps := range w.slices {
		for _, ep := range eps {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			name := ep.TargetRef.Name
			present[name] = true
			t := w.pods[name]
			if t == nil {
				t = &EndpointTimes{}
				w.pods[name] = t
			}
			set := func(at *time.Time, cond *bool) {
				if at.IsZero() && (cond == nil || *cond) {
					*at = now
				}
			}
			set(&t.Added, nil)
			if ep.Conditions.Ready != nil {
				set(&t.Ready, ep.Conditions.Ready)
			}
			if ep.Conditions.Terminating != nil {
				set(&t.Terminating, ep.Conditions.Terminating)
			}
		}
	}
	for name, t := range w.pods {
		if !present[name] && !t.Added.IsZero() && t.Removed.IsZero() {
			t.Removed = now
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// Pod returns what the watch saw of the pod's endpoint so far.
func (w *EndpointWatch) Pod(name string) EndpointTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.pods[name]; t != nil {
		return *t
	}
	return EndpointTimes{}
}

// Wait waits until cond holds for the pod's endpoint, or ctx ends.
func (w *EndpointWatch) Wait(ctx context.Context, pod string, cond func(EndpointTimes) bool) error {
	for {
		w.mu.Lock()
		var t EndpointTimes
		if p := w.pods[pod]; p != nil {
			t = *p
		}
		changed, werr := w.changed, w.err
		w.mu.Unlock()
		if cond(t) {
			return nil
		}
		select {
		case <-ctx.Done():
			if werr != nil {
				return fmt.Errorf("%w (the watch: %v)", ctx.Err(), werr)
			}
			return ctx.Err()
		case <-changed:
		case <-w.done:
			return errors.New("endpoint watch stopped")
		}
	}
}

// Stop ends the watch and waits for it.
func (w *EndpointWatch) Stop() {
	w.cancel()
	<-w.done
}
