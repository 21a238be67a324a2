package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// outcome is one spec's result as the run prints it.
type outcome struct {
	name   string
	detail string // failures: the first line of the error; skips: the reason
	took   time.Duration
}

// summary is what a run did to the specs its focus selects.
type summary struct {
	passed, failed, skipped []outcome
	// setupFailed are suite-level nodes (BeforeSuite, AfterSuite, ...) that failed: every spec
	// after them failed or did not run.
	setupFailed []outcome
}

// total is the number of selected specs.
func (s summary) total() int { return len(s.passed) + len(s.failed) + len(s.skipped) }

// ok says whether every selected spec ran and passed and no suite node failed; skips are not passes.
func (s summary) ok() bool { return len(s.failed) == 0 && len(s.setupFailed) == 0 }

// readReport reads a ginkgo JSON report (--json-report).
func readReport(file string) ([]types.Report, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the ginkgo report: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("parse the ginkgo report %s: %w", file, err)
	}
	return reports, nil
}

// summarize sorts the specs of the reports whose full name matches focus by their outcome. A spec
// ginkgo never ran because of the focus is not selected; one the suite skipped (Skip, a provider
// it does not support) is, and counts against the pass count.
func summarize(reports []types.Report, focus *regexp.Regexp) summary {
	var s summary
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				if sr.State.Is(types.SpecStateFailureStates) {
					s.setupFailed = append(s.setupFailed, outcome{name: "[" + sr.LeafNodeType.String() + "]", detail: firstLine(sr.Failure.Message), took: sr.RunTime})
				}
				continue
			}
			name := sr.FullText()
			if !focus.MatchString(name) {
				continue
			}
			o := outcome{name: name, took: sr.RunTime}
			switch {
			case sr.State == types.SpecStatePassed:
				s.passed = append(s.passed, o)
			case sr.State.Is(types.SpecStateFailureStates):
				o.detail = firstLine(sr.Failure.Message)
				s.failed = append(s.failed, o)
			default: // skipped or pending
				o.detail = firstLine(sr.Failure.Message)
				if o.detail == "" {
					o.detail = "not run (" + sr.State.String() + ")"
				}
				s.skipped = append(s.skipped, o)
			}
		}
	}
	for _, l := range [][]outcome{s.passed, s.failed, s.skipped} {
		sort.Slice(l, func(i, j int) bool { return l[i].name < l[j].name })
	}
	return s
}

// firstLine is the first non-empty line of a message.
func firstLine(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// print writes the pass list, the failures with their first error line, the skips with their
// reason, and the summary line `conformance: N/M passed (T s)`.
func (s summary) print(w io.Writer, elapsed time.Duration) {
	fmt.Fprintf(w, "\n== passed (%d)\n", len(s.passed))
	for _, o := range s.passed {
		fmt.Fprintf(w, "  PASS %s (%.0f s)\n", o.name, o.took.Seconds())
	}
	if len(s.setupFailed) > 0 {
		fmt.Fprintf(w, "== suite setup failed (%d)\n", len(s.setupFailed))
		for _, o := range s.setupFailed {
			fmt.Fprintf(w, "  FAIL %s\n       %s\n", o.name, o.detail)
		}
	}
	if len(s.failed) > 0 {
		fmt.Fprintf(w, "== failed (%d)\n", len(s.failed))
		for _, o := range s.failed {
			fmt.Fprintf(w, "  FAIL %s (%.0f s)\n       %s\n", o.name, o.took.Seconds(), o.detail)
		}
	}
	if len(s.skipped) > 0 {
		fmt.Fprintf(w, "== skipped, not passed (%d)\n", len(s.skipped))
		for _, o := range s.skipped {
			fmt.Fprintf(w, "  SKIP %s\n       %s\n", o.name, o.detail)
		}
	}
	fmt.Fprintf(w, "conformance: %d/%d passed (%.0f s)\n", len(s.passed), s.total(), elapsed.Seconds())
}
