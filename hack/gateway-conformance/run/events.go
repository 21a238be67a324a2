package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// suiteTest is the top-level test the conformance binary runs; each conformance test is one of its
// subtests (TestConformance/HTTPRouteSimpleSameNamespace), which have subtests of their own.
const suiteTest = "TestConformance"

// event is one line of `go tool test2json`'s output.
type event struct {
	Action  string  `json:"Action"`
	Test    string  `json:"Test"`
	Output  string  `json:"Output"`
	Elapsed float64 `json:"Elapsed"`
}

// outcome is one conformance test's result as the run prints it.
type outcome struct {
	name   string
	detail string // failures: the first error line; skips: the reason
	took   time.Duration
}

// results are the conformance tests a run finished, by result, each list sorted by name.
type results struct {
	passed, failed, skipped []outcome
	// suiteFailed is the first error of the suite itself (set-up, base resources) when it failed
	// outside any conformance test.
	suiteFailed string
	// features are the features each test that ran relies on, as it logged them.
	features map[string][]string
}

// featuresLogged is what a test logs before its features ("Running X, relying on the following
// features: HTTPRoute-STANDARD, HTTPRouteQueryParamMatching-STANDARD").
const featuresLogged = "relying on the following features: "

// parseFeatures returns the feature names of a featuresLogged line (without their channel).
func parseFeatures(line string) []string {
	_, list, ok := strings.Cut(line, featuresLogged)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range strings.Split(strings.TrimSpace(list), ", ") {
		if i := strings.LastIndex(f, "-"); i > 0 {
			f = f[:i]
		}
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// conformanceTest returns the conformance test a test2json name belongs to and whether it is that
// test itself (not one of its subtests); ok is false for the suite's own test and other tests.
func conformanceTest(name string) (test string, self, ok bool) {
	rest, found := strings.CutPrefix(name, suiteTest+"/")
	if !found || rest == "" {
		return "", false, false
	}
	test, _, sub := strings.Cut(rest, "/")
	return test, !sub, true
}

// readEvents folds test2json's stream into results: the conformance tests' results, each failure's
// first error line (the first `Error:` of testify, else the first line it logged) and each skip's
// reason (its last line logged before the skip).
func readEvents(r io.Reader) (results, error) {
	res := results{features: map[string][]string{}}
	logs := map[string][]string{} // conformance test -> lines it and its subtests logged
	var suiteLog []string
	suiteFailed := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return res, fmt.Errorf("test2json line %q: %w", line, err)
		}
		test, self, ok := conformanceTest(e.Test)
		switch {
		case e.Test == suiteTest && e.Action == "output":
			suiteLog = append(suiteLog, e.Output)
		case e.Test == suiteTest && e.Action == "fail":
			suiteFailed = true
		case !ok:
		case e.Action == "output":
			logs[test] = append(logs[test], e.Output)
			if f := parseFeatures(e.Output); self && f != nil {
				res.features[test] = f
			}
		case self && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			o := outcome{name: test, took: time.Duration(e.Elapsed * float64(time.Second))}
			switch e.Action {
			case "pass":
				res.passed = append(res.passed, o)
			case "fail":
				o.detail = firstError(logs[test])
				res.failed = append(res.failed, o)
			case "skip":
				o.detail = skipReason(logs[test])
				res.skipped = append(res.skipped, o)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read test2json output: %w", err)
	}
	if suiteFailed && len(res.failed) == 0 {
		res.suiteFailed = firstError(suiteLog)
		if res.suiteFailed == "" {
			res.suiteFailed = "the suite failed outside the conformance tests (see its output)"
		}
	}
	for _, l := range [][]outcome{res.passed, res.failed, res.skipped} {
		sort.Slice(l, func(i, j int) bool { return l[i].name < l[j].name })
	}
	return res, nil
}

// logLine is a line a test logged without go test's framing (`=== RUN`, `--- FAIL`, file:line).
func logLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") || s == "" {
		return ""
	}
	// "helpers.go:123: message" -> "message"
	if i := strings.Index(s, ": "); i > 0 && strings.Contains(s[:i], ".go:") && !strings.Contains(s[:i], " ") {
		s = strings.TrimSpace(s[i+2:])
	}
	return s
}

// firstError is the first line of a failure: testify's `Error:` line (the message after it, or the
// line after it when it is empty), else the first `Error Trace`-free line containing "fail" or
// "error", else the first line logged.
func firstError(lines []string) string {
	var first, failing string
	for i, raw := range lines {
		l := logLine(raw)
		if l == "" {
			continue
		}
		if msg, ok := strings.CutPrefix(l, "Error:"); ok {
			msg = strings.TrimSpace(msg)
			// testify puts a wrapped error on the next line ("Received unexpected error:").
			if (msg == "" || strings.HasSuffix(msg, ":")) && i+1 < len(lines) {
				msg = strings.TrimSpace(msg + " " + logLine(lines[i+1]))
			}
			return oneLine(msg)
		}
		if first == "" {
			first = l
		}
		lower := strings.ToLower(l)
		if failing == "" && !strings.HasPrefix(l, "Error Trace:") && (strings.Contains(lower, "fail") || strings.Contains(lower, "error")) {
			failing = l
		}
	}
	if failing != "" {
		return oneLine(failing)
	}
	return oneLine(first)
}

// skipReason is the last line a test logged before it was skipped (the suite logs the reason and
// skips right after).
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := logLine(lines[i]); l != "" {
			return oneLine(l)
		}
	}
	return "no reason given"
}

// oneLine shortens a message to one line of at most 300 characters.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
