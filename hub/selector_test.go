package hub

import (
	"fmt"
	"testing"
)

func TestSelectorMatch(t *testing.T) {
	tests := []struct {
		selector, topic string
		want            bool
	}{
		// Mercure's examples.
		{"https://example.com/books/{id}", "https://example.com/books/1", true},
		{"https://example.com/books/{id}", "https://example.com/books/1/reviews", false},
		{"https://example.com/books/{id}", "https://example.com/books", false},
		{"https://example.com/books/{id}", "https://example.com/books/", true}, // empty value
		{"https://example.com/books/{id}", "https://example.com/books/{id}", true},
		{"https://example.com/books/{id}", "https://example.org/books/1", false},
		{"https://example.com/books/{id}/reviews{/rid}", "https://example.com/books/1/reviews", true},
		{"https://example.com/books/{id}/reviews{/rid}", "https://example.com/books/1/reviews/7", true},
		{"https://example.com/books/{id}/reviews{/rid}", "https://example.com/books/1/reviews/7/x", false},
		{"https://example.com/{id}.json", "https://example.com/1.json", true},
		{"https://example.com/{id}.json", "https://example.com/1xjson", false},
		{"*", "https://example.com/anything", true},
		{"*", "", true},
		// Exact selectors, including regexp metacharacters.
		{"https://example.com/books/1", "https://example.com/books/1", true},
		{"https://example.com/books/1", "https://example.com/books/12", false},
		{"https://example.com/a.b", "https://example.com/aXb", false},
		{"urn:x:(a|b)", "urn:x:a", false},
		{"", "", true},
		// Invalid templates are exact selectors.
		{"https://example.com/{id", "https://example.com/{id", true},
		{"https://example.com/{id", "https://example.com/1", false},
		{"a}b", "a}b", true},
		{"{}", "{}", true},
		{"{}", "", false},
		{"{=x}", "x", false},
		{"{x:0}", "a", false},
		{"{x:10000}", "a", false},
		{"{x y}", "a", false},
		{"{x..y}", "a", false},
		{"{x%2}", "a", false},
		// Values: unreserved and percent-escapes only, unless + or #.
		{"{var}", "Hello%20World%21", true},
		{"{var}", "Hello World", false},
		{"{var}", "a/b", false},
		{"{var}", "a%2", false},
		{"{var}", "1,2", false}, // a list needs the explode modifier
		{"{+var}", "a/b?c=d#e", true},
		{"{#var}", "#a/b", true},
		{"{#var}", "", true},
		{"{#var}", "a", false},
		{"{var:3}", "val", true},
		{"{var:3}", "value", false},
		{"{var:3}", "%20%20%20", true},
		{"{var:200}", "value", true},
		{"{/var}", "/a/b", false},
		{"{?x,y}", "?z=1", false},
		{"{?x,y}", "?x=1&y=2&x=3", false},
		{"{?x,y}", "", true},
		{"{?x,y}", "?y=2", true},
		{"{;x}", ";x", true},
		{"{;x}", ";x=", true},
		{"{&x}", "&x", false},
		{"{.x*}", ".a.b", true},
		{"{%41b.c_d}", "v", true},
	}
	// RFC 6570 section 3.2's expansions, with its variables:
	// var="value", hello="Hello World!", path="/foo/bar",
	// list=("red","green","blue"), keys=[semi:";",dot:".",comma:","],
	// empty="", x=1024, y=768.
	rfc := []struct{ template, expansion string }{
		// Level 1.
		{"{var}", "value"},
		{"{hello}", "Hello%20World%21"},
		// Level 2.
		{"{+var}", "value"},
		{"{+hello}", "Hello%20World!"},
		{"{+path}/here", "/foo/bar/here"},
		{"here?ref={+path}", "here?ref=/foo/bar"},
		{"X{#var}", "X#value"},
		{"X{#hello}", "X#Hello%20World!"},
		// Level 3.
		{"map?{x,y}", "map?1024,768"},
		{"{x,hello,y}", "1024,Hello%20World%21,768"},
		{"{+x,hello,y}", "1024,Hello%20World!,768"},
		{"{+path,x}/here", "/foo/bar,1024/here"},
		{"{#x,hello,y}", "#1024,Hello%20World!,768"},
		{"{#path,x}/here", "#/foo/bar,1024/here"},
		{"X{.var}", "X.value"},
		{"X{.x,y}", "X.1024.768"},
		{"{/var}", "/value"},
		{"{/var,x}/here", "/value/1024/here"},
		{"{;x,y}", ";x=1024;y=768"},
		{"{;x,y,empty}", ";x=1024;y=768;empty"},
		{"{?x,y}", "?x=1024&y=768"},
		{"{?x,y,empty}", "?x=1024&y=768&empty="},
		{"?fixed=yes{&x}", "?fixed=yes&x=1024"},
		{"{&x,y,empty}", "&x=1024&y=768&empty="},
		// Level 4.
		{"{var:3}", "val"},
		{"{var:30}", "value"},
		{"{list*}", "red,green,blue"},
		{"{keys*}", "semi=%3B,dot=.,comma=%2C"},
		{"{+path:6}/here", "/foo/b/here"},
		{"{+list*}", "red,green,blue"},
		{"{+keys*}", "semi=;,dot=.,comma=,"},
		{"{#path:6}/here", "#/foo/b/here"},
		{"{#list*}", "#red,green,blue"},
		{"{#keys*}", "#semi=;,dot=.,comma=,"},
		{"X{.var:3}", "X.val"},
		{"X{.list*}", "X.red.green.blue"},
		{"X{.keys*}", "X.semi=%3B.dot=..comma=%2C"},
		{"{/var:1,var}", "/v/value"},
		{"{/list*}", "/red/green/blue"},
		{"{/list*,path:4}", "/red/green/blue/%2Ffoo"},
		{"{/keys*}", "/semi=%3B/dot=./comma=%2C"},
		{"{;hello:5}", ";hello=Hello"},
		{"{;list*}", ";list=red;list=green;list=blue"},
		{"{;keys*}", ";semi=%3B;dot=.;comma=%2C"},
		{"{?var:3}", "?var=val"},
		{"{?list*}", "?list=red&list=green&list=blue"},
		{"{?keys*}", "?semi=%3B&dot=.&comma=%2C"},
		{"{&var:3}", "&var=val"},
		{"{&list*}", "&list=red&list=green&list=blue"},
		{"{&keys*}", "&semi=%3B&dot=.&comma=%2C"},
	}
	for _, r := range rfc {
		tests = append(tests, struct {
			selector, topic string
			want            bool
		}{r.template, r.expansion, true})
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s~%s", tt.selector, tt.topic), func(t *testing.T) {
			if got := ParseSelector(tt.selector).Match(tt.topic); got != tt.want {
				t.Errorf("ParseSelector(%q).Match(%q) = %v; want %v", tt.selector, tt.topic, got, tt.want)
			}
		})
	}
}

func TestSelectorExact(t *testing.T) {
	for sel, want := range map[string]bool{
		"https://example.com/books/1":    true,
		"https://example.com/{id":        true,
		"*":                              false,
		"https://example.com/books/{id}": false,
	} {
		if got := ParseSelector(sel).Exact(); got != want {
			t.Errorf("ParseSelector(%q).Exact() = %v; want %v", sel, got, want)
		}
	}
}

func TestSelectorCacheBounded(t *testing.T) {
	c := newSelectorCache(100)
	first, _ := c.get("https://example.com/{id}")
	if again, _ := c.get("https://example.com/{id}"); again != first {
		t.Errorf("second get compiled again; want the cached selector")
	}
	for i := range 1000 {
		c.get(fmt.Sprintf("https://example.com/%d/{id}", i))
		if n := c.len(); n > 100 {
			t.Fatalf("cache holds %d selectors; want at most 100", n)
		}
	}
	// A selector in constant use stays cached.
	hot, _ := c.get("hot/{x}")
	for i := range 1000 {
		c.get(fmt.Sprintf("cold/%d/{id}", i))
		if again, _ := c.get("hot/{x}"); again != hot {
			t.Fatalf("a selector used on every other get was evicted")
		}
	}
}

func BenchmarkSelectorMatch(b *testing.B) {
	s := ParseSelector("https://example.com/books/{id}{?q,lang}")
	b.ReportAllocs()
	for b.Loop() {
		if !s.Match("https://example.com/books/1234?q=go&lang=en") {
			b.Fatal("no match")
		}
	}
}
