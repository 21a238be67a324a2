package install

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// GeneratedDirs are the folders the generator owns whole, relative to the repository root: a file
// in them that it no longer writes is stale.
var GeneratedDirs = []string{BundleDir + "/manifests", BundleDir + "/metadata", ChartDir + "/" + GeneratedTemplatesDir, DistDir}

// Generate builds config/default and config/samples under root and returns every generated file of
// the bundle, the chart and the rendered manifests (DistDir), keyed by path relative to root.
func Generate(root, version string) (map[string][]byte, error) {
	objs, err := Build(filepath.Join(root, "config/default"))
	if err != nil {
		return nil, err
	}
	tree, err := Classify(objs)
	if err != nil {
		return nil, err
	}
	samples, err := Build(filepath.Join(root, "config/samples"))
	if err != nil {
		return nil, err
	}
	made, err := OperatorMadeExamples()
	if err != nil {
		return nil, err
	}
	samples = append(samples, made...)
	opImage, err := OperatorImage(tree)
	if err != nil {
		return nil, err
	}
	images := DefaultImages(opImage)
	csv, err := CSV(CSVInputs{Tree: tree, Samples: samples, Version: version, Images: images, IconSVG: IconSVG, Metadata: PlexusMetadata})
	if err != nil {
		return nil, err
	}
	bundle, err := Bundle(csv, tree)
	if err != nil {
		return nil, err
	}
	chart, err := Chart(ChartInputs{Tree: tree, Version: version, Images: images})
	if err != nil {
		return nil, err
	}
	dist, err := Manifests(objs, version)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for p, b := range dist {
		files[filepath.Join(DistDir, p)] = b
	}
	for p, b := range bundle {
		files[filepath.Join(BundleDir, p)] = b
	}
	for p, b := range chart {
		files[filepath.Join(ChartDir, p)] = b
	}
	return files, nil
}

// Write replaces the generated folders under root with files.
func Write(root string, files map[string][]byte) error {
	for _, d := range GeneratedDirs {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return fmt.Errorf("clear %s: %w", d, err)
		}
	}
	for _, p := range sortedPaths(files) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// Stale lists what differs between files and what is committed under root: files that differ or
// are missing, and files in the generated folders that the generator does not write.
func Stale(root string, files map[string][]byte) ([]string, error) {
	var stale []string
	for _, p := range sortedPaths(files) {
		got, err := os.ReadFile(filepath.Join(root, p))
		switch {
		case os.IsNotExist(err):
			stale = append(stale, p+" (missing)")
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", p, err)
		case !bytes.Equal(got, files[p]):
			stale = append(stale, p+" (differs)")
		}
	}
	for _, d := range GeneratedDirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			if _, ok := files[rel]; !ok {
				stale = append(stale, rel+" (no longer generated)")
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("walk %s: %w", d, err)
		}
	}
	return stale, nil
}

func sortedPaths(files map[string][]byte) []string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}
