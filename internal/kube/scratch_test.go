package kube_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

func TestScratch(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	ctx := context.Background()
	d, err := kube.StartDataPlane(ctx, kube.DataPlaneOptions{Dir: "/tmp/dp/scratch"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.WriteFile("/tmp/dp/scratch.env", []byte("NODE="+string(d.Net.Node)+"\nCLIENT="+string(d.Net.Client)+"\n"), 0o644)
	for i := 0; i < 600; i++ {
		if _, err := os.Stat("/tmp/dp/scratch.stop"); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}
