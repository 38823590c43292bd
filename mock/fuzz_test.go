package mock_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssekit/sse/mock"
)

// FuzzParse: no script makes Parse panic, and a script that parses is
// served without a panic but the deliberate abort of drop and the limits.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/faults/*.mock")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte("route * /a*\nattempt 2-\nresume\nrepeat 3\n> id: {n}\n>\nend\n"))
	f.Fuzz(func(t *testing.T, script []byte) {
		s, err := mock.Parse("f.mock", script)
		if err != nil {
			return
		}
		srv := mock.New(s, mock.Options{MaxBytes: 1 << 16, MaxDuration: 10 * time.Millisecond})
		req := httptest.NewRequest("GET", "/a", nil)
		req.Header.Set("Last-Event-ID", "1")
		func() {
			defer func() {
				if r := recover(); r != nil && r != http.ErrAbortHandler {
					t.Fatalf("ServeHTTP panicked: %v", r)
				}
			}()
			srv.ServeHTTP(httptest.NewRecorder(), req)
		}()
	})
}
