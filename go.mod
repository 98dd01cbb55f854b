module github.com/drainfx/drainfx

go 1.26

require (
	github.com/jonboulle/clockwork v0.5.0
	go.uber.org/fx v1.24.0
	go.uber.org/zap v1.28.0
)

require (
	github.com/stretchr/testify v1.11.1 // indirect
	go.uber.org/dig v1.19.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
)
