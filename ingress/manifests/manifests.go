// Package manifests reads the translation's inputs from YAML or JSON files instead of a cluster:
// plexus-ingress's standalone mode (-manifests), for trying a set of Ingresses without an API
// server and for debugging a translation offline.
package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// decoder knows only the kinds the translation reads.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, networkingv1.AddToScheme, discoveryv1.AddToScheme, gwv1.Install} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("build manifest scheme: %v", err))
		}
	}
	return serializer.NewCodecFactory(s).UniversalDeserializer()
}()

// Read decodes every *.yaml, *.yml and *.json file of the given files and directories (not
// recursive; multi-document YAML allowed) into an Input. IngressClasses, Ingresses, Services,
// EndpointSlices, Secrets, Namespaces and the Gateway API v1 GatewayClasses, Gateways,
// HTTPRoutes and ReferenceGrants are kept; documents of other kinds are skipped.
func Read(paths ...string) (translate.Input, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return translate.Input{}, fmt.Errorf("read manifests: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return translate.Input{}, fmt.Errorf("read manifests: %w", err)
		}
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	sort.Strings(files)
	var in translate.Input
	for _, f := range files {
		if err := readFile(f, &in); err != nil {
			return translate.Input{}, err
		}
	}
	return in, nil
}

// readFile appends the objects of one file to in.
func readFile(name string, in *translate.Input) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read manifests: %w", err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || isOnlyComments(raw) {
			continue
		}
		obj, _, err := decoder.Decode(raw, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		switch o := obj.(type) {
		case *networkingv1.IngressClass:
			in.IngressClasses = append(in.IngressClasses, *o)
		case *networkingv1.Ingress:
			in.Ingresses = append(in.Ingresses, *o)
		case *corev1.Service:
			in.Services = append(in.Services, *o)
		case *discoveryv1.EndpointSlice:
			in.EndpointSlices = append(in.EndpointSlices, *o)
		case *corev1.Secret:
			in.Secrets = append(in.Secrets, *o)
		case *corev1.Namespace:
			in.Namespaces = append(in.Namespaces, *o)
		case *gwv1.GatewayClass:
			in.GatewayClasses = append(in.GatewayClasses, *o)
		case *gwv1.Gateway:
			in.Gateways = append(in.Gateways, *o)
		case *gwv1.HTTPRoute:
			in.HTTPRoutes = append(in.HTTPRoutes, *o)
		case *gwv1.ReferenceGrant:
			in.ReferenceGrants = append(in.ReferenceGrants, *o)
		}
	}
}

// isOnlyComments reports a YAML document with nothing but comments.
func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
