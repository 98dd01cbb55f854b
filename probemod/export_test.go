package probemod

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// NewPrestopHandler is the admin server's preStop handler alone, for the
// tests of package probemod_test.
func NewPrestopHandler(c *lifecycle.Coordinator, log *zap.Logger) interface {
	http.Handler
	Refused() int64
} {
	return newPrestop(c, log)
}
