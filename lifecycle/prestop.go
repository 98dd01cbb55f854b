package lifecycle

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// PrestopHeader carries the preStop token.
const PrestopHeader = "X-Prestop-Token"

// PrestopResponse is the JSON body of a preStop call.
type PrestopResponse struct {
	State        string    `json:"state"`
	Reason       string    `json:"reason"`
	D0           time.Time `json:"d0"`
	DrainEndedBy string    `json:"drainEndedBy"`
	Waited       string    `json:"waited"`
}

// PrestopHandler is the kubelet's preStop hook (GET or POST; mount it on the
// admin server only). It begins the drain and answers once the drain phase
// has ended, so the kubelet's SIGTERM comes after the drain and never adds a
// second delay. It is idempotent: a call after the drain answers at once.
// If the caller goes away first, the drain goes on and nothing is written.
//
// With [Config.PrestopToken] set, a call without the token in header
// X-Prestop-Token gets 401 and changes nothing; the token is compared in
// constant time.
func (c *Coordinator) PrestopHandler() http.Handler {
	token := []byte(c.plan.PrestopToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if len(token) > 0 && subtle.ConstantTimeCompare([]byte(r.Header.Get(PrestopHeader)), token) != 1 {
			c.log.Warn("prestop refused: bad or missing token", zap.String("remote", r.RemoteAddr))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		start := c.clock.Now()
		if c.BeginDrain(ReasonPrestop) {
			c.log.Info("prestop: draining", zap.String("remote", r.RemoteAddr))
		}
		select {
		case <-c.drainDone:
		case <-r.Context().Done():
			c.log.Info("prestop caller left before the drain ended")
			return
		}
		c.mu.Lock()
		resp := PrestopResponse{
			State:        c.State().String(),
			Reason:       c.reason,
			D0:           c.d0,
			DrainEndedBy: c.drainEndedBy,
			Waited:       c.clock.Since(start).Round(time.Millisecond).String(),
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}
