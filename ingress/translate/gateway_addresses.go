package translate

// Gateway spec.addresses. plexus-ingress gives every Gateway the addresses of a Service of its
// own (gateway_service.go) and cannot honour a requested value; an entry without a value of
// type IPAddress (the default type) asks for "an IP address of the implementation's choosing",
// which that Service gives (GatewayAddressEmpty). Other entries make the Gateway not accepted
// (UnsupportedAddress).

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// unsupportedAddress describes the first entry of spec.addresses plexus-ingress cannot honour,
// "" when it can honour them all.
func unsupportedAddress(gw *gwv1.Gateway) string {
	for i, a := range gw.Spec.Addresses {
		typ := gwv1.IPAddressType
		if a.Type != nil {
			typ = *a.Type
		}
		switch {
		case typ != gwv1.IPAddressType:
			return fmt.Sprintf("spec.addresses[%d]: type %s is not supported; an IPAddress entry without a value gets the address of the Service plexus-ingress makes for the Gateway", i, typ)
		case a.Value != "":
			return fmt.Sprintf("spec.addresses[%d]: address %s cannot be requested; an entry without a value gets the address of the Service plexus-ingress makes for the Gateway", i, a.Value)
		}
	}
	return ""
}
