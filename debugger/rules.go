package debugger

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ssekit/sse"
)

// ErrBadRule is a merge rule that is not a path this package reads.
var ErrBadRule = errors.New("debugger: bad merge rule")

// MergeRules say where, in the JSON data of each event of a stream in a
// format of its own, the pieces of an answer are: each a path in the
// JSONPath subset $.name, .name, ['name'] and [index] (for example
// "$.output[0].delta"). An empty path is not read. Events whose data is not
// JSON, or has none of the paths, add nothing.
type MergeRules struct {
	Text      string `json:"text,omitempty"`      // a string appended to the answer
	Reasoning string `json:"reasoning,omitempty"` // a string appended to the reasoning
	ToolIndex string `json:"toolIndex,omitempty"` // a number: which tool call (0 when not given)
	ToolID    string `json:"toolId,omitempty"`
	ToolName  string `json:"toolName,omitempty"`
	ToolArgs  string `json:"toolArgs,omitempty"` // a string appended to the call's arguments, or JSON taken whole
	Finish    string `json:"finish,omitempty"`   // the stop reason
	// InputTokens and OutputTokens are the reported usage.
	InputTokens  string `json:"inputTokens,omitempty"`
	OutputTokens string `json:"outputTokens,omitempty"`
}

// FormatCustom is the format of a stream read with MergeRules.
const FormatCustom = "custom"

// maxPathSteps bounds a rule, so that a rule file cannot make every event
// cost more than a few lookups.
const maxPathSteps = 32

// pathStep is one step of a path: a member name, or an array index when
// name is empty.
type pathStep struct {
	name  string
	index int
}

// compileRules parses every path of r.
func compileRules(r *MergeRules) (map[string][]pathStep, error) {
	paths := map[string][]pathStep{}
	for field, p := range map[string]string{
		"text": r.Text, "reasoning": r.Reasoning, "toolIndex": r.ToolIndex, "toolId": r.ToolID, "toolName": r.ToolName,
		"toolArgs": r.ToolArgs, "finish": r.Finish, "inputTokens": r.InputTokens, "outputTokens": r.OutputTokens,
	} {
		if p == "" {
			continue
		}
		steps, err := parsePath(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadRule, field, err)
		}
		paths[field] = steps
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no paths", ErrBadRule)
	}
	return paths, nil
}

// parsePath parses $.a.b[0]['c d'].
func parsePath(p string) ([]pathStep, error) {
	s, ok := strings.CutPrefix(p, "$")
	if !ok {
		return nil, fmt.Errorf("%q does not start with $", p)
	}
	var steps []pathStep
	for s != "" {
		if len(steps) == maxPathSteps {
			return nil, fmt.Errorf("%q has more than %d steps", p, maxPathSteps)
		}
		switch {
		case s[0] == '.':
			s = s[1:]
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return nil, fmt.Errorf("%q has an empty name", p)
			}
			steps = append(steps, pathStep{name: s[:end]})
			s = s[end:]
		case strings.HasPrefix(s, "['"):
			end := strings.Index(s[2:], "']")
			if end <= 0 {
				return nil, fmt.Errorf("%q has an unclosed ['name']", p)
			}
			steps = append(steps, pathStep{name: s[2 : 2+end]})
			s = s[2+end+2:]
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			n, err := strconv.Atoi(s[1:max(end, 1)])
			if end < 0 || err != nil || n < 0 {
				return nil, fmt.Errorf("%q has a bad [index]", p)
			}
			steps = append(steps, pathStep{name: "", index: n})
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("%q: want . or [ at %q", p, s)
		}
	}
	return steps, nil
}

// lookup follows steps in v (as encoding/json decodes into any).
func lookup(v any, steps []pathStep) (any, bool) {
	for _, st := range steps {
		switch x := v.(type) {
		case map[string]any:
			if st.name == "" {
				return nil, false
			}
			if v, _ = x[st.name]; v == nil {
				return nil, false
			}
		case []any:
			if st.name != "" || st.index >= len(x) {
				return nil, false
			}
			v = x[st.index]
		default:
			return nil, false
		}
	}
	return v, true
}

// ruleDelta reads one event with compiled rules.
func ruleDelta(paths map[string][]pathStep, ev *sse.Event) (LLMDelta, bool) {
	var v any
	if json.Unmarshal([]byte(ev.Data), &v) != nil {
		return LLMDelta{}, false
	}
	str := func(field string) (string, bool) {
		steps, ok := paths[field]
		if !ok {
			return "", false
		}
		x, ok := lookup(v, steps)
		if !ok {
			return "", false
		}
		if s, ok := x.(string); ok {
			return s, true
		}
		b, _ := json.Marshal(x) // a number or a whole JSON value
		return string(b), true
	}
	num := func(field string) int {
		s, _ := str(field)
		n, _ := strconv.Atoi(s)
		return n
	}
	d := LLMDelta{Format: FormatCustom}
	found := false
	if s, ok := str("text"); ok {
		d.Text, found = s, true
	}
	if s, ok := str("reasoning"); ok {
		d.Reasoning, found = s, true
	}
	id, okID := str("toolId")
	name, okName := str("toolName")
	args, okArgs := str("toolArgs")
	if okID || okName || okArgs {
		d.Tool = &ToolDelta{Index: num("toolIndex"), ID: id, Name: name, Args: args}
		found = true
	}
	if s, ok := str("finish"); ok {
		d.Finish, found = s, true
	}
	if in, out := num("inputTokens"), num("outputTokens"); in > 0 || out > 0 {
		d.Usage, found = &Usage{InputTokens: in, OutputTokens: out}, true
	}
	return d, found
}

// SetRules makes a read its stream with rules instead of the formats it
// knows. It returns ErrBadRule for a path it cannot read.
func (a *Assembler) SetRules(rules *MergeRules) error {
	paths, err := compileRules(rules)
	if err != nil {
		return err
	}
	a.rules = paths
	return nil
}
