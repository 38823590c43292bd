package server

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// refLine is batchLine for encoding/json, the reference parseBatchLine
// must agree with.
type refLine struct {
	Topic   json.RawMessage `json:"topic"`
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Data    string          `json:"data"`
	Retry   json.Number     `json:"retry"`
	Private bool            `json:"private"`
}

// FuzzParseBatchLine: a line parseBatchLine accepts is one JSON object
// that encoding/json decodes to the same fields.
func FuzzParseBatchLine(f *testing.F) {
	for _, s := range []string{
		`{"topic":"a","data":"x"}`,
		`{"topic":["a","b"],"id":"i","type":"t","data":"d\n\u00e9\ud83d\ude00","retry":1500,"private":true}`,
		` { "topic" : null , "private" : false } `,
		`{"topic":"a"} {"topic":"b"}`,
		`{"topic":"\u0061","data":"\"q\\"}`,
		`{"date":"x"}`,
		"{\"data\":\"\xff\"}",
		`{}`,
		`[1]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseBatchLine([]byte(s))
		if err != nil {
			return
		}
		var ref refLine
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ref); err != nil {
			t.Fatalf("parseBatchLine accepted %q, encoding/json refuses it: %v", s, err)
		}
		if dec.More() {
			t.Fatalf("parseBatchLine accepted %q, which has more than one value", s)
		}
		var topics []string
		if len(ref.Topic) > 0 && ref.Topic[0] == '"' {
			var one string
			json.Unmarshal(ref.Topic, &one)
			topics = []string{one}
		} else if err := json.Unmarshal(ref.Topic, &topics); len(ref.Topic) > 0 && err != nil {
			t.Fatalf("parseBatchLine accepted the topic of %q: %v", s, err)
		}
		if !slices.Equal(got.Topic, topics) || got.ID != ref.ID || got.Type != ref.Type || got.Data != ref.Data ||
			got.Retry != ref.Retry || got.Private != ref.Private {
			t.Fatalf("%q: got %+v; encoding/json gives %+v (topics %q)", s, got, ref, topics)
		}
	})
}
