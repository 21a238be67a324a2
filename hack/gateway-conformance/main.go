// Command gateway-conformance writes the image tarball of the Gateway API conformance suite's echo
// backend: one static binary as the image's entrypoint, under the exact name the suite's
// manifests use (hack/gateway-conformance/build.sh passes it, read from the module).
//
//	go run ./hack/gateway-conformance -binary echo-basic -ref NAME:TAG -out image.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// nonroot is the user the upstream image runs as (distroless "nonroot").
const nonroot = "65532:65532"

func main() {
	binary := flag.String("binary", "", "the static echo-basic binary")
	ref := flag.String("ref", "", "the image name the suite uses")
	out := flag.String("out", "", "the image tarball to write")
	flag.Parse()
	if err := write(*binary, *ref, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gateway-conformance:", err)
		os.Exit(1)
	}
}

// write makes a one-layer image holding /echo-basic and writes it as a tarball tagged ref.
func write(binary, ref, out string) error {
	if binary == "" || ref == "" || out == "" {
		return fmt.Errorf("-binary, -ref and -out are required")
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read the binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Fixed times and owners: the same binary gives the same digest.
	if err := tw.WriteHeader(&tar.Header{Name: "echo-basic", Mode: 0o755, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		Config: v1.Config{Entrypoint: []string{"/echo-basic"}, User: nonroot}, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(out+".tmp", tag, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(out+".tmp", out)
}
