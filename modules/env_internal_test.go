package modules

import (
	"testing"

	"github.com/drainfx/drainfx/lifecycle"
)

// The environment's bound on the grace period is lifecycle's: the longest
// it accepts passes Validate, and a nanosecond more fails there too.
func TestEnvGraceBound(t *testing.T) {
	t.Parallel()
	if err := (lifecycle.Config{GracePeriod: maxGracePeriod}).Validate(); err != nil {
		t.Errorf("GracePeriod=%v: %v, want accepted", maxGracePeriod, err)
	}
	if err := (lifecycle.Config{GracePeriod: maxGracePeriod + 1}).Validate(); err == nil {
		t.Errorf("GracePeriod=%v accepted, want the bound", maxGracePeriod+1)
	}
}
