package install

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
)

// repoRoot is the repository root seen from this package's folder.
const repoRoot = "../.."

// explainedWarnings are the validator warnings the committed bundle is allowed to have, each
// explained in the README's OLM section, with a check that it is the explained case and no other.
var explainedWarnings = []struct {
	contains string
	isCase   func(msg string) bool
}{
	// The multi-architecture validator pulls every image of the CSV with docker or podman to read
	// its platforms. Plexus's images are built on the machine without a registry or a container
	// tool (and tests never reach a registry), so it can only say it could not inspect them...
	{"unable to inspect the image", func(string) bool { return true }},
	// ...and, having no platforms for the image (it records "error/error"), that the node affinity
	// (linux/amd64, as the CSV's labels say) cannot be matched against them.
	{`["error/error"]`, func(string) bool { return true }},
	// RBAC rules name a group and resource without a version, so the deprecated-API check flags
	// every rule on endpointslices, events.k8s.io events and poddisruptionbudgets as if it used
	// their v1beta1 versions removed in 1.25. Plexus uses only their v1 APIs.
	{"deprecated and removed in v1.25", onlyV1RuleResources},
	// The operator creates the Gateway API's standard CRDs when ingress.gatewayAPI is enabled and
	// they are absent (never updates or deletes one); RBAC cannot limit create by name.
	{"permissions to create CRD", func(msg string) bool {
		return strings.Contains(msg, "CSV contains permissions to create CRD")
	}},
}

// onlyV1RuleResources is true when the 1.25 warning names only rules of the CSV (no object) on
// resources Plexus uses at v1.
func onlyV1RuleResources(msg string) bool {
	_, list, ok := strings.Cut(msg, "Migrate the API(s) for ")
	if !ok {
		return false
	}
	for _, m := range regexp.MustCompile(`(\w+): \(\[([^\]]*)\]\)`).FindAllStringSubmatch(list, -1) {
		switch m[1] {
		case "endpointslices", "events", "poddisruptionbudgets":
		default:
			return false
		}
		if strings.Contains(m[2], "CustomResourceDefinitions") || !strings.Contains(m[2], "StrategySpec") {
			return false
		}
	}
	return true
}

// TestBundlePassesEveryOLMValidator runs operator-framework's validation.AllValidators over the
// committed bundle/ — the CSV, CRD, bundle, OperatorHub, categories, capabilities, good
// practices, deprecated APIs, community and multi-architecture checks — and requires zero errors
// and no warnings other than the explained ones.
func TestBundlePassesEveryOLMValidator(t *testing.T) {
	// No container tool on PATH: the multi-architecture validator would otherwise try to pull the
	// images from a registry.
	t.Setenv("PATH", t.TempDir())
	bundle, err := manifests.GetBundleFromDir(filepath.Join(repoRoot, BundleDir))
	if err != nil {
		t.Fatalf("load bundle/: %v", err)
	}
	if bundle.CSV == nil || len(bundle.V1CRDs) != 2 {
		t.Fatalf("bundle/ should hold a CSV and the two CRDs; got CSV %v, %d CRDs", bundle.CSV != nil, len(bundle.V1CRDs))
	}
	objs := append(bundle.ObjectsToValidate(), map[string]string{"k8s-version": PlexusMetadata.MinKubeVersion})
	results := validation.AllValidators.Validate(objs...)
	if len(results) < len(validation.AllValidators) {
		t.Errorf("%d validators reported, want at least %d (one per validator)", len(results), len(validation.AllValidators))
	}
	var unexplained int
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("%s: error: %s", r.Name, e.Error())
		}
		for _, w := range r.Warnings {
			if !explained(w) {
				unexplained++
				t.Errorf("%s: warning: %s", r.Name, w.Error())
			} else {
				t.Logf("%s: explained warning (README, OLM): %s", r.Name, w.Error())
			}
		}
	}
	if unexplained > 0 {
		t.Logf("fix the generator (internal/install) or explain the warning in the README and in explainedWarnings")
	}
}

func explained(w errors.Error) bool {
	for _, e := range explainedWarnings {
		if strings.Contains(w.Error(), e.contains) && e.isCase(w.Error()) {
			return true
		}
	}
	return false
}

// TestCommittedArtifactsAreCurrent fails when bundle/ or the chart's generated files differ from
// what config/ makes now, naming the stale files and the command that refreshes them.
func TestCommittedArtifactsAreCurrent(t *testing.T) {
	files, err := Generate(repoRoot, DefaultVersion)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := Stale(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stale {
		t.Errorf("stale: %s (run make manifests)", s)
	}
}
