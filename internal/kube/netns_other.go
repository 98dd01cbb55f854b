//go:build !linux

package kube

import (
	"fmt"
	"runtime"
)

func (n Netns) do(func() error) error {
	return fmt.Errorf("%w: network namespaces need Linux, not %s", ErrCannotRun, runtime.GOOS)
}
