package install

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestBundleImageCarriesTheBundleAndItsLabels builds the bundle image of the committed bundle into
// a tarball, reads it back, and checks what OLM reads: the labels equal
// metadata/annotations.yaml (media type, manifests and metadata folders, package, channels), and
// the one layer holds exactly the bundle's manifests, metadata and scorecard files.
func TestBundleImageCarriesTheBundleAndItsLabels(t *testing.T) {
	dir := filepath.Join(repoRoot, BundleDir)
	out := filepath.Join(t.TempDir(), "bundle.tar")
	ref := BundleImageRef(DefaultVersion)
	if err := WriteBundleImage(dir, ref, out); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", out, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want, err := readBundleAnnotations(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"operators.operatorframework.io.bundle.mediatype.v1", "operators.operatorframework.io.bundle.manifests.v1",
		"operators.operatorframework.io.bundle.metadata.v1", "operators.operatorframework.io.bundle.package.v1",
		"operators.operatorframework.io.bundle.channels.v1", "operators.operatorframework.io.bundle.channel.default.v1"} {
		if want[k] == "" {
			t.Errorf("annotations.yaml has no %s", k)
		}
		if cfg.Config.Labels[k] != want[k] {
			t.Errorf("label %s = %q, want %q (annotations.yaml)", k, cfg.Config.Labels[k], want[k])
		}
	}
	if len(cfg.Config.Labels) != len(want) {
		t.Errorf("labels %v, want exactly the annotations %v", cfg.Config.Labels, want)
	}
	if cfg.Config.Labels["operators.operatorframework.io.bundle.package.v1"] != PackageName {
		t.Errorf("package label %q, want %q", cfg.Config.Labels["operators.operatorframework.io.bundle.package.v1"], PackageName)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			got = append(got, h.Name)
		}
	}
	files, err := bundleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wantFiles []string
	for p := range files {
		wantFiles = append(wantFiles, p)
	}
	sort.Strings(wantFiles)
	if len(got) != len(wantFiles) {
		t.Fatalf("layer files %v, want %v", got, wantFiles)
	}
	for i := range got {
		if got[i] != wantFiles[i] {
			t.Fatalf("layer files %v, want %v", got, wantFiles)
		}
	}
	for _, must := range []string{"manifests/plexus.clusterserviceversion.yaml", "manifests/plexus.dev_clusternetworks.yaml",
		"metadata/annotations.yaml", "tests/scorecard/config.yaml"} {
		if _, ok := files[must]; !ok {
			t.Errorf("bundle image lacks %s (files: %v)", must, got)
		}
	}

	// Same bundle, same digest: the image is reproducible.
	again, err := BundleImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of one bundle: digests %s and %s", d1, d2)
	}
}
