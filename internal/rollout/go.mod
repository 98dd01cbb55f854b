module github.com/drainfx/drainfx/internal/rollout

go 1.26.0

require (
	github.com/drainfx/drainfx v0.0.0
	github.com/drainfx/drainfx/examples v0.0.0
	github.com/gorilla/websocket v1.5.3
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/drainfx/drainfx => ../..
	github.com/drainfx/drainfx/cmd/drainfx => ../../cmd/drainfx
	github.com/drainfx/drainfx/examples => ../../examples
	github.com/drainfx/drainfx/httpmod/echoroute => ../../httpmod/echoroute
	github.com/drainfx/drainfx/modules/grpcmod => ../../modules/grpcmod
	github.com/drainfx/drainfx/modules/metricsmod => ../../modules/metricsmod
	github.com/drainfx/drainfx/modules/sqlmod => ../../modules/sqlmod
	github.com/drainfx/drainfx/modules/workermod => ../../modules/workermod
)
