package probemod

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

	"github.com/drainfx/drainfx/lifecycle"
)

// PrestopHeader carries the preStop token ([lifecycle.Config.PrestopToken]).
const PrestopHeader = "X-Prestop-Token"

// PrestopResponse is the JSON body of a preStop call's answer.
type PrestopResponse struct {
	State        string             `json:"state"`
	Reason       lifecycle.Reason   `json:"reason"`
	D0           time.Time          `json:"d0"`
	DrainEndedBy lifecycle.DrainEnd `json:"drainEndedBy"`
	Waited       string             `json:"waited"`
}

// prestopRefusedLogEvery is how often, at most, the preStop handler logs a
// refused call after the first one.
const prestopRefusedLogEvery = 10 * time.Second

// prestop is the kubelet's preStop hook, served at [PathPrestop] on the
// admin server only (GET or POST). It begins the drain
// ([lifecycle.ReasonPrestop]) and answers once the drain phase has ended,
// so the kubelet's SIGTERM comes after the drain and never adds a second
// delay. It is idempotent: a call after the drain answers at once. If the
// caller goes away first, the drain goes on and nothing is written.
//
// With a token ([lifecycle.Config.PrestopToken]), a call without it in
// header X-Prestop-Token gets 401 and changes nothing. The token is
// compared in constant time, and its length is not told either: both
// sides are hashed (SHA-256) first, so the comparison always runs over 32
// bytes. Without a token, anyone who reaches the handler can drain the pod
// (and, with no SIGTERM after the call, end it: [lifecycle.ReasonNoStop]),
// so building the handler then logs a WARN naming PRESTOP_TOKEN. Refused
// calls are counted ([Probes.PrestopRefused]) and logged at warn, the
// first one and then at most one line every 10 s, with the number of
// refusals not logged since the last line ("suppressed"): a caller that
// retries, or a scan, does not flood the log.
type prestop struct {
	c        *lifecycle.Coordinator
	log      *zap.Logger
	hasToken bool
	token    [sha256.Size]byte

	refused atomic.Int64
	mu      sync.Mutex // guards lastLog and suppressed
	// lastLog is when the last refusal was logged (zero: none yet);
	// suppressed counts the refusals since then that were not.
	lastLog    time.Time
	suppressed int64
}

func newPrestop(c *lifecycle.Coordinator, log *zap.Logger) *prestop {
	token := c.Plan().PrestopToken
	h := &prestop{c: c, log: log, hasToken: token != "", token: sha256.Sum256([]byte(token))}
	if !h.hasToken {
		log.Warn("prestop has no token (PrestopToken, env PRESTOP_TOKEN, is empty)",
			zap.String("risk", "anyone who reaches the admin port can drain this pod, and end it if no SIGTERM follows"),
			zap.String("fix", "set PRESTOP_TOKEN and send it in header "+PrestopHeader))
	}
	return h
}

func (h *prestop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.hasToken && !sameToken(h.token, r.Header.Get(PrestopHeader)) {
		if logIt, suppressed := h.noteRefused(h.c.Clock().Now()); logIt {
			h.log.Warn("prestop refused: bad or missing token", zap.String("remote", r.RemoteAddr),
				zap.Int64("suppressed", suppressed), zap.Int64("total", h.refused.Load()))
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	start := h.c.Clock().Now()
	if h.c.BeginDrain(lifecycle.ReasonPrestop) {
		h.log.Info("prestop: draining", zap.String("remote", r.RemoteAddr))
	}
	select {
	case <-h.c.Reached(lifecycle.StateDrained):
	case <-r.Context().Done():
		h.log.Info("prestop caller left before the drain ended")
		return
	}
	rep := h.c.Telemetry().Report()
	resp := PrestopResponse{
		State:        rep.State.String(),
		Reason:       rep.Reason,
		D0:           rep.D0,
		DrainEndedBy: rep.DrainEndedBy,
		Waited:       h.c.Clock().Now().Sub(start).Round(time.Millisecond).String(),
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// Refused counts the calls refused for a bad or missing token.
func (h *prestop) Refused() int64 { return h.refused.Load() }

// noteRefused counts one refusal at now and says whether to log it, and
// how many refusals went unlogged before it.
func (h *prestop) noteRefused(now time.Time) (logIt bool, suppressed int64) {
	h.refused.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastLog.IsZero() && now.Sub(h.lastLog) < prestopRefusedLogEvery {
		h.suppressed++
		return false, 0
	}
	h.lastLog = now
	suppressed, h.suppressed = h.suppressed, 0
	return true, suppressed
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

// CallPrestop is the client side of the preStop handler, for a preStop
// hook run as a command (a Kubernetes exec hook, which inherits the
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
