package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"sigs.k8s.io/yaml"
)

// profile is the part of one profile of the suite's conformance report the summary uses (the
// report's own types live in the conformance module, which the repo's go.mod does not require).
type profile struct {
	Name     string `json:"name"`
	Summary  string `json:"summary"`
	Core     status `json:"core"`
	Extended *struct {
		status              `json:",inline"`
		SupportedFeatures   []string `json:"supportedFeatures"`
		UnsupportedFeatures []string `json:"unsupportedFeatures"`
	} `json:"extended"`
}

// status is the result of a profile's core or extended tests.
type status struct {
	Result     string `json:"result"`
	Statistics struct {
		Passed  int `json:"Passed"`
		Failed  int `json:"Failed"`
		Skipped int `json:"Skipped"`
	} `json:"statistics"`
	SkippedTests []string `json:"skippedTests"`
	FailedTests  []string `json:"failedTests"`
}

// report is the conformance report the suite writes (-report-output).
type report struct {
	GatewayAPIVersion string    `json:"gatewayAPIVersion"`
	GatewayAPIChannel string    `json:"gatewayAPIChannel"`
	Profiles          []profile `json:"profiles"`
}

// readReport reads the suite's conformance report.
func readReport(path string) (report, error) {
	var r report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("the suite's conformance report: %w", err)
	}
	if err := yaml.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("parse the conformance report %s: %w", path, err)
	}
	return r, nil
}

// profileNamed returns the report's profile called name.
func (r report) profileNamed(name string) (profile, bool) {
	for _, p := range r.Profiles {
		if p.Name == name {
			return p, true
		}
	}
	return profile{}, false
}

// extendedFeaturesPassed counts the extended features the implementation claims whose tests all
// passed: a feature stays counted unless the report names a failed test of it. The report lists
// failed tests, not their features, so testFeatures maps a test to the features it needs (from the
// suite's output); a failed test with unknown features discounts nothing.
func (p profile) extendedFeaturesPassed(testFeatures map[string][]string) int {
	if p.Extended == nil {
		return 0
	}
	n := 0
	for _, f := range p.Extended.SupportedFeatures {
		ok := true
		for _, t := range p.Extended.FailedTests {
			if slices.Contains(testFeatures[t], f) {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// summaryLine is the run's last line: core tests passed of those that ran or were skipped, and the
// extended features passed.
func summaryLine(p profile, testFeatures map[string][]string, took time.Duration) string {
	c := p.Core.Statistics
	line := fmt.Sprintf("gateway-conformance: %d/%d core passed, %d extended", c.Passed, c.Passed+c.Failed+c.Skipped, p.extendedFeaturesPassed(testFeatures))
	if e := p.Extended; e != nil {
		s := e.Statistics
		line += fmt.Sprintf(" features (extended tests %d/%d passed)", s.Passed, s.Passed+s.Failed+s.Skipped)
	}
	return line + fmt.Sprintf(" (%s)", took.Round(time.Second))
}

// printResults writes the pass list, the failures with their first error, the skips with their
// reason and the profile's result, then the summary line.
func printResults(w io.Writer, res results, p profile, testFeatures map[string][]string, took time.Duration) {
	// level tags a failed or skipped test with the report's level; a test skipped for a feature
	// not claimed is in neither list.
	level := func(test string) string {
		switch {
		case slices.Contains(p.Core.FailedTests, test) || slices.Contains(p.Core.SkippedTests, test):
			return " [core]"
		case p.Extended != nil && (slices.Contains(p.Extended.FailedTests, test) || slices.Contains(p.Extended.SkippedTests, test)):
			return " [extended]"
		}
		return ""
	}
	fmt.Fprintf(w, "passed (%d):\n", len(res.passed))
	for _, o := range res.passed {
		fmt.Fprintf(w, "  PASS %s (%s)\n", o.name, o.took.Round(100*time.Millisecond))
	}
	fmt.Fprintf(w, "failed (%d):\n", len(res.failed))
	for _, o := range res.failed {
		fmt.Fprintf(w, "  FAIL %s%s (%s): %s\n", o.name, level(o.name), o.took.Round(100*time.Millisecond), o.detail)
	}
	fmt.Fprintf(w, "skipped (%d):\n", len(res.skipped))
	for _, o := range res.skipped {
		fmt.Fprintf(w, "  SKIP %s%s: %s\n", o.name, level(o.name), o.detail)
	}
	if res.suiteFailed != "" {
		fmt.Fprintf(w, "suite failed: %s\n", res.suiteFailed)
	}
	if p.Extended != nil {
		fmt.Fprintf(w, "extended features claimed (%d): %v\n", len(p.Extended.SupportedFeatures), p.Extended.SupportedFeatures)
		fmt.Fprintf(w, "extended features not claimed (%d): %v\n", len(p.Extended.UnsupportedFeatures), p.Extended.UnsupportedFeatures)
	}
	fmt.Fprintf(w, "%s: %s\n", p.Name, p.Summary)
	fmt.Fprintln(w, summaryLine(p, testFeatures, took))
}
