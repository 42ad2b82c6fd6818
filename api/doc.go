// Package api is faas-criu's contract, each part defined once: the wire
// types of its own routes, the label and annotation names functions carry,
// the states and sleep strategies, the function key, the kinds of error and
// the status codes they map to, and the checks on names and URLs. It imports
// nothing of Docker or CRIU, so the HTTP layer, the client and the provider
// can all depend on it.
package api
