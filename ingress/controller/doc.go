// Package controller is the Kubernetes side of plexus-ingress: it watches what an Ingress
// configuration is made of and keeps the process's proxy serving the translation of it.
//
// Two reconcilers share one cache and one input snapshot (Gather):
//
//   - ConfigReconciler runs on every replica (each one serves traffic): any change to an
//     IngressClass, Ingress, Service, EndpointSlice or TLS Secret queues one key; the reconcile
//     gathers everything from the cache, translates it (ingress/translate, a pure function) and
//     hands the config to the Loader, which replaces the running config only when it changed.
//     Bursts of changes coalesce into one reconcile, because they all queue the same key.
//   - StatusReconciler runs on the elected leader only: it writes each served Ingress's
//     status.loadBalancer from the controller's own Service and records a Warning Event on an
//     Ingress for each problem the translation reports (a missing Service or Secret, a path
//     conflict), once per distinct problem rather than on every reconcile.
//
// With the Gateway API enabled (Options.GatewayControllerName, the -gateway-api flag) and its
// CRDs installed, GatewayClasses, Gateways, HTTPRoutes, ReferenceGrants and Namespaces are
// watched and translated too, and a third, leader-only GatewayStatusReconciler writes their
// statuses (ingress/translate computes them; an unchanged status is not written). Enabled without
// the CRDs, the controller logs it and serves Ingress only.
//
// Secrets are cached only when of type kubernetes.io/tls (a field selector on the watch), so the
// controller never holds other Secrets of the cluster in memory.
package controller
