package e2etest

import (
	"net/http"
	"testing"
)

// NewH2CClient returns a client that speaks HTTP/2 over cleartext TCP with
// prior knowledge, and nothing else, so a hub that only spoke HTTP/1.1
// would fail the test. Its connections are closed when the test ends.
func NewH2CClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
