package install

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

// BundleImageRepository is the repository of the bundle image; its tag is the bundle's version.
const BundleImageRepository = "plexus/plexus-bundle"

// bundleImageDirs are the bundle's folders the image carries, at its root, as OLM and operator-sdk
// read them: the manifests, the metadata (annotations.yaml) and the scorecard tests the
// annotations point at.
var bundleImageDirs = []string{"manifests", "metadata", "tests/scorecard"}

// BundleImageRef is the reference of the bundle image of a version (plexus/plexus-bundle:v0.2.0).
func BundleImageRef(version string) string { return BundleImageRepository + ":v" + version }

// BundleImage builds the OLM bundle image from the bundle folder without a container tool: one
// layer holding manifests/, metadata/ and tests/scorecard/, and as image labels the annotations of
// metadata/annotations.yaml (OLM reads the bundle's media type, package and channels from the
// labels before it unpacks anything). Owners, modes and times in the layer are fixed, so the same
// bundle gives the same digest.
func BundleImage(bundleDir string) (v1.Image, error) {
	annotations, err := readBundleAnnotations(bundleDir)
	if err != nil {
		return nil, err
	}
	files, err := bundleFiles(bundleDir)
	if err != nil {
		return nil, err
	}
	layerTar, err := filesTarball(files)
	if err != nil {
		return nil, fmt.Errorf("bundle image layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundle image layer: %w", err)
	}
	// A bundle image is never run: no entrypoint; the platform is the one its operator is built for.
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: supportedPlatforms.Arch[0],
		OS:           supportedPlatforms.OS[0],
		Config:       v1.Config{Labels: annotations},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("bundle image config: %w", err)
	}
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, fmt.Errorf("bundle image: %w", err)
	}
	return img, nil
}

// WriteBundleImage builds the bundle image of bundleDir and writes it as an image tarball (what
// `ctr images import`, `docker load` and `skopeo copy docker-archive:` read) at out, tagged ref.
func WriteBundleImage(bundleDir, ref, out string) error {
	img, err := BundleImage(bundleDir)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("bundle image reference %q: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write bundle image: %w", err)
	}
	if err := tarball.WriteToFile(out+".tmp", tag, img); err != nil {
		return fmt.Errorf("write bundle image %s: %w", out, err)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return fmt.Errorf("write bundle image %s: %w", out, err)
	}
	return nil
}

// readBundleAnnotations reads metadata/annotations.yaml of the bundle.
func readBundleAnnotations(bundleDir string) (map[string]string, error) {
	p := filepath.Join(bundleDir, "metadata", "annotations.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("bundle annotations: %w", err)
	}
	var doc struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("bundle annotations %s: %w", p, err)
	}
	if len(doc.Annotations) == 0 {
		return nil, fmt.Errorf("bundle annotations %s: no annotations", p)
	}
	return doc.Annotations, nil
}

// bundleFiles reads every file of bundleImageDirs, keyed by its path in the image (relative to
// bundleDir, slash-separated).
func bundleFiles(bundleDir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, d := range bundleImageDirs {
		err := filepath.WalkDir(filepath.Join(bundleDir, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(bundleDir, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(rel)] = b
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bundle image: read %s: %w", d, err)
		}
	}
	return files, nil
}

// filesTarball is a layer holding files and their parent folders, sorted, owned by root, mode 0644
// (folders 0755), with the zero time.
func filesTarball(files map[string][]byte) ([]byte, error) {
	dirs := map[string]bool{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		paths = append(paths, d+"/")
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: 0o755}
		b, isFile := files[p]
		if isFile {
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(b))}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if isFile {
			if _, err := tw.Write(b); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
