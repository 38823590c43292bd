package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExpectExitCodes: 0 when every assertion holds, 1 with one line per
// failure, 2 for a bad command line or assertion.
func TestExpectExitCodes(t *testing.T) {
	base := startMock(t, filepath.Join(faultsDir, "events.mock")) + "/events"
	checks := filepath.Join(t.TempDir(), "checks.txt")
	os.WriteFile(checks, []byte("# the greeting comes first\nevent greeting data ~ ^hello$\ncount >= 4\n"), 0o600)

	ok := run(t, nil, "expect", "--within", "5s", "-f", checks, "--expect", `event message json $.text == "json"`, "--first-event", "5s", base)
	if ok.code != exitOK || ok.stdout != "" || !strings.Contains(ok.stderr, "4 assertions passed") {
		t.Errorf("passing: exit %d, stdout %q, stderr %q; want 0, nothing on stdout, a summary", ok.code, ok.stdout, ok.stderr)
	}

	bad := run(t, nil, "expect", "--within", "1s", "--no-reconnect", "--expect", "count == 9", "--expect", "event nope", "--expect", "ids unique", base)
	lines := strings.Split(strings.TrimSpace(bad.stdout), "\n")
	if bad.code != exitFailure || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "FAIL --expect 1: count == 9: got 4; want == 9") ||
		!strings.HasPrefix(lines[1], `FAIL --expect 2: event nope: no event of type "nope"`) ||
		!strings.HasPrefix(lines[2], `FAIL --expect 3: ids unique: event 3 repeats id "2"`) ||
		!strings.Contains(bad.stderr, "3 of 3 assertions failed") {
		t.Errorf("failing: exit %d, stdout %q, stderr %q; want 1 and one line per failure (ids unique fails too: event 3 inherits id 2)", bad.code, bad.stdout, bad.stderr)
	}

	for _, args := range [][]string{
		{"expect", base},
		{"expect", "--expect", "frob", base},
		{"expect", "-f", filepath.Join(t.TempDir(), "missing.txt"), base},
		{"expect", "--expect", "event x", "not-a-url"},
		{"expect", "--within", "0s", "--expect", "event x", base},
	} {
		if got := run(t, nil, args...); got.code != exitUsage || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, got.code, got.stderr)
		}
	}
}

// TestExpectJUnitAndJSON: --junit writes a report that reads back as
// JUnit XML; --json prints the report as one JSON object.
func TestExpectJUnitAndJSON(t *testing.T) {
	base := startMock(t, filepath.Join(faultsDir, "status-503.mock")) + "/events"
	junit := filepath.Join(t.TempDir(), "report.xml")
	got := run(t, nil, "expect", "--json", "--junit", junit, "--expect", "status 200", "--expect", "status 503", "--expect", "event *", base)
	if got.code != exitFailure {
		t.Fatalf("exit %d (stderr %q); want 1", got.code, got.stderr)
	}
	var rep struct {
		Status   int
		Failures int
		Results  []struct {
			Assertion string
			Passed    bool
			Reason    string
		}
	}
	if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil || strings.Count(got.stdout, "\n") != 1 {
		t.Fatalf("--json: %v in %q; want one JSON object", err, got.stdout)
	}
	if rep.Status != 503 || rep.Failures != 2 || len(rep.Results) != 3 || !rep.Results[1].Passed || !strings.Contains(rep.Results[2].Reason, "503") {
		t.Errorf("report %+v; want status 503 and two failures naming it", rep)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the JUnit file does not parse: %v\n%s", err, b)
	}
	if doc.Tests != 3 || doc.Failures != 2 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 3 {
		t.Fatalf("JUnit: %+v; want 3 tests, 2 failures in one suite", doc)
	}
	c := doc.Suites[0].Cases
	if c[0].Name != "status 200" || c[0].Failure == nil || !strings.Contains(c[0].Failure.Message, "got 503") || c[1].Failure != nil {
		t.Errorf("JUnit cases %+v; want status 200 failed with got 503, status 503 passed", c)
	}
}
