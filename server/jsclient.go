package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	jsclient "github.com/ssekit/sse/clients/js"
)

// jsClientPath is where the hub serves the browser client, so that a page
// can import it straight from the hub.
const jsClientPath = "/" + jsclient.Name

// jsClientETag identifies this build's copy of the module.
var jsClientETag = func() string {
	sum := sha256.Sum256(jsclient.Module)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// jsClient serves GET and HEAD /ssekit-client.js: the browser client as a
// JavaScript module. It is cached for an hour and revalidated by ETag (a
// new hub version serves a new file). CORS headers, for pages of the
// origins --cors-origins allows, are set by ServeHTTP as for every answer.
func (s *Server) jsClient(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600, must-revalidate")
	h.Set("ETag", jsClientETag)
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match with 304 from the ETag.
	http.ServeContent(w, r, jsclient.Name, time.Time{}, bytes.NewReader(jsclient.Module))
}
