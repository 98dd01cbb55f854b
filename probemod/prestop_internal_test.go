package probemod

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// The token's length is not told by the comparison's time:
// subtle.ConstantTimeCompare returns at once for inputs of unequal length,
// so the handler compares SHA-256 digests, 32 bytes each, whatever the
// token and the header hold. Not parallel: it swaps the package's compare
// for one that records its inputs.
func TestPrestopComparesDigestsOnly(t *testing.T) {
	var lens [][2]int
	constantTimeCompare = func(x, y []byte) int {
		lens = append(lens, [2]int{len(x), len(y)})
		return subtle.ConstantTimeCompare(x, y)
	}
	t.Cleanup(func() { constantTimeCompare = subtle.ConstantTimeCompare })

	for _, token := range []string{"k", "s3cret-token", strings.Repeat("t", 100)} {
		c, err := lifecycle.New(lifecycle.Config{GracePeriod: 5 * time.Second, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, PrestopToken: token})
		if err != nil {
			t.Fatal(err)
		}
		c.MarkStarted()
		h := newPrestop(c, zap.NewNop())
		call := func(header string) int {
			req := httptest.NewRequest(http.MethodPost, "/prestop", nil)
			req.Header.Set(PrestopHeader, header)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w.Code
		}
		for _, wrong := range []string{"", "k" + token, token[:len(token)-1], token[:len(token)-1] + "x", strings.Repeat("g", 1000)} {
			if code := call(wrong); code != http.StatusUnauthorized {
				t.Errorf("token of %d bytes, header of %d: %d, want 401", len(token), len(wrong), code)
			}
		}
		if code := call(token); code != http.StatusOK {
			t.Errorf("the right token of %d bytes: %d, want 200", len(token), code)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ctx)
		select {
		case <-c.Reached(lifecycle.StateStopped):
		case <-time.After(5 * time.Second):
			t.Fatal("no report after an abandoned stop")
		}
	}
	if len(lens) != 3*6 {
		t.Fatalf("%d comparisons, want %d", len(lens), 3*6)
	}
	for i, l := range lens {
		if l != [2]int{sha256.Size, sha256.Size} {
			t.Errorf("comparison %d over %d and %d bytes, want %d and %d", i, l[0], l[1], sha256.Size, sha256.Size)
		}
	}
}
