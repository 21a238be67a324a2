package lab

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestDNSImageRunsCoreDNS packages the CoreDNS hack/coredns/build.sh built and runs the binary
// taken back out of the image: the image the operator's default names holds a working CoreDNS.
func TestDNSImageRunsCoreDNS(t *testing.T) {
	c := DefaultConfig("../..")
	spec := c.dnsImageSpec()
	if _, err := os.Stat(c.corednsBinary()); err != nil {
		t.Fatalf("no CoreDNS at %s: run hack/coredns/build.sh first (%v)", c.corednsBinary(), err)
	}
	if spec.Ref != DNSImage || !strings.HasPrefix(DNSImage, "plexus/") || !strings.HasSuffix(AgentImage, ":dev") || !strings.HasSuffix(DNSImage, ":dev") {
		t.Fatalf("DNS image %s is not named like the agent's %s", DNSImage, AgentImage)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, spec.File)
	if _, err := buildImage(out, spec); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(DNSImage)
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/coredns" {
		t.Fatalf("entrypoint %v, want /coredns", cfg.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	bin := filepath.Join(dir, "coredns")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("the image has no /coredns")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "coredns" {
			continue
		}
		f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
		break
	}
	v, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "CoreDNS-"+strings.TrimPrefix(corednsVersion, "v")) {
		t.Fatalf("coredns -version: %v: %s", err, v)
	}
}
