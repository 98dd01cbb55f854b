// Package charttest checks the example service's Helm chart and its
// Prometheus Operator objects: the chart rendered with Helm's Go library and
// passed through drainfx check's rules, the objects decoded strictly with
// the operator's types, the alert rules through promtool.
//
// It is a module of its own, so that Helm and the operator's types stay out
// of the go.mod of drainfx — out of every service that uses the library. Run
// its tests from this directory: go test ./...
package charttest
