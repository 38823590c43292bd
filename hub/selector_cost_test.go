package hub

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Bounds the fuzz target holds every selector to. A template's program has
// at most a few instructions per byte (a variable "{a}" of 3 bytes is 7),
// and a match tries at most a few threads per instruction per topic byte.
const (
	maxSizePerByte  = 128 // Selector.Size per selector byte
	maxSizeConstant = 512
	maxWorkPerCell  = 16 // match work per (topic byte + 1) × program size
)

// checkSelectorCost fails when compiling or matching sel cost more than
// linear in its length, or when a small template's match differs from the
// reference regular expression's.
func checkSelectorCost(t *testing.T, sel, topic string) {
	t.Helper()
	s, err := CompileSelector(sel)
	if err != nil {
		if !errors.Is(err, ErrSelectorTooLong) && !errors.Is(err, ErrTooManyVariables) {
			t.Fatalf("CompileSelector(%q): %v; want a limit error or none", sel, err)
		}
		return
	}
	if size := s.Size(); size > maxSizePerByte*len(sel)+maxSizeConstant {
		t.Fatalf("Selector.Size() = %d for %d bytes: grows faster than the selector", size, len(sel))
	}
	if s.prog == nil {
		if got, want := s.Match(topic), sel == "*" || topic == sel; got != want {
			t.Fatalf("exact %q.Match(%q) = %v; want %v", sel, topic, got, want)
		}
		return
	}
	rest, ok := strings.CutPrefix(topic, s.prefix)
	if !ok {
		rest = topic
	}
	cells := (len(rest) + 1) * (len(s.prog.insts) + len(s.prog.targets))
	matched, work := s.prog.run(rest)
	if work > maxWorkPerCell*cells {
		t.Fatalf("matching %q against %q took %d steps; bound %d", topic, sel, work, maxWorkPerCell*cells)
	}
	if len(sel) > 48 || len(topic) > 64 || strings.Count(sel, ",") > 4 || !utf8.ValidString(sel) {
		return // too large for the quadratic reference, or not text it can compile
	}
	expr, err := refTemplateRegexp(sel)
	if err != nil {
		t.Fatalf("%q compiles to a program but is not a template for the reference: %v", sel, err)
	}
	want := topic == sel || regexp.MustCompile(expr).MatchString(topic)
	if got := s.Match(topic); got != want {
		t.Fatalf("%q.Match(%q) = %v; reference regexp %s says %v", sel, topic, got, expr, want)
	} else if ok && !want && matched {
		t.Fatalf("program accepts %q after the prefix of %q; reference says no", topic, sel)
	}
}

// FuzzSelectorCost parses, compiles and matches arbitrary selectors and
// topics, failing when the cost grows faster than the input or when a small
// template disagrees with the reference matcher.
func FuzzSelectorCost(f *testing.F) {
	for _, c := range [][2]string{
		{"https://example.com/books/{id}", "https://example.com/books/1"},
		{"https://example.com/books/{id}{?q,lang}", "https://example.com/books/1?lang=en&q=go"},
		{"{+x,y,z}", "a,b,c,d"},
		{"{?x,y}", "?x=1&y=2&x=3"},
		{"{;x,y,empty}", ";x=1024;y=768;empty"},
		{"{/list*,path:4}", "/red/green/blue/%2Ffoo"},
		{"{+a:2,b:2,c:2}", "ab,cd,ef"},
		{"{.x:3,y:3}", ".a.b.c.d"},
		{"{#keys*}", "#semi=;,dot=.,comma=,"},
		{hostileTemplate(60, "+"), strings.Repeat("a,", 60)},
		{strings.Repeat("{x}", 20), strings.Repeat("a", 40)},
		{"a}b{x}", "a}bc"},
		{"*", "x"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(checkSelectorCost)
}

// TestSelectorMatchesReference compares the program with the reference
// regular expression on random small templates and topics.
func TestSelectorMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "/", ",", ".", "=", "&", ";", "?", "#", "%41", "%4", "x", "-"}
	exprs := []string{"{x}", "{+x}", "{#x}", "{.x}", "{/x}", "{;x}", "{?x}", "{&x}",
		"{x,y}", "{+x,y}", "{.x,y}", "{/x,y,z}", "{;x,y}", "{?x,y}", "{&x,y}",
		"{x:2}", "{+x:2,y:1}", "{.x:1,y:2}", "{x*}", "{.x*}", "{;x*}", "{?x*,y}", "{/x*,y:2}", "{#x*}"}
	for range 3000 {
		var sel, topic strings.Builder
		for range 1 + r.IntN(3) {
			if r.IntN(2) == 0 {
				sel.WriteString(pieces[r.IntN(len(pieces))])
			}
			sel.WriteString(exprs[r.IntN(len(exprs))])
		}
		for range r.IntN(10) {
			topic.WriteString(pieces[r.IntN(len(pieces))])
		}
		checkSelectorCost(t, sel.String(), topic.String())
	}
}

// hostileTemplate is the attack of issue 8: one expression of operator op
// with n variables.
func hostileTemplate(n int, op string) string {
	var b strings.Builder
	b.WriteString("{" + op)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "v%d", i)
	}
	b.WriteByte('}')
	return b.String()
}

func TestCompileSelectorLimits(t *testing.T) {
	if _, err := CompileSelector(strings.Repeat("a", MaxSelectorLength+1)); !errors.Is(err, ErrSelectorTooLong) {
		t.Errorf("selector of %d bytes: %v; want ErrSelectorTooLong", MaxSelectorLength+1, err)
	}
	if _, err := CompileSelector(strings.Repeat("a", MaxSelectorLength)); err != nil {
		t.Errorf("selector of %d bytes: %v; want accepted", MaxSelectorLength, err)
	}
	if _, err := CompileSelector(hostileTemplate(MaxTemplateVariables+1, "+")); !errors.Is(err, ErrTooManyVariables) {
		t.Errorf("template of %d variables: %v; want ErrTooManyVariables", MaxTemplateVariables+1, err)
	}
	if _, err := CompileSelector(strings.Repeat("{x}", MaxTemplateVariables+1)); !errors.Is(err, ErrTooManyVariables) {
		t.Errorf("%d expressions: %v; want ErrTooManyVariables", MaxTemplateVariables+1, err)
	}
	if s, err := CompileSelector(hostileTemplate(MaxTemplateVariables, "+")); err != nil || !s.Match("a,b") {
		t.Errorf("template of %d variables: %v; want accepted and matching", MaxTemplateVariables, err)
	}
	// An invalid template with many braces is an exact selector, not an error.
	if s, err := CompileSelector(strings.Repeat("{", 1000)); err != nil || !s.Exact() {
		t.Errorf("invalid template: %v; want an exact selector", err)
	}
}

// TestSelectorCostLinear checks each attack shape's program against its
// length at several sizes: the quadratic shapes included.
func TestSelectorCostLinear(t *testing.T) {
	for name, shape := range selectorShapes {
		for _, n := range []int{10, 100, 1000} {
			sel := shape(n)
			s := ParseSelector(sel)
			if size := s.Size(); size > maxSizePerByte*len(sel)+maxSizeConstant {
				t.Errorf("%s(%d): Size %d for %d bytes", name, n, size, len(sel))
			}
			if s.prog == nil {
				continue
			}
			topic := strings.Repeat("a,", 2*n)
			cells := (len(topic) + 1) * (len(s.prog.insts) + len(s.prog.targets))
			if _, work := s.prog.run(topic); work > maxWorkPerCell*cells {
				t.Errorf("%s(%d): match work %d; bound %d", name, n, work, maxWorkPerCell*cells)
			}
		}
	}
}

// selectorShapes are selectors of growing size, by shape: the attacks of
// issue 8 and ordinary ones.
var selectorShapes = map[string]func(n int) string{
	"variables":   func(n int) string { return hostileTemplate(n, "+") },
	"named":       func(n int) string { return hostileTemplate(n, "?") },
	"prefixes":    func(n int) string { return strings.Replace(hostileTemplate(n, "+"), ",", ":99,", -1) },
	"expressions": func(n int) string { return strings.Repeat("{/x}", n) },
	"literal":     func(n int) string { return "https://example.com/" + strings.Repeat("a", 4*n) + "{id}" },
	"exact":       func(n int) string { return "https://example.com/" + strings.Repeat("a", 4*n) },
}

func TestSelectorCacheBoundedInBytes(t *testing.T) {
	const maxBytes = 256 << 10
	c := newSelectorCacheBytes(1_000_000, maxBytes)
	for i := range 2000 {
		sel := fmt.Sprintf("%d%s", i, hostileTemplate(MaxTemplateVariables, "+"))
		if _, err := c.get(sel); err != nil {
			t.Fatal(err)
		}
		if b := c.bytes(); b > maxBytes+ParseSelector(sel).Size() {
			t.Fatalf("cache holds %d bytes; want at most about %d", b, maxBytes)
		}
	}
	if _, err := c.get(strings.Repeat("a", MaxSelectorLength+1)); !errors.Is(err, ErrSelectorTooLong) {
		t.Errorf("get of an over-long selector: %v; want ErrSelectorTooLong", err)
	}
}

// TestSelectorCacheCompilesOutsideLock checks that lookups are not held
// back while another caller compiles: with a compile blocked, a cached
// selector is still found and matched.
func TestSelectorCacheCompilesOutsideLock(t *testing.T) {
	c := newSelectorCache(100)
	if _, err := c.get("hot/{x}"); err != nil {
		t.Fatal(err)
	}
	compiling, release := make(chan struct{}), make(chan struct{})
	c.compile = func(s string) (*Selector, error) {
		close(compiling)
		<-release
		return CompileSelector(s)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.get("slow/{x}")
		done <- err
	}()
	<-compiling
	matched := make(chan bool, 1)
	go func() { matched <- c.match("hot/{x}", "hot/1") }()
	select {
	case ok := <-matched:
		if !ok {
			t.Error("cached selector does not match")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cached lookup waited for another selector's compile")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.len() != 2 {
		t.Errorf("cache holds %d selectors after the compile; want 2", c.len())
	}
}
