// Package gatewayapi holds the standard-channel Gateway API CRDs of the sigs.k8s.io/gateway-api
// module version in go.mod, copied out of the module by `go generate` (copy-crds.sh), so the
// operator can install them and envtest suites can serve them. They are never hand-edited.
package gatewayapi

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

//go:generate sh ./copy-crds.sh

//go:embed crds/*.yaml crds/VERSION
var files embed.FS

// BundleVersion is the Gateway API release the embedded CRDs come from, e.g. v1.6.3.
func BundleVersion() string {
	b, err := files.ReadFile("crds/VERSION")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// CRDs returns the embedded CustomResourceDefinitions, sorted by name.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(files, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list the embedded Gateway API CRDs: %w", err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				return nil, fmt.Errorf("parse %s: %w", path.Base(n), err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			out = append(out, crd)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
