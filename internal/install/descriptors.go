package install

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// conditionsXDescriptor makes the OLM console show a status field as a list of conditions.
const conditionsXDescriptor = "urn:alm:descriptor:io.kubernetes.conditions"

// ownedCRDs describes each CRD for OLM from its own schema: the description of the type, and one
// descriptor per top-level spec and status field with the field's documented description.
func ownedCRDs(crds []*unstructured.Unstructured) ([]operatorsv1alpha1.CRDDescription, error) {
	var out []operatorsv1alpha1.CRDDescription
	for _, u := range crds {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
			return nil, fmt.Errorf("CRD %s: %w", u.GetName(), err)
		}
		v, err := storageVersion(crd)
		if err != nil {
			return nil, err
		}
		desc := operatorsv1alpha1.CRDDescription{
			Name:        crd.Name,
			Version:     v.Name,
			Kind:        crd.Spec.Names.Kind,
			DisplayName: displayName(crd.Spec.Names.Kind),
		}
		if s := v.Schema; s != nil && s.OpenAPIV3Schema != nil {
			root := s.OpenAPIV3Schema
			desc.Description = firstSentence(root.Description)
			desc.SpecDescriptors = specDescriptors(root.Properties["spec"])
			desc.StatusDescriptors = statusDescriptors(root.Properties["status"])
		}
		if desc.Description == "" {
			return nil, fmt.Errorf("CRD %s has no description: document the type in api/", crd.Name)
		}
		out = append(out, desc)
	}
	return out, nil
}

// storageVersion is the version the API server stores, which OLM expects in the CSV.
func storageVersion(crd apiextensionsv1.CustomResourceDefinition) (apiextensionsv1.CustomResourceDefinitionVersion, error) {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			return v, nil
		}
	}
	return apiextensionsv1.CustomResourceDefinitionVersion{}, fmt.Errorf("CRD %s has no storage version", crd.Name)
}

func specDescriptors(s apiextensionsv1.JSONSchemaProps) []operatorsv1alpha1.SpecDescriptor {
	var out []operatorsv1alpha1.SpecDescriptor
	for _, name := range sortedKeys(s.Properties) {
		out = append(out, operatorsv1alpha1.SpecDescriptor{Path: name, DisplayName: displayName(name), Description: firstSentence(s.Properties[name].Description)})
	}
	return out
}

func statusDescriptors(s apiextensionsv1.JSONSchemaProps) []operatorsv1alpha1.StatusDescriptor {
	var out []operatorsv1alpha1.StatusDescriptor
	for _, name := range sortedKeys(s.Properties) {
		d := operatorsv1alpha1.StatusDescriptor{Path: name, DisplayName: displayName(name), Description: firstSentence(s.Properties[name].Description)}
		if name == "conditions" {
			d.XDescriptors = []string{conditionsXDescriptor}
		}
		out = append(out, d)
	}
	return out
}

func sortedKeys(m map[string]apiextensionsv1.JSONSchemaProps) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// displayName turns a Go-style name into words: "podNetwork" → "Pod Network", "ClusterNetwork" →
// "Cluster Network", "ipFamilies" → "IP Families".
func displayName(name string) string {
	var words []string
	start := 0
	runes := []rune(name)
	for i := 1; i < len(runes); i++ {
		if unicode.IsUpper(runes[i]) && (!unicode.IsUpper(runes[i-1]) || (i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
			words = append(words, string(runes[start:i]))
			start = i
		}
	}
	words = append(words, string(runes[start:]))
	for i, w := range words {
		if up, ok := acronyms[strings.ToLower(w)]; ok {
			words[i] = up
		} else {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// acronyms are the words displayName writes in capitals.
var acronyms = map[string]string{"ip": "IP", "ipam": "IPAM", "dns": "DNS", "mtu": "MTU", "cidr": "CIDR", "cidrs": "CIDRs", "cni": "CNI", "ipvs": "IPVS", "ips": "IPs"}

// firstSentence is a description's first sentence on one line: OLM shows descriptors as tooltips.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
