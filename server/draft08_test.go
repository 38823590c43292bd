package server_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/ssetest"
)

// subscribeRaw opens a subscription with a raw query string and, when
// method is QUERY, a form body; it returns the response (its body is the
// stream when the status is 200).
func (th *testHub) subscribeRaw(method, rawQuery, body string, header ...string) *http.Response {
	th.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, th.url+"?"+rawQuery, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := th.head(req)
	if err != nil {
		th.t.Fatal(err)
	}
	th.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stream reads an open subscription's events.
func (th *testHub) stream(resp *http.Response) *subscription {
	th.t.Helper()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		th.t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
	s := &subscription{t: th.t, resp: resp, events: make(chan sse.Event, 1024), done: make(chan error, 1)}
	go func() {
		for ev, err := range sse.NewDecoder(resp.Body).Events() {
			if err != nil {
				s.done <- err
				return
			}
			s.events <- ev
		}
		s.done <- io.EOF
	}()
	return s
}

// TestDraft08Matchers subscribes with every draft-08 matcher parameter
// (and topic= beside them), by GET and by QUERY, and checks which updates
// each subscriber receives.
func TestDraft08Matchers(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		tests := []struct {
			name        string
			method      string
			query, body string
			want        []string // data of the updates received, in order
		}{
			{"Exact", "GET", "match=https://example.com/books/1", "", []string{"1"}},
			{"ExactSpelledOut", "GET", "match_exact=https://example.com/books/1", "", []string{"1"}},
			{"ExactIsNotATemplate", "GET", "match_exact=" + url.QueryEscape("https://example.com/books/{id}"), "", []string{"3"}},
			{"URLPattern", "GET", "match_urlpattern=" + url.QueryEscape("https://example.com/books/:id"), "", []string{"1", "2", "3"}},
			{"URLPatternRelative", "GET", "match_urlpattern=" + url.QueryEscape("/books/:id"), "", []string{"4"}},
			{"WildcardUnderURLPattern", "GET", "match_urlpattern=*", "", []string{"1", "2", "3", "4", "5", "6"}},
			{"WildcardUnderMatch", "GET", "match=*", "", []string{"1", "2", "3", "4", "5", "6"}},
			{"LegacyTemplateBesideMatch", "GET", "topic=" + url.QueryEscape("https://example.com/books/{id}") + "&match=a;b", "", []string{"1", "2", "3", "5"}},
			{"SemicolonIsData", "GET", "match=a;b", "", []string{"5"}},
			{"PlusIsSpace", "GET", "match=a+b", "", nil},
			{"QueryBodyOnly", "QUERY", "", "match=https%3A%2F%2Fexample.com%2Fbooks%2F2", []string{"2"}},
			{"QueryUnion", "QUERY", "match=a;b", "match=https%3A%2F%2Fexample.com%2Fbooks%2F2&match_urlpattern=%2Fbooks%2F%3Aid", []string{"2", "4", "5"}},
			{"DuplicatesOnce", "GET", "match=https://example.com/books/1&match_exact=https://example.com/books/1&topic=https://example.com/books/1", "", []string{"1"}},
		}
		subs := make([]*subscription, len(tests))
		for i, tt := range tests {
			subs[i] = th.stream(th.subscribeRaw(tt.method, tt.query, tt.body))
		}
		th.mustPublish("1", "https://example.com/books/1")
		th.mustPublish("2", "https://example.com/books/2")
		th.mustPublish("3", "https://example.com/books/{id}")
		th.mustPublish("4", "/books/3")
		th.mustPublish("5", "a;b")
		th.mustPublish("6", "https://example.com/books/1/reviews")
		th.mustPublish("end", "a b", "https://example.com/books/1", "https://example.com/books/{id}", "/books/3", "a;b", "https://example.com/books/2")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				for { // every subscriber gets "end"
					d := subs[i].nextData()
					if d == "end" {
						break
					}
					got = append(got, d)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("received %q; want %q", got, tt.want)
				}
			})
		}
	})
}
