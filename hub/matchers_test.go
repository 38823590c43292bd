package hub

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// suffixMatcher stands for a matcher built outside the hub (a URL Pattern).
type suffixMatcher string

func (m suffixMatcher) Match(topic string) bool { return strings.HasSuffix(topic, string(m)) }
func (m suffixMatcher) String() string          { return string(m) }

// TestCallerMatchers checks SubscribeRequest.Matchers: an exact selector
// that looks like a template matches only itself, an outside matcher is
// indexed and shared by key, and both mix with topic= selectors.
func TestCallerMatchers(t *testing.T) {
	h := newHub(t, Config{})
	tests := []struct {
		name      string
		selectors []string
		matchers  []*Selector
		want      []string
	}{
		{"ExactLooksLikeTemplate", nil, []*Selector{ExactSelector("https://example.com/books/{id}")}, []string{"3"}},
		{"Outside", nil, []*Selector{MatcherSelector("suffix\x00/1", suffixMatcher("/1"))}, []string{"1"}},
		{"OutsideSameKey", nil, []*Selector{MatcherSelector("suffix\x00/1", suffixMatcher("/1"))}, []string{"1"}},
		{"Mixed", []string{"https://example.com/books/2"}, []*Selector{MatcherSelector("suffix\x00/1", suffixMatcher("/1"))}, []string{"1", "2"}},
		{"KeyIsNotATopic", nil, []*Selector{MatcherSelector("https://example.com/books/2", suffixMatcher("/none"))}, nil},
	}
	clients := make([]*client, len(tests))
	for i, tt := range tests {
		clients[i] = subscribe(t, h, SubscribeRequest{Selectors: tt.selectors, Matchers: tt.matchers})
	}
	publish(t, h, &Update{ID: "1", Topics: []string{"https://example.com/books/1"}})
	publish(t, h, &Update{ID: "2", Topics: []string{"https://example.com/books/2"}})
	publish(t, h, &Update{ID: "3", Topics: []string{"https://example.com/books/{id}"}})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients[i].drain()
			if got := ids(clients[i].events(t)); !slices.Equal(got, tt.want) {
				t.Errorf("received %v; want %v", got, tt.want)
			}
		})
	}
	h.mu.RLock()
	n := len(h.patterns)
	h.mu.RUnlock()
	if n != 2 { // the shared suffix matcher and the one keyed like a topic
		t.Errorf("%d pattern groups; want 2 (equal keys share one)", n)
	}
}

// TestSelectorSpelledLikeMatcherKey checks that a topic= selector cannot
// take a MatcherSelector's key and so join (or take over) its group.
func TestSelectorSpelledLikeMatcherKey(t *testing.T) {
	h := newHub(t, Config{})
	m := MatcherSelector("suffix{/x}", suffixMatcher("/1"))
	if _, _, err := h.Subscribe(t.Context(), SubscribeRequest{Selectors: []string{m.raw}}); !errors.Is(err, ErrReservedSelector) {
		t.Fatalf("Subscribe with a selector spelled like a matcher key: %v; want ErrReservedSelector", err)
	}
	c := subscribe(t, h, SubscribeRequest{Matchers: []*Selector{m}})
	publish(t, h, &Update{ID: "1", Topics: []string{"https://example.com/1"}})
	c.drain()
	if got := ids(c.events(t)); !slices.Equal(got, []string{"1"}) {
		t.Errorf("matcher subscriber received %v; want [1]", got)
	}
}

// TestCachedMatcher checks that equal keys compile once and share one
// selector, and that a failed compilation is not cached.
func TestCachedMatcher(t *testing.T) {
	h := newHub(t, Config{})
	compiles := 0
	compile := func() (Matcher, error) { compiles++; return suffixMatcher("/1"), nil }
	a, err := h.CachedMatcher("k", compile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.CachedMatcher("k", compile)
	if a != b || compiles != 1 {
		t.Errorf("same key: shared %v, %d compilations; want one shared", a == b, compiles)
	}
	bad := errors.New("bad pattern")
	for range 2 {
		if _, err := h.CachedMatcher("bad", func() (Matcher, error) { compiles++; return nil, bad }); !errors.Is(err, bad) {
			t.Errorf("failed compilation: %v; want its error", err)
		}
	}
	if compiles != 3 {
		t.Errorf("%d compilations; want a failed one retried (3)", compiles)
	}
	if !a.Match("x/1") || a.Match("x/2") || a.String() != "/1" {
		t.Errorf("cached selector does not match as its matcher")
	}
}
