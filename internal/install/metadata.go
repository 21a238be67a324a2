package install

import (
	"embed"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
)

// IconSVG is the icon OperatorHub shows for Plexus.
//
//go:embed plexus.svg
var IconSVG []byte

// operatorMadeExamples are examples of the objects the operator makes, not users: OLM wants an
// example for every owned API, and config/samples holds only what users apply.
//
//go:embed examples/*.yaml
var operatorMadeExamples embed.FS

// OperatorMadeExamples parses operatorMadeExamples.
func OperatorMadeExamples() ([]*unstructured.Unstructured, error) {
	entries, err := operatorMadeExamples.ReadDir("examples")
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, e := range entries {
		b, err := operatorMadeExamples.ReadFile("examples/" + e.Name())
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", e.Name(), err)
		}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("example %s: %w", e.Name(), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// internalCRDs are the owned APIs only the operator creates; the OLM console hides them.
var internalCRDs = []string{"nodenetworks.plexus.dev"}

// supportedPlatforms are the OS and architectures Plexus's images are built for (the lab builds
// them for linux/amd64); the CSV labels them so OperatorHub lists Plexus only there.
var supportedPlatforms = struct{ OS, Arch []string }{OS: []string{"linux"}, Arch: []string{"amd64"}}

// DefaultVersion is the version of the bundle and the chart unless the generator is told another.
const DefaultVersion = "0.2.0"

// PlexusMetadata is what OperatorHub and Artifact Hub show about Plexus.
var PlexusMetadata = Metadata{
	DisplayName: "Plexus",
	Summary:     "Runs a Kubernetes cluster's whole network from one ClusterNetwork resource.",
	Description: `Plexus allocates pod CIDRs per node (IPv4, IPv6, dual-stack), routes pods between nodes,
installs its CNI plugin, proxies Services, serves cluster DNS and reports per-node status, all
from one cluster-scoped ClusterNetwork named default.

After installing, create the ClusterNetwork (see the example) and check the network with
` + "`plexusctl status`" + `.
`,
	// The CRDs' CEL rules use the IP and CIDR libraries (isCIDR, cidr()), served from Kubernetes 1.31.
	MinKubeVersion: "1.31.0",
	Keywords:       []string{"network", "cni", "ipam", "routing", "service proxy", "dns"},
	Maintainers:    []operatorsv1alpha1.Maintainer{{Name: "Plexus maintainers", Email: "dev@plexus.dev"}},
	Links: []operatorsv1alpha1.AppLink{
		{Name: "Source", URL: "https://github.com/plexus-net/plexus"},
		{Name: "Documentation", URL: "https://github.com/plexus-net/plexus/blob/main/README.md"},
	},
	Repository: "https://github.com/plexus-net/plexus",
	Support:    "Plexus maintainers",
	Provider:   "Plexus",
}
