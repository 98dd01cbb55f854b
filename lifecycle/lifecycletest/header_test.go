package lifecycletest_test

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
)

// A route that wants a Content-Type: the client sends the headers given
// with lifecycletest.Header on every request, and nothing is lost.
func TestHTTPHeader(t *testing.T) {
	t.Parallel()
	var a webApp
	app := fxtest.New(t, webOptions(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}), a.populate())
	ctx, k := startKit(t, app, a.Coord)
	body := []byte(`{"item":"book"}`)
	if err := k.HTTP(http.MethodPost, a.url("/orders"), body); err == nil || !strings.Contains(err.Error(), "415") {
		t.Fatalf("without the header: %v, want 415", err)
	}
	if err := k.HTTP(http.MethodPost, a.url("/orders"), body, lifecycletest.Header("Content-Type", "application/json")); err != nil {
		t.Fatal(err)
	}
	res := k.Terminate(ctx, lifecycletest.Signal())
	if err := res.Err(); err != nil {
		t.Fatalf("%v\n%v", err, res)
	}
}
