package lifecycle

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// PrestopHeader carries the preStop token.
const PrestopHeader = "X-Prestop-Token"

// PrestopResponse is the JSON body of a preStop call.
type PrestopResponse struct {
	State        string    `json:"state"`
	Reason       Reason    `json:"reason"`
	D0           time.Time `json:"d0"`
	DrainEndedBy DrainEnd  `json:"drainEndedBy"`
	Waited       string    `json:"waited"`
}

// PrestopHandler is the kubelet's preStop hook (GET or POST; mount it on the
// admin server only). It begins the drain and answers once the drain phase
// has ended, so the kubelet's SIGTERM comes after the drain and never adds a
// second delay. It is idempotent: a call after the drain answers at once.
// If the caller goes away first, the drain goes on and nothing is written.
//
// With [Config.PrestopToken] set, a call without the token in header
// X-Prestop-Token gets 401 and changes nothing. The token is compared in
// constant time, and its length is not told either: both sides are hashed
// (SHA-256) first, so the comparison always runs over 32 bytes. Without a
// token, anyone who reaches the handler can drain the pod (and, with no
// SIGTERM after the call, end it: [ReasonNoStop]), so the first call of
// PrestopHandler then logs a WARN naming PrestopToken and PRESTOP_TOKEN.
// Refused calls are counted ([Snapshot.PrestopRefused]) and logged at warn, the first one and then at most one line every
// [prestopRefusedLogEvery], with the number of refusals not logged since
// the last line ("suppressed"): a caller that retries, or a scan, does not
// flood the log.
func (c *Coordinator) PrestopHandler() http.Handler {
	hasToken := c.plan.PrestopToken != ""
	token := sha256.Sum256([]byte(c.plan.PrestopToken))
	if !hasToken && !c.tel.refused.warnedNoToken.Swap(true) {
		c.log.Warn("prestop has no token (PrestopToken, env PRESTOP_TOKEN, is empty)",
			zap.String("risk", "anyone who reaches the admin port can drain this pod, and end it if no SIGTERM follows"),
			zap.String("fix", "set PRESTOP_TOKEN and send it in header "+PrestopHeader))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if hasToken && !sameToken(token, r.Header.Get(PrestopHeader)) {
			if logIt, suppressed := c.tel.refused.note(c.clock.Now()); logIt {
				c.log.Warn("prestop refused: bad or missing token", zap.String("remote", r.RemoteAddr),
					zap.Int64("suppressed", suppressed), zap.Int64("total", c.tel.refused.total.Load()))
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		start := c.clock.Now()
		c.prestopCalled.Store(true) // before the drain begins: a signal after it knows
		if c.BeginDrain(ReasonPrestop) {
			c.log.Info("prestop: draining", zap.String("remote", r.RemoteAddr))
		}
		select {
		case <-c.reached[StateDrained]:
		case <-r.Context().Done():
			c.log.Info("prestop caller left before the drain ended")
			return
		}
		snap := c.tel.Snapshot()
		resp := PrestopResponse{
			State:        snap.State.String(),
			Reason:       snap.Reason,
			D0:           snap.D0,
			DrainEndedBy: snap.DrainEndedBy,
			Waited:       c.clock.Now().Sub(start).Round(time.Millisecond).String(),
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// sameToken reports in constant time whether got hashes to want, a SHA-256
// digest. Hashing first makes the comparison run over 32 bytes whatever
// the lengths ([subtle.ConstantTimeCompare] returns at once for slices of
// unequal length), so its time tells nothing of the token's length.
func sameToken(want [sha256.Size]byte, got string) bool {
	g := sha256.Sum256([]byte(got))
	return constantTimeCompare(g[:], want[:]) == 1
}

// constantTimeCompare is [subtle.ConstantTimeCompare]; a variable so that a
// test can see what is compared.
var constantTimeCompare = subtle.ConstantTimeCompare

// prestopRefusedLogEvery is how often, at most, [Coordinator.PrestopHandler]
// logs a refused call after the first one.
const prestopRefusedLogEvery = 10 * time.Second

// prestopRefusals counts refused preStop calls and bounds their log lines.
// The zero value is ready.
type prestopRefusals struct {
	total atomic.Int64
	// warnedNoToken is set once the handler, built with no token, has
	// said so.
	warnedNoToken atomic.Bool

	mu         sync.Mutex
	lastLog    time.Time // when the last line was logged; zero: none yet
	suppressed int64     // refusals since then that were not logged
}

// note counts one refusal at now and says whether to log it, and how many
// refusals went unlogged before it.
func (r *prestopRefusals) note(now time.Time) (logIt bool, suppressed int64) {
	r.total.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lastLog.IsZero() && now.Sub(r.lastLog) < prestopRefusedLogEvery {
		r.suppressed++
		return false, 0
	}
	r.lastLog = now
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}

// CallPrestop is the client side of [Coordinator.PrestopHandler], for a
// preStop hook run as a command (a Kubernetes exec hook, which inherits the
// container's environment, so the token can come from a Secret instead of
// being written into the pod spec as httpGet headers must be). It asks the
// handler at url to drain, with token in X-Prestop-Token if not empty, and
// waits for its answer: the end of the drain, or ctx.
func CallPrestop(ctx context.Context, url, token string) (PrestopResponse, error) {
	var pr PrestopResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return pr, fmt.Errorf("prestop %s: %w", url, err)
	}
	if token != "" {
		req.Header.Set(PrestopHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pr, fmt.Errorf("prestop: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return pr, fmt.Errorf("prestop %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		return pr, fmt.Errorf("prestop %s: answer: %w", url, err)
	}
	return pr, nil
}
