package debugger

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssekit/sse"
)

func TestRequestSpecNewRequest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte(`{"q":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		spec              RequestSpec
		body              string // -d, when not empty
		wantMethod        string
		wantType, wantLEI string
		wantHost          string
	}{
		{name: "GET", spec: RequestSpec{}, wantMethod: "GET"},
		{name: "text body", spec: RequestSpec{}, body: "q=1", wantMethod: "POST", wantType: DefaultBodyType},
		{name: "empty body as curl -d ''", spec: RequestSpec{}, body: "''", wantMethod: "POST", wantType: DefaultBodyType},
		{name: "JSON from a file", spec: RequestSpec{Method: "PUT"}, body: "@" + file, wantMethod: "PUT", wantType: "application/json"},
		{name: "explicit type, host, resume", spec: RequestSpec{Headers: []Header{{"Content-Type", "text/csv"}, {"Host", "example.test"}}, LastEventID: "7"},
			body: "a,b", wantMethod: "POST", wantType: "text/csv", wantLEI: "7", wantHost: "example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.URL = "http://127.0.0.1:1/events"
			if tt.body != "" {
				arg := tt.body
				if arg == "''" {
					arg = ""
				}
				if err := spec.SetBody(arg, nil); err != nil {
					t.Fatal(err)
				}
			}
			req, err := spec.NewRequest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != tt.wantMethod || req.Header.Get("Content-Type") != tt.wantType || req.Header.Get("Last-Event-ID") != tt.wantLEI {
				t.Errorf("got %s, Content-Type %q, Last-Event-ID %q; want %s, %q, %q", req.Method, req.Header.Get("Content-Type"), req.Header.Get("Last-Event-ID"), tt.wantMethod, tt.wantType, tt.wantLEI)
			}
			if tt.wantHost != "" && req.Host != tt.wantHost {
				t.Errorf("Host %q; want %q", req.Host, tt.wantHost)
			}
			if req.GetBody != nil {
				b, _ := req.GetBody()
				got, _ := io.ReadAll(b)
				if want := spec.Body; string(got) != want {
					t.Errorf("body %q; want %q", got, want)
				}
			}
			if strings.HasPrefix(tt.body, "@") && spec.Redacted().Body != "" {
				t.Errorf("a body read from a file is in the redacted spec")
			}
		})
	}
	if _, err := (&RequestSpec{URL: "ftp://x/"}).NewRequest(context.Background()); !errors.Is(err, ErrBadURL) {
		t.Errorf("ftp URL: %v; want ErrBadURL", err)
	}
	if _, err := ParseHeader("NoColon"); !errors.Is(err, ErrBadHeader) {
		t.Errorf("ParseHeader: %v; want ErrBadHeader", err)
	}
}

// TestConnectFirstFailure: a first connection that fails ends the stream
// with a *ConnectError instead of retrying forever.
func TestConnectFirstFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	spec := RequestSpec{URL: "http://" + addr + "/"}
	req, err := spec.NewRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	es := Connect(&sse.Client{}, req)
	defer es.Close()
	_, err = es.Next()
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Next: %v; want a *ConnectError", err)
	}
	if CleanEnd(err) || !strings.HasPrefix(EndReason(err), "connection failed: ") {
		t.Errorf("EndReason %q, clean %v; want a connection failure", EndReason(err), CleanEnd(err))
	}
}
