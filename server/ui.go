package server

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var uiFiles embed.FS

// UI returns the hub's page: subscribe to topics and publish updates by
// hand from a browser. It is served at / unless Config.UI says otherwise.
func UI() http.Handler {
	sub, _ := fs.Sub(uiFiles, "ui")
	return http.FileServerFS(sub)
}
