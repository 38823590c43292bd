// Package jsclient holds the browser client, ssekit-client.js, so that the
// hub can serve the very file that is published to npm (at
// /ssekit-client.js): one ES module, no build step.
package jsclient

import _ "embed"

// Module is the source of ssekit-client.js.
//
//go:embed ssekit-client.js
var Module []byte

// Name is the file's name, and the path the hub serves it under.
const Name = "ssekit-client.js"
