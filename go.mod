module github.com/drainfx/drainfx

go 1.26.0

require (
	github.com/KimMachineGun/automemlimit v1.0.2
	github.com/gorilla/websocket v1.5.3
	github.com/jonboulle/clockwork v0.5.0
	go.uber.org/fx v1.24.0
	go.uber.org/goleak v1.3.0
	go.uber.org/multierr v1.11.0
	go.uber.org/zap v1.28.0
)

require (
	github.com/pbnjay/memory v0.0.0-20210728143218-7b4eea64cf58 // indirect
	go.uber.org/dig v1.19.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
