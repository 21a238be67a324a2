package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallModesAreParsedAndBadOnesNamed(t *testing.T) {
	for in, want := range map[string]InstallMode{"": InstallKustomize, "kustomize": InstallKustomize, "helm": InstallHelm, "manifests": InstallManifests} {
		got, err := ParseInstallMode(in)
		if err != nil || got != want {
			t.Errorf("ParseInstallMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseInstallMode("olm")
	if err == nil || !strings.Contains(err.Error(), "--install") || !strings.Contains(err.Error(), "kustomize, helm, manifests") {
		t.Errorf("ParseInstallMode(olm) = %v; want an error naming the flag and every choice", err)
	}
}

// TestHelmValuesCarryTheLabImages: a Helm install runs the images the lab built.
func TestHelmValuesCarryTheLabImages(t *testing.T) {
	c := NamedConfig(filepath.Join("..", ".."), "helmvalues", 7)
	c.Dir = t.TempDir()
	path, err := c.WriteHelmValues()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Images map[string]string }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Images["operator"] != OperatorImage || v.Images["agent"] != AgentImage || v.Images["dns"] != DNSImage {
		t.Errorf("images %v, want the lab's %s, %s, %s", v.Images, OperatorImage, AgentImage, DNSImage)
	}
}
