// Command gen-install writes the OLM bundle (bundle/), the Helm chart's generated files
// (config/helm/plexus) and the rendered install manifest (dist/install.yaml) from the kustomize
// tree under config/. `make manifests` runs it;
// `make verify-bundle` runs it with -verify, which writes nothing and fails when a committed file
// is stale; `make bundle-image` runs it with -bundle-image FILE, which builds the OLM bundle image
// from the committed bundle/ without a container tool and writes it as an image tarball.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/plexus-net/plexus/internal/install"
)

func main() {
	root := flag.String("root", ".", "repository root (config/ is read from it, bundle/ and config/helm written into it)")
	version := flag.String("version", install.DefaultVersion, "version of the bundle and the chart")
	verify := flag.Bool("verify", false, "write nothing; fail when a committed generated file differs from what config/ makes")
	bundleImage := flag.String("bundle-image", "", "instead: build the OLM bundle image of bundle/ and write it as an image tarball to this file")
	flag.Parse()
	if *bundleImage != "" {
		ref := install.BundleImageRef(*version)
		if err := install.WriteBundleImage(filepath.Join(*root, install.BundleDir), ref, *bundleImage); err != nil {
			fmt.Fprintln(os.Stderr, "gen-install:", err)
			os.Exit(1)
		}
		fmt.Printf("==> [bundle] image %s written to %s\n", ref, *bundleImage)
		return
	}
	if err := run(*root, *version, *verify); err != nil {
		fmt.Fprintln(os.Stderr, "gen-install:", err)
		os.Exit(1)
	}
}

func run(root, version string, verify bool) error {
	files, err := install.Generate(root, version)
	if err != nil {
		return err
	}
	if verify {
		stale, err := install.Stale(root, files)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("the OLM bundle, the Helm chart or dist/ is out of date with config/: run make manifests\n  %s", strings.Join(stale, "\n  "))
		}
		fmt.Printf("==> [bundle] %s, %s and %s up to date with config/\n", install.BundleDir, install.ChartDir, install.DistDir)
		return nil
	}
	if err := install.Write(root, files); err != nil {
		return err
	}
	fmt.Printf("==> [bundle] wrote %d files of %s, %s and %s (version %s)\n", len(files), install.BundleDir, install.ChartDir, install.DistDir, version)
	return nil
}
