package mock_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/mock"
	"github.com/ssekit/sse/ssetest"
)

// TestParseErrors: every bad script is refused with its file, line and why.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"", "t.mock: no route and no step"},
		{"route GET\n", "t.mock:1: route wants METHOD PATH"},
		{"route GET events\n", "t.mock:1: a route's path starts with /"},
		{"route GET /a\n", "t.mock:1: route GET /a has no response"},
		{"> data: x\npause forever\n", "t.mock:2: pause wants a duration"},
		{"> data: x\npause 2h\n", "t.mock:2: pause 2h is longer than the limit"},
		{"> data: x\nfrobnicate\n", `t.mock:2: unknown directive "frobnicate"`},
		{"repeat 3\n> data: x\n", "t.mock:1: repeat without end"},
		{"repeat 1000001\n> data: x\nend\n", "t.mock:1: repeat wants a count from 1 to 100000"},
		{"repeat 2\nrepeat 2\nrepeat 2\nrepeat 2\nrepeat 2\n", "t.mock:5: repeats nested more than 4 deep"},
		{"end\n", "t.mock:1: end without repeat"},
		{"> data: x\nstatus 500\n", "t.mock:2: status must come before the response's first step"},
		{"status 99\n", "t.mock:1: status wants a code from 100 to 999"},
		{"status 101\n", "t.mock:1: status 101 is informational"},
		{"header Bad Name: x\n", "t.mock:1: header wants 'Name: value'"},
		{"bytes data\n", "t.mock:1: bytes wants a double-quoted Go string"},
		{"bigevent 1GiB\n", "t.mock:1: bigevent wants a size"},
		{"bigevent 17MiB\n", "t.mock:1: bigevent wants a size from 1 to"},
		{"chunk 0\n", "t.mock:1: chunk wants N, random N"},
		{"lineend crcr\n", "t.mock:1: lineend wants lf, crlf or cr"},
		{"route GET /a\n> data: x\nmatch header A: b\n", "t.mock:3: match must come before"},
		{"route GET /a\nmatch body ~ (\n", "t.mock:2: bad regexp"},
		{"route GET /a\nattempt 3-2\n", "t.mock:2: attempt range"},
		{"route GET /a\nattempt 0\n", "t.mock:2: attempt wants N"},
		{"route GET /a\n> x\nseed 3\n", "t.mock:3: seed must come before the first route"},
		{"repeat 2\nroute GET /a\n", "t.mock:2: route inside a repeat"},
	} {
		_, err := mock.Parse("t.mock", []byte(tc.script))
		if err == nil || !errors.Is(err, mock.ErrScript) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): got %v; want an ErrScript containing %q", tc.script, err, tc.want)
		}
	}
	big := bytes.Repeat([]byte("# x\n"), mock.MaxScriptSize/4+1)
	if _, err := mock.Parse("big.mock", big); err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("a script over MaxScriptSize: got %v; want it refused", err)
	}
}

// TestTestdataScriptsParse: every script shipped parses.
func TestTestdataScriptsParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.mock")
	if len(files) < 15 {
		t.Fatalf("found %d scripts; want the fault scripts", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mock.Parse(f, b); err != nil {
			t.Error(err)
		}
	}
}

// body fetches path from m and returns the body's bytes.
func body(t *testing.T, m *ssetest.Mock, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := m.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDeterministic: the same seed gives the same writes; another seed
// other ones.
func TestDeterministic(t *testing.T) {
	script := "seed 3\nchunk random 7\nrepeat 30\n> data: {n}\n>\nend\n"
	writes := func(seed uint64) string {
		s, err := mock.Parse("d.mock", []byte(script))
		if err != nil {
			t.Fatal(err)
		}
		rec := &chunkRecorder{ResponseRecorder: httptest.NewRecorder()}
		mock.New(s, mock.Options{Seed: seed}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return strings.Join(rec.chunks, "|")
	}
	a, b, c := writes(0), writes(0), writes(99)
	if a != b {
		t.Errorf("two runs of one seed differ:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("seeds 3 and 99 gave the same writes")
	}
	if strings.ReplaceAll(a, "|", "") != strings.ReplaceAll(c, "|", "") {
		t.Errorf("the bytes differ with the seed; only their split may")
	}
}

// chunkRecorder keeps each write.
type chunkRecorder struct {
	*httptest.ResponseRecorder
	chunks []string
}

func (r *chunkRecorder) Write(p []byte) (int, error) {
	r.chunks = append(r.chunks, string(p))
	return r.ResponseRecorder.Write(p)
}

// TestResume: a Last-Event-ID in the stream resumes after that event; an
// unknown one gets the whole stream; without resume the id is ignored.
func TestResume(t *testing.T) {
	m := ssetest.NewMock(t, "route GET /r\nresume\nrepeat 3\n> id: {n}\n> data: d{n}\n>\npause 5ms\nend\n"+
		"route GET /plain\nrepeat 2\n> id: {n}\n> data: d{n}\n>\nend\n"+
		"route GET /bytes\nresume\nbom\nbytes \"id: a\\r\\ndata: 1\\r\\n\\r\"\nbytes \"\\nid: b\\r\\ndata: 2\\r\\n\\r\\nid: c\\rdata: 3\\r\\r\"\n")
	for _, tc := range []struct{ path, last, want string }{
		{"/r", "", "id: 1\ndata: d1\n\nid: 2\ndata: d2\n\nid: 3\ndata: d3\n\n"},
		{"/r", "1", "id: 2\ndata: d2\n\nid: 3\ndata: d3\n\n"},
		{"/r", "3", ""},
		{"/r", "nope", "id: 1\ndata: d1\n\nid: 2\ndata: d2\n\nid: 3\ndata: d3\n\n"},
		{"/plain", "1", "id: 1\ndata: d1\n\nid: 2\ndata: d2\n\n"},
		// Ids are followed in bytes steps too, CRLF and CR line ends, a
		// CRLF split between two steps, a leading BOM.
		{"/bytes", "a", "id: b\r\ndata: 2\r\n\r\nid: c\rdata: 3\r\r"},
		{"/bytes", "b", "id: c\rdata: 3\r\r"},
		{"/bytes", "c", ""},
	} {
		if _, got := body(t, m, tc.path, "Last-Event-ID", tc.last); got != tc.want {
			t.Errorf("%s after %q: got %q; want %q", tc.path, tc.last, got, tc.want)
		}
	}
}

// TestAttempts: the attempts of a route select its responses; past every
// range, the last one answers.
func TestAttempts(t *testing.T) {
	m := ssetest.NewMock(t, "route GET /a\nattempt 1-2\nstatus 503\nattempt 3\n> data: third\n>\nattempt 5-\nstatus 204\n")
	var got []int
	for range 6 {
		code, _ := body(t, m, "/a")
		got = append(got, code)
	}
	want := []int{503, 503, 200, 204, 204, 204}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attempt %d: got %d; want %d", i+1, got[i], want[i])
		}
	}
}

// TestLimits: a response that would pass a limit is cut, and a mock past
// its connection limit answers 503 to the newcomer while serving the
// others.
func TestLimits(t *testing.T) {
	m := ssetest.NewMockProto(t, ssetest.HTTP1, "route GET /big\nrepeat 100000\nbigevent 1MiB\nend\nroute GET /hold\n> data: x\n>\nhold\n",
		mock.Options{MaxBytes: 1 << 20, MaxConnections: 1, MaxDuration: 5 * time.Second})
	resp, err := m.Client().Get(m.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n > 1<<20 {
		t.Errorf("a response past MaxBytes: read %d bytes, err %v; want it cut before %d with an error", n, err, 1<<20)
	}
	hold, err := m.Client().Get(m.URL + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Body.Close()
	buf := make([]byte, 9)
	if _, err := io.ReadFull(hold.Body, buf); err != nil {
		t.Fatal(err)
	}
	if code, b := body(t, m, "/hold"); code != http.StatusServiceUnavailable || !strings.Contains(b, "too many connections") {
		t.Errorf("past MaxConnections: got %d %q; want 503", code, b)
	}
}

func (r *chunkRecorder) WriteString(s string) (int, error) { return r.Write([]byte(s)) }

// TestDocumentedScripts: the scripts in README.md and docs/mock.md parse.
func TestDocumentedScripts(t *testing.T) {
	n := 0
	for _, doc := range []string{"../README.md", "../docs/mock.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(string(b), "\n```")
		for i := 1; i < len(blocks); i += 2 {
			block, ok := strings.CutPrefix(blocks[i], "\n")
			if !ok || !strings.Contains(block, "\n>") { // a tagged block (```sh), or not a script
				continue
			}
			n++
			if _, err := mock.Parse(doc, []byte(block)); err != nil {
				t.Errorf("%s: block %d: %v", doc, i/2+1, err)
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d scripts in the docs; want the README's and docs/mock.md's", n)
	}
}

// TestAbuse: scripts and requests that would make a mock work without
// bound are cut: steps that send nothing (a billion of them), a request
// body over the limit, a response held past MaxDuration.
func TestAbuse(t *testing.T) {
	m := ssetest.NewMockProto(t, ssetest.HTTP1, "route GET /spin\n> data: x\n>\nrepeat 100000\nrepeat 100000\nlineend lf\nend\nend\n"+
		"route GET /spin-resume\nresume\nrepeat 100000\nrepeat 100000\nchunk 1\nend\nend\n"+
		"route POST /body\nmatch body contains x\n> data: x\n>\n", mock.Options{})
	held := ssetest.NewMockProto(t, ssetest.HTTP1, "route GET /hold\n> data: held\n>\nhold\n", mock.Options{MaxDuration: 300 * time.Millisecond})
	start := time.Now()
	resp, err := m.Client().Get(m.URL + "/spin")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(b) != "data: x\n\n" {
		t.Errorf("10^10 empty steps: got %q, %v; want the event, then the connection cut at the step limit", b, err)
	}
	// A resumption's search for the id is bounded the same way: the
	// connection is dropped before anything is sent.
	req, _ := http.NewRequest(http.MethodGet, m.URL+"/spin-resume", nil)
	req.Header.Set("Last-Event-ID", "nope")
	if resp, err := m.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("resume over 10^10 steps: got %d; want the connection dropped", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, m.URL+"/body", strings.NewReader(strings.Repeat("x", 1<<20+1)))
	resp, err = m.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 1 MiB: got %d; want 413", resp.StatusCode)
	}
	if _, got := body(t, held, "/hold"); got != "data: held\n\n" {
		t.Errorf("hold: got %q; want the event, then the end at MaxDuration", got)
	}
	t.Logf("the abuse took %s", time.Since(start))
}

// TestConcurrent: one mock serves many clients at once, each getting the
// whole stream, and counts every attempt (run with -race).
func TestConcurrent(t *testing.T) {
	m := ssetest.NewMockProto(t, ssetest.HTTP2, "route GET /e\nheader X-Test: a\nheader X-Test: b\ngzip\nchunk random 4\nrepeat 50\n> id: {n}\n> data: {attempt}\n>\nend\n", mock.Options{})
	const clients = 16
	errs := make(chan error, clients)
	for range clients {
		go func() {
			resp, err := m.Client().Get(m.URL + "/e")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && (strings.Count(string(b), "\n\n") != 50 || len(resp.Header.Values("X-Test")) != 2) {
				err = errors.New("incomplete: " + strconv.Itoa(len(b)) + " bytes")
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := len(m.Mock.Served()); n != clients {
		t.Errorf("served %d; want %d", n, clients)
	}
	attempts := map[int]bool{}
	for _, s := range m.Mock.Served() {
		attempts[s.Attempt] = true
	}
	if len(attempts) != clients {
		t.Errorf("attempt numbers %v; want 1 to %d, each once", attempts, clients)
	}
}
