package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func spec(hierarchy []string, leaf string, state types.SpecState, msg string) types.SpecReport {
	return types.SpecReport{ContainerHierarchyTexts: hierarchy, LeafNodeText: leaf, LeafNodeType: types.NodeTypeIt,
		State: state, RunTime: 12 * time.Second, Failure: types.Failure{Message: msg}}
}

// writeReport writes reports as ginkgo's --json-report does, so the test reads real JSON.
func writeReport(t *testing.T, reports []types.Report) string {
	t.Helper()
	b, err := json.Marshal(reports)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSummaryCountsOnlyTheFocusedSpecsAndASkipIsNoPass(t *testing.T) {
	net := []string{"[sig-network] Services"}
	p := writeReport(t, []types.Report{{SpecReports: []types.SpecReport{
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStatePassed},
		spec(net, "should serve a basic endpoint from pods [Conformance]", types.SpecStatePassed, ""),
		spec(net, "should be able to switch session affinity [Conformance]", types.SpecStateFailed,
			"\n  failed to connect to 10.96.0.12:80: i/o timeout\n  more detail\n"),
		spec([]string{"[sig-network] DNS"}, "should provide DNS for the cluster [Conformance]", types.SpecStateSkipped,
			"Only supported for providers [gce] (not local)"),
		spec(net, "should not be selected [Slow]", types.SpecStateSkipped, ""),
		spec([]string{"[sig-storage] Volumes"}, "should mount [Conformance]", types.SpecStatePassed, ""),
	}}})
	reports, err := readReport(p)
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(reports, regexp.MustCompile(defaultFocus))
	if len(s.passed) != 1 || len(s.failed) != 1 || len(s.skipped) != 1 || s.total() != 3 || s.ok() {
		t.Fatalf("summary = %+v", s)
	}
	if s.failed[0].detail != "failed to connect to 10.96.0.12:80: i/o timeout" {
		t.Errorf("failure detail = %q, want the first error line", s.failed[0].detail)
	}
	var out strings.Builder
	s.print(&out, 754*time.Second)
	for _, want := range []string{
		"PASS [sig-network] Services should serve a basic endpoint from pods [Conformance] (12 s)",
		"FAIL [sig-network] Services should be able to switch session affinity [Conformance] (12 s)\n       failed to connect to 10.96.0.12:80: i/o timeout\n",
		"SKIP [sig-network] DNS should provide DNS for the cluster [Conformance]\n       Only supported for providers [gce] (not local)\n",
		"conformance: 1/3 passed (754 s)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "sig-storage") || strings.Contains(out.String(), "[Slow]") {
		t.Errorf("output names specs outside the focus:\n%s", out.String())
	}
}

func TestAFailedSuiteSetupFailsTheRun(t *testing.T) {
	s := summarize([]types.Report{{SpecReports: []types.SpecReport{
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "nodes not ready"}},
		spec([]string{"[sig-network] DNS"}, "should provide DNS for services [Conformance]", types.SpecStateSkipped, ""),
	}}}, regexp.MustCompile(defaultFocus))
	if s.ok() || len(s.setupFailed) != 1 || s.setupFailed[0].detail != "nodes not ready" {
		t.Fatalf("summary = %+v, want not ok with the setup failure", s)
	}
	if len(s.skipped) != 1 || s.skipped[0].detail != "not run (skipped)" {
		t.Fatalf("skipped = %+v, want the spec listed as not run", s.skipped)
	}
}

func TestImagesAreNamedFromTheSuitesOwnList(t *testing.T) {
	var listed []string
	for _, ti := range testImages {
		listed = append(listed, "images.example.test/e2e/"+ti.nameTag, "other.example.test/"+ti.nameTag+"-rc")
	}
	refs, err := resolveImages(listed)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range testImages {
		if refs[ti.nameTag] != "images.example.test/e2e/"+ti.nameTag {
			t.Errorf("%s resolved to %q", ti.nameTag, refs[ti.nameTag])
		}
	}
	if _, err := resolveImages(listed[2:]); err == nil || !strings.Contains(err.Error(), testImages[0].nameTag) {
		t.Errorf("a missing image: err = %v, want one naming %s", err, testImages[0].nameTag)
	}
}
