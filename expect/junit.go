package expect

import (
	"encoding/xml"
	"fmt"
	"io"
)

// The JUnit XML shapes CI systems read (Jenkins, GitLab, GitHub Actions'
// test reporters): one suite, one test case per assertion.
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Time       string          `xml:"time,attr"`
		Properties []junitProperty `xml:"properties>property"`
		Cases      []junitCase     `xml:"testcase"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Failure   *junitFailure `xml:"failure"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// WriteJUnit writes the report as JUnit XML: a suite named after the URL,
// a test case per assertion, a failure element for each that failed.
func (r *Report) WriteJUnit(w io.Writer) error {
	secs := fmt.Sprintf("%.3f", r.Observed/1000)
	suite := junitSuite{
		Name: "ssekit expect " + r.URL, Tests: len(r.Results), Failures: r.Failures, Time: secs,
		Properties: []junitProperty{
			{"url", r.URL}, {"events", fmt.Sprint(r.Events)}, {"reconnects", fmt.Sprint(r.Reconnects)},
			{"status", fmt.Sprint(r.Status)}, {"end", r.End},
		},
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.Assertion, Classname: "ssekit.expect." + res.Source}
		if !res.Passed {
			c.Failure = &junitFailure{Message: res.Reason, Type: "assertion", Text: res.Source + ": " + res.Assertion + ": " + res.Reason}
		}
		suite.Cases = append(suite.Cases, c)
	}
	out := junitSuites{Tests: suite.Tests, Failures: suite.Failures, Time: secs, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
