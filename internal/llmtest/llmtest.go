// Package llmtest serves the made-up LLM and MCP streams of
// debugger/testdata/llm, each a mock script, to the tests of the
// Assembler, of "ssekit listen --llm" and of the debug page in Chromium,
// with the answer each must assemble (fixtures.json): one list of
// fixtures, checked the same way by every reader of it.
package llmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/ssetest"
)

// Dir is the fixtures' directory from the module's root.
const Dir = "debugger/testdata/llm"

// A Fixture is one made-up stream: its mock script, the request that the
// script's route answers and what must be assembled from it.
type Fixture struct {
	Script string `json:"script"`
	// Rules names the merge rule file the stream is read with, if any.
	Rules string `json:"rules"`
	// NDJSON is set for a newline-delimited JSON stream.
	NDJSON bool `json:"ndjson"`
	// Request's URL is a path on the mock.
	Request debugger.RequestSpec `json:"request"`
	Want    Want                 `json:"want"`

	dir string
}

// Want is the assembled answer.
type Want struct {
	Format    string              `json:"format"`
	Label     string              `json:"label"` // the debug page's name of the format
	Text      string              `json:"text"`
	Reasoning string              `json:"reasoning"`
	Finish    string              `json:"finish"`
	Tools     []debugger.ToolCall `json:"tools"`
	Usage     debugger.Usage      `json:"usage"`
	// RPC is each JSON-RPC message of an MCP stream as listen and the
	// page show it, in order.
	RPC []string `json:"rpc"`
}

// Load reads the fixtures; root is the module's root relative to the
// test's directory ("..", "../..").
func Load(t testing.TB, root string) []Fixture {
	t.Helper()
	dir := filepath.Join(root, Dir)
	b, err := os.ReadFile(filepath.Join(dir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []Fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatalf("fixtures.json: %v", err)
	}
	for i := range fs {
		fs[i].dir = dir
	}
	return fs
}

// Path returns the path of a file next to the fixtures (a script, a rule
// file).
func (f *Fixture) Path(name string) string { return filepath.Join(f.dir, name) }

// Serve starts the fixture's mock script and returns the mock and the
// request to send to it, its URL absolute and its merge rules read.
func (f *Fixture) Serve(t testing.TB) (*ssetest.Mock, debugger.RequestSpec) {
	t.Helper()
	script, err := os.ReadFile(f.Path(f.Script))
	if err != nil {
		t.Fatal(err)
	}
	m := ssetest.NewMock(t, string(script))
	spec := f.Request
	spec.Headers = append([]debugger.Header(nil), spec.Headers...)
	spec.URL = m.URL + spec.URL
	spec.HasBody = spec.Body != ""
	if f.Rules != "" {
		b, err := os.ReadFile(f.Path(f.Rules))
		if err != nil {
			t.Fatal(err)
		}
		spec.LLMRules = &debugger.MergeRules{}
		if err := json.Unmarshal(b, spec.LLMRules); err != nil {
			t.Fatalf("%s: %v", f.Rules, err)
		}
	}
	return m, spec
}
