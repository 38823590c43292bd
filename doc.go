// Package sse reads and writes Server-Sent Events (text/event-stream)
// exactly as the WHATWG HTML standard says, serves them from net/http, and
// consumes them with the browser's EventSource semantics.
//
// It imports only the standard library.
package sse
