package sse_test

import (
	"encoding/json"
	"io"
	"os"
	"testing"
)

// vector is one case of testdata/sse-vectors.json (the project's conformance
// vectors, each checked against Chromium's EventSource).
type vector struct {
	Name        string        `json:"name"`
	Input       string        `json:"input"`
	Events      []vectorEvent `json:"events"`
	Retry       *int64        `json:"retry"`
	LastEventID string        `json:"last_event_id"`
	Note        string        `json:"note"`
}

type vectorEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/sse-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// chunkReader returns its input in reads of at most n bytes.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.data))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

// splitReader returns its input in the given pieces, one per Read.
type splitReader struct{ pieces [][]byte }

func (r *splitReader) Read(p []byte) (int, error) {
	for len(r.pieces) > 0 && len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces[0] = r.pieces[0][n:]
	return n, nil
}
