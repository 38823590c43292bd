package debugger

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssekit/sse/ssetest"
)

// TestServerGuards: the debugger answers only loopback Host names and the
// allowed ones (DNS rebinding), refuses API calls from other origins even
// with the token, cannot be framed, and trades a one-time code for the
// token once.
func TestServerGuards(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		s := New(Config{Token: "s3cret", AllowedHosts: []string{"debug.lan"}})
		t.Cleanup(s.Close)
		srv := ssetest.NewServer(t, proto, s)
		c := srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		port := srv.Listener.Addr().(interface{ String() string }).String()
		port = port[strings.LastIndex(port, ":"):]
		spec := `{"method":"GET","url":"http://127.0.0.1:1/"}`

		tests := []struct {
			name, method, path, host string
			header                   map[string]string
			want                     int
		}{
			{"page on 127.0.0.1", "GET", "/", "", nil, 200},
			{"page on localhost", "GET", "/", "localhost" + port, nil, 200},
			{"page on [::1]", "GET", "/", "[::1]" + port, nil, 200},
			{"page on an allowed name", "GET", "/", "debug.lan" + port, nil, 200},
			{"page on a rebound name", "GET", "/", "evil.example" + port, nil, 403},
			{"API on a rebound name, with the token", "POST", "/api/sessions", "attacker.test", map[string]string{TokenHeader: "s3cret"}, 403},
			{"name that only ends like localhost", "GET", "/", "notlocalhost" + port, nil, 403},
			{"cross-origin POST with the token", "POST", "/api/sessions", "", map[string]string{TokenHeader: "s3cret", "Origin": "http://evil.example"}, 403},
			{"null origin", "POST", "/api/sessions", "", map[string]string{TokenHeader: "s3cret", "Origin": "null"}, 403},
			{"cross-site fetch metadata", "POST", "/api/sessions", "", map[string]string{TokenHeader: "s3cret", "Sec-Fetch-Site": "cross-site"}, 403},
			{"same-origin POST", "POST", "/api/sessions", "", map[string]string{TokenHeader: "s3cret", "Origin": "ORIGIN", "Sec-Fetch-Site": "same-origin"}, 200},
			{"no origin (curl)", "POST", "/api/sessions", "", map[string]string{TokenHeader: "s3cret"}, 200},
			{"same origin without the token", "POST", "/api/sessions", "", map[string]string{"Origin": "ORIGIN"}, 401},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(spec))
				if tt.host != "" {
					req.Host = tt.host
				}
				for k, v := range tt.header {
					if v == "ORIGIN" {
						v = srv.URL
					}
					req.Header.Set(k, v)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("%s %s (Host %q): %s; want %d", tt.method, tt.path, tt.host, resp.Status, tt.want)
				}
				if got := resp.Header.Get("Content-Security-Policy"); got != "frame-ancestors 'none'" {
					t.Errorf("Content-Security-Policy %q; want frame-ancestors 'none'", got)
				}
				if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
					t.Errorf("X-Frame-Options %q; want DENY", got)
				}
			})
		}

		t.Run("one-time code", func(t *testing.T) {
			login := s.LoginURL(srv.URL)
			if strings.Contains(login, "s3cret") {
				t.Fatalf("login URL %q holds the token", login)
			}
			for i, want := range []int{http.StatusSeeOther, http.StatusOK} { // the second use finds the plain page
				resp, err := c.Get(login)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("use %d: %s; want %d", i+1, resp.Status, want)
				}
				if want == http.StatusSeeOther {
					loc, _ := url.Parse(resp.Header.Get("Location"))
					if loc.Fragment != "token=s3cret" || loc.RawQuery != "" {
						t.Errorf("Location %q; want the token in the fragment only", resp.Header.Get("Location"))
					}
				}
			}
			resp, err := c.Get(srv.URL + "/?code=guessed")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("a guessed code: %s; want the plain page", resp.Status)
			}
		})
	})
}
