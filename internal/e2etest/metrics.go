package e2etest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Gauge reads the unlabelled metric name from base/metrics with c, or
// returns -1 when it cannot.
func Gauge(c *http.Client, base, name string) int {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		var n float64
		if _, err := fmt.Sscanf(line, name+" %g", &n); err == nil {
			return int(n)
		}
	}
	return -1
}
