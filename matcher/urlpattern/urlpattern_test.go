package urlpattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// wptCase is one case of testdata/wpt-constructor-string.json.
type wptCase struct {
	Pattern   string `json:"pattern"`
	Base      string `json:"base"`
	Input     string `json:"input"`
	InputBase string `json:"inputBase"`
	Match     bool   `json:"match"`
	Error     bool   `json:"error"`
}

// TestWPT checks the library against the subset of the WHATWG test data
// the hub relies on: constructor strings with a base, string inputs.
func TestWPT(t *testing.T) {
	raw, err := os.ReadFile("testdata/wpt-constructor-string.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct{ Cases []wptCase }
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Cases) < 50 {
		t.Fatalf("%d cases; want the whole subset", len(data.Cases))
	}
	for _, c := range data.Cases {
		t.Run(c.Pattern+"~"+c.Input, func(t *testing.T) {
			m, err := New(c.Pattern, c.Base)
			if c.Error {
				if err == nil {
					t.Fatalf("New(%q, %q) accepted; want an error", c.Pattern, c.Base)
				}
				if !errors.Is(err, ErrInvalidPattern) {
					t.Errorf("New(%q): %v; want ErrInvalidPattern", c.Pattern, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q, %q): %v", c.Pattern, c.Base, err)
			}
			// Test with the input's own base, as the standard's test
			// harness does (the hub uses its URL for both).
			if got := m.p.Test(c.Input, c.InputBase); got != c.Match {
				t.Errorf("%q.Test(%q, %q) = %v; want %v", c.Pattern, c.Input, c.InputBase, got, c.Match)
			}

		})
	}
}

const hubURL = "https://example.com/.well-known/mercure"

// TestMatch covers the hub's uses: absolute and relative patterns against
// absolute and relative topics, all resolved against the hub's URL.
func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"https://example.com/books/:id", "https://example.com/books/1", true},
		{"https://example.com/books/:id", "https://example.com/books/1?x#y", true}, // search and hash are *
		{"https://example.com/books/:id", "https://example.com/books/1/", false},
		{"https://example.com/books/:id", "https://example.com/books/", false},
		{"https://example.com/books/:id", "https://EXAMPLE.com/books/1", true}, // hosts canonicalised
		{"https://example.com/books/:id", "https://example.com/BOOKS/1", false},
		{"https://example.com/books/*", "https://example.com/books/a/b", true},
		{"https://example.com/books/*", "https://example.com/books", false},
		{"https://example.com/books/:id?", "https://example.com/books", true},
		{"https://example.net/foo/:random", "https://example.net/foo/r4", true},
		{"https://example.net/bar/:var", "https://example.net/foo/will-not-match", false},
		// Relative patterns and topics resolve against the hub URL.
		{"/.well-known/mercure/subscriptions/:topic/:sub", "https://example.com/.well-known/mercure/subscriptions/t/s", true},
		{"/.well-known/mercure/subscriptions/:topic/:sub", "/.well-known/mercure/subscriptions/t/s", true},
		{"/.well-known/mercure/subscriptions/:topic/:sub", "https://other.example/.well-known/mercure/subscriptions/t/s", false},
		{"books/:id", "https://example.com/.well-known/books/1", true},
		{"https://example.com/.well-known/:x", "foo", true},  // a raw topic joins the hub's directory
		{"https://example.com/books/:id", "https://", false}, // not a URL: no match
	}
	for _, tt := range tests {
		m, err := New(tt.pattern, hubURL)
		if err != nil {
			t.Errorf("New(%q): %v", tt.pattern, err)
			continue
		}
		if got := m.Match(tt.topic); got != tt.want {
			t.Errorf("%q.Match(%q) = %v; want %v", tt.pattern, tt.topic, got, tt.want)
		}

	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		pattern string
		want    error
	}{
		{"https://example.com/" + strings.Repeat("a", MaxPatternLength), ErrPatternTooLong},
		{"https://example.com/(a{1000})", ErrCountedRepetition},
		{"https://example.com/((a){2,})", ErrCountedRepetition},
		{"https://example.com/(a{,5})", ErrCountedRepetition},
		{"https://example.com/(?=a)", ErrInvalidPattern},       // look-ahead: not RE2
		{"https://example.com/(a)\\1(\\1)", ErrInvalidPattern}, // back-reference
		{"/books/:id", ErrInvalidPattern},                      // relative without a base (below)
	}
	for _, tt := range tests {
		base := hubURL
		if tt.pattern == "/books/:id" {
			base = ""
		}
		if _, err := New(tt.pattern, base); !errors.Is(err, tt.want) {
			t.Errorf("New(%.60q): %v; want %v", tt.pattern, err, tt.want)
		}
	}
	// Braces outside a regular-expression group are the pattern syntax's
	// own groups, and an escaped one is a literal: both accepted.
	for _, p := range []string{"http{s}?://example.com/{:id}?", "https://example.com/(\\{1})"} {
		if _, err := New(p, hubURL); err != nil {
			t.Errorf("New(%q): %v; want accepted", p, err)
		}
	}
	if _, err := New("https://example.com/"+strings.Repeat("a", MaxPatternLength-20), hubURL); err != nil {
		t.Errorf("pattern under the limit: %v", err)
	}
}

// TestHostilePatternsMatch checks that patterns built to make a
// backtracking engine explode (nested quantifiers on a long near-miss) are
// either refused or answered: RE2 does not backtrack. Their cost is in
// BenchmarkHostileMatch, not timed here.
func TestHostilePatternsMatch(t *testing.T) {
	topic := "https://example.com/" + strings.Repeat("a", 2000) + "!"
	for _, p := range hostilePatterns {
		m, err := New(p, hubURL)
		if err != nil {
			t.Errorf("New(%q): %v", p, err)
			continue
		}
		if m.Match(topic) {
			t.Errorf("%q matched the near-miss topic", p)
		}
	}
}

var hostilePatterns = []string{
	"https://example.com/((?:a+)+b)",
	"https://example.com/((?:a|a)*b)",
	"https://example.com/((?:a*)*b)",
	"https://example.com/:x(a*):y(a*)b",
	"https://example.com/(.*a.*a.*a.*a.*b)",
}

func ExampleNew() {
	m, err := New("/books/:id", "https://example.com/.well-known/mercure")
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Match("https://example.com/books/1"), m.Match("https://example.com/books/1/reviews"))
	// Output: true false
}

// checkPrefilter fails when the literal-prefix shortcut of Match answers
// otherwise than the library's own test.
func checkPrefilter(t *testing.T, pattern, topic string) {
	t.Helper()
	m, err := New(pattern, hubURL)
	if err != nil {
		return
	}
	if got, want := m.Match(topic), m.p.Test(topic, hubURL); got != want {
		t.Fatalf("%q.Match(%q) = %v; the library says %v (path prefix %q)", pattern, topic, got, want, m.pathPrefix)
	}
}

// FuzzPrefilter checks the shortcut of Match against the library on
// arbitrary patterns and topics.
func FuzzPrefilter(f *testing.F) {
	for _, c := range [][2]string{
		{"https://example.com/books/:id", "https://example.com/books/1"},
		{"https://example.com/books/:id?", "https://example.com/books"},
		{"https://example.com/books/*", "https://example.com/books/a/../b"},
		{"/books/:id", "https://example.com/BOOKS/1"},
		{"https://example.com/a/b", "https://example.com/a/./b"},
		{"https://example.com/a{/b}?", "https://example.com/a"},
		{"*://*/x/:y", "ws://h/x/1"},
		{"https://example.com/caf%C3%A9/:x", "https://example.com/café/1"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(checkPrefilter)
}

func TestPrefilterAgreesWithLibrary(t *testing.T) {
	patterns := []string{
		"https://example.com/books/:id", "https://example.com/books/:id?", "https://example.com/books/*",
		"https://example.com/books{/:id}?", "/books/:id", "books/:id", "https://example.com",
		"https://example.com/a/b", "*://*/books/:id", "https://example.com/books/(\\d+)",
		"https://example.com/books/:id+", "https://example.com/.well-known/:x",
	}
	topics := []string{
		"https://example.com/books/1", "https://example.com/books", "https://example.com/books/",
		"https://example.com/books/1/2", "https://example.com/a/./b", "https://example.com/a/b/..",
		"https://example.com/BOOKS/1", "https://EXAMPLE.com/books/1", "https://u:p@example.com:443/books/1",
		"https://example.com", "https://example.com?x", "http://example.com/books/1#f",
		"ws://example.com/books/1", "books/1", "/books/1", "https://example.com/book%73/1",
		"https://example.com\\books\\1", " https://example.com/books/1", "https://example.com/a/b",
		"foo", "https://example.com/.well-known/foo",
	}
	for _, p := range patterns {
		for _, topic := range topics {
			checkPrefilter(t, p, topic)
		}
	}
}
