package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// appearingMapper serves the Gateway API kinds only from its appearAfter-th lookup on, as an API
// server does once the operator's CRDs are established.
type appearingMapper struct {
	meta.RESTMapper
	lookups, appearAfter int
}

func (m *appearingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.lookups++
	if m.lookups < m.appearAfter {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func gatewayMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range gatewayKinds {
		m.Add(schema.GroupVersionKind{Group: gwv1.GroupName, Version: "v1", Kind: k}, meta.RESTScopeNamespace)
	}
	return m
}

func TestWaitGatewayAPIServesCRDsThatAppearLate(t *testing.T) {
	m := &appearingMapper{RESTMapper: gatewayMapper(), appearAfter: 3}
	ok, missing := waitGatewayAPI(m, time.Minute, time.Millisecond)
	if !ok {
		t.Fatalf("CRDs that appear during the wait: not served (missing %s)", missing)
	}
}

func TestWaitGatewayAPIGivesUpAfterTheWait(t *testing.T) {
	m := &appearingMapper{RESTMapper: gatewayMapper(), appearAfter: 1 << 30}
	ok, missing := waitGatewayAPI(m, 20*time.Millisecond, time.Millisecond)
	if ok || missing != "GatewayClass" {
		t.Fatalf("CRDs that never appear: ok=%v missing=%q, want false and GatewayClass", ok, missing)
	}
	if m.lookups < 2 {
		t.Errorf("asked %d times in the wait, want it asked again", m.lookups)
	}
}
