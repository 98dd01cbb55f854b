// Package echopb is the generated code of echo.proto, the gRPC contract of
// examples/grpc (service drainfx.example.v1.Echo: a unary Echo and a
// server-streaming Ticks), which "drainfx rollout -grpc" also speaks.
//
// The code is checked in. To regenerate it after a change to echo.proto —
// no protoc needed, only Go and the module proxy:
//
//	go generate ./examples/grpc/echopb
//
// which runs buf (it compiles the .proto itself) with protoc-gen-go and
// protoc-gen-go-grpc, all through go run at pinned versions (buf.gen.yaml).
package echopb

//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate
