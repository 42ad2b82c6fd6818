// Package codeshape holds checks on the shape of the code itself, run as
// tests so that `go test ./...` keeps what the redesign made true (issue
// 12): no production function longer than MaxFuncLines.
package codeshape

// MaxFuncLines is the most body lines a production function may have: a
// longer one is a list of steps that want names.
const MaxFuncLines = 80
