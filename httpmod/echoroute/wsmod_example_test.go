package echoroute_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// wsmod's session handlers on echo mount through echo.WrapHandler. echo's
// path parameters are echo's: a route that needs one copies it into the
// request, where the session handler finds it with [wsmod.Request].
func Example_wsmod() {
	c, _ := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	r, _ := wsmod.New(wsmod.Config{}, c)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/events", echo.WrapHandler(r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
		<-ctx.Done()
		return nil
	})))
	welcome := r.WebSocket(func(ctx context.Context, conn wsmod.Conn) error {
		room := wsmod.Request(ctx).PathValue("room")
		return conn.WriteMessage(wsmod.TextMessage, []byte("welcome to "+room))
	})
	e.GET("/rooms/:room", func(ec echo.Context) error {
		ec.Request().SetPathValue("room", ec.Param("room"))
		welcome.ServeHTTP(ec.Response(), ec.Request())
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	defer c.Stop(context.Background()) // before the server's Close: the stop phase ends the sessions

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/rooms/lobby", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_, p, _ := conn.ReadMessage()
	fmt.Printf("%s\n", p)
	var ce *websocket.CloseError
	if _, _, err := conn.ReadMessage(); errors.As(err, &ce) { // replies to the close frame
		fmt.Println("close", ce.Code)
	}
	// Output:
	// welcome to lobby
	// close 1000
}
