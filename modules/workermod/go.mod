module github.com/drainfx/drainfx/modules/workermod

go 1.26.0

require (
	github.com/drainfx/drainfx v0.0.0
	github.com/drainfx/drainfx/httpmod/echoroute v0.0.0
	github.com/drainfx/drainfx/modules/grpcmod v0.0.0
	github.com/drainfx/drainfx/modules/sqlmod v0.0.0
	github.com/labstack/echo/v4 v4.16.0
	go.uber.org/fx v1.24.0
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
	google.golang.org/grpc v1.85.0
	modernc.org/sqlite v1.62.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/labstack/gommon v0.5.0 // indirect
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	go.uber.org/dig v1.19.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)

replace (
	github.com/drainfx/drainfx => ../..
	github.com/drainfx/drainfx/httpmod/echoroute => ../../httpmod/echoroute
	github.com/drainfx/drainfx/modules/grpcmod => ../grpcmod
	github.com/drainfx/drainfx/modules/sqlmod => ../sqlmod
)
