package install

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// releaseNamespace is the namespace the chart tests render and install into.
const releaseNamespace = "plexus-system"

// fullValues sets every value of the chart to something other than its default.
var fullValues = filepath.Join(repoRoot, ChartDir, "ci/full-values.yaml")

// helmBinary is the helm CLI `make helm` builds. Without it the chart tests skip, unless
// PLEXUS_REQUIRE_HELM=1 (make test) turns the skip into a failure.
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PLEXUS_HELM")
	if path == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(cache, "plexus/tools/helm-v4.3.2/helm")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("PLEXUS_REQUIRE_HELM") == "1" {
			t.Fatalf("no helm CLI at %s: run make helm", path)
		}
		t.Skipf("no helm CLI at %s: run make helm (PLEXUS_REQUIRE_HELM=1 makes this a failure)", path)
	}
	return path
}

// runHelm runs helm with a home of its own (no user config, cache or repositories).
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func chartPath() string { return filepath.Join(repoRoot, ChartDir) }

// renderChart is `helm template` of the chart with extra args, parsed into objects.
func renderChart(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "plexus", chartPath(), "--namespace", releaseNamespace}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("helm template output is not YAML: %v\n%s", err, out)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestHelmLintIsClean(t *testing.T) {
	for name, args := range map[string][]string{"default values": nil, "full values": {"--values", fullValues}} {
		t.Run(name, func(t *testing.T) {
			out, err := runHelm(t, append([]string{"lint", "--strict", chartPath()}, args...)...)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint reported problems:\n%s", out)
			}
		})
	}
}

// TestHelmDefaultInstallIsConfigDefault: with the default values the chart renders what
// config/default builds (less the Namespace, which Helm's release namespace is), in the release
// namespace, plus nothing.
func TestHelmDefaultInstallIsConfigDefault(t *testing.T) {
	built, err := Build(filepath.Join(repoRoot, "config/default"))
	if err != nil {
		t.Fatal(err)
	}
	var want []*unstructured.Unstructured
	for _, o := range built {
		if o.GetKind() != "Namespace" {
			want = append(want, o)
		}
	}
	got := renderChart(t)
	if g, w := strings.Join(ids(got), "\n"), strings.Join(ids(want), "\n"); g != w {
		t.Fatalf("helm template objects differ from config/default's:\n got:\n%s\nwant:\n%s", g, w)
	}
	dep := find(got, "Deployment", "plexus-operator")
	wantDep := find(want, "Deployment", "plexus-operator")
	for _, path := range [][]string{{"spec", "replicas"}, {"spec", "template", "spec", "tolerations"}, {"spec", "template", "spec", "priorityClassName"}} {
		g, _, _ := unstructured.NestedFieldNoCopy(dep.Object, path...)
		w, _, _ := unstructured.NestedFieldNoCopy(wantDep.Object, path...)
		if !equalJSON(t, g, w) {
			t.Errorf("%s: chart default %v, config/default %v", strings.Join(path, "."), g, w)
		}
	}
	for _, crd := range []string{"clusternetworks.plexus.dev", "nodenetworks.plexus.dev"} {
		if o := find(got, "CustomResourceDefinition", crd); o == nil || o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s should be rendered with helm.sh/resource-policy: keep by default", crd)
		}
	}
	if find(got, "ClusterNetwork", "default") != nil {
		t.Errorf("the default values should not create a ClusterNetwork")
	}
}

// TestHelmFullValuesAreWiredIn: each value lands where it should in the rendered objects.
func TestHelmFullValuesAreWiredIn(t *testing.T) {
	got := renderChart(t, "--values", fullValues)
	dep := find(got, "Deployment", "plexus-operator")
	if dep == nil {
		t.Fatal("no operator Deployment rendered")
	}
	pod := dep.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	checks := map[string][2]any{
		"replicas":          {dep.Object["spec"].(map[string]any)["replicas"], int64(1)},
		"image":             {c["image"], "registry.example/plexus/plexus-operator:v0.1.0"},
		"imagePullPolicy":   {c["imagePullPolicy"], "Always"},
		"memory limit":      {c["resources"].(map[string]any)["limits"].(map[string]any)["memory"], "512Mi"},
		"priorityClassName": {pod["priorityClassName"], "system-node-critical"},
		"nodeSelector":      {pod["nodeSelector"], map[string]any{"kubernetes.io/os": "linux"}},
	}
	for name, c := range checks {
		if !equalJSON(t, c[0], c[1]) {
			t.Errorf("%s: got %v, want %v", name, c[0], c[1])
		}
	}
	if _, ok := pod["affinity"]; !ok {
		t.Errorf("affinity not rendered")
	}
	args := strings.Join(toStrings(c["args"]), " ")
	for _, want := range []string{"--agent-image=registry.example/plexus/plexus-agent:v0.1.0", "--dns-image=registry.example/plexus/coredns:v0.1.0",
		"--ingress-image=registry.example/plexus/plexus-ingress:v0.1.0", "--zap-log-level=debug"} {
		if !strings.Contains(args, want) {
			t.Errorf("operator args %q lack %s", args, want)
		}
	}
	if o := find(got, "CustomResourceDefinition", "clusternetworks.plexus.dev"); o == nil || o.GetAnnotations()["helm.sh/resource-policy"] != "" {
		t.Errorf("with crds.keep=false the CRD should be rendered without the keep policy")
	}
	cn := find(got, "ClusterNetwork", "default")
	if cn == nil {
		t.Fatal("clusterNetwork.create=true rendered no ClusterNetwork")
	}
	if fams, _, _ := unstructured.NestedStringSlice(cn.Object, "spec", "ipFamilies"); strings.Join(fams, ",") != "IPv4,IPv6" {
		t.Errorf("ClusterNetwork spec.ipFamilies = %v", fams)
	}
	if crds := renderChart(t, "--set", "crds.install=false"); find(crds, "CustomResourceDefinition", "clusternetworks.plexus.dev") != nil {
		t.Errorf("crds.install=false still renders the CRDs")
	}
}

// TestHelmSchemaRejectsBadValues: values.schema.json makes a bad value fail with a message that
// names it, before anything reaches the cluster.
func TestHelmSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct{ set, mentions string }{
		{"operator.replicas=0", "replicas"},
		{"imagePullPolicy=Sometimes", "imagePullPolicy"},
		{"logLevel=loud", "logLevel"},
		{"images.agent=", "agent"},
		{"clusterNetwork.create=true", "spec"},
		{"operatr.replicas=1", "operatr"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out, err := runHelm(t, "template", "plexus", chartPath(), "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded; the schema should refuse it", tc.set)
			}
			if !strings.Contains(out, tc.mentions) {
				t.Errorf("the refusal should mention %q:\n%s", tc.mentions, out)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
