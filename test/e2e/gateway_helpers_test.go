package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/ingress/translate"
	"github.com/plexus-net/plexus/internal/lab"
)

// The Gateway API spec's namespaces, hostnames and listeners.
const (
	gatewayTestNS  = "gateway-e2e"
	gatewayOtherNS = "gateway-e2e-other"
	gwAppHost      = "app.gw.test"
	gwSplitHost    = "split.gw.test"
	gwSecureHost   = "secure.gw.test"
	gwCrossHost    = "cross.gw.test"
	gwIngressHost  = "ingress.gw.test"
	gwSecondHost   = "second.gw.test"
	gwName         = "web"
	listenerHTTP   = "http"
	listenerHTTPS  = "https"
)

// gatewayClient is a client of the lab's API server that also knows the Gateway API kinds and
// CRDs (the suite's client knows only the core and Plexus kinds).
func gatewayClient() client.Client {
	s := controllers.NewScheme()
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	rc, err := clientcmd.BuildConfigFromFlags("", labCfg.AdminKubeconfig())
	Expect(err).NotTo(HaveOccurred())
	c, err := client.New(rc, client.Options{Scheme: s})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// gwGet sends a GET for url with the headers through c.
func gwGet(c *http.Client, url string, headers map[string]string) (ingressAnswer, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return ingressAnswer{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return ingressAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := ingressAnswer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf := resp.TLS.PeerCertificates[0]
		a.certNames = append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
	}
	return a, err
}

// podOf is the Deployment an echo answer came from ("alpha" of "pod=alpha-5d9c-x2"), "" if none.
func podOf(body string) string {
	_, after, ok := strings.Cut(body, "pod=")
	if !ok {
		return ""
	}
	name := strings.Fields(after)[0]
	if i := strings.Index(name, "-"); i > 0 {
		return name[:i]
	}
	return name
}

// testGateway has an HTTP listener on 80 for any hostname and an HTTPS listener on 443 for
// gwSecureHost terminating TLS with the Secret gw-cert.
func testGateway() *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: gatewayTestNS, Name: gwName},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "plexus",
			Listeners: []gwv1.Listener{
				{Name: listenerHTTP, Protocol: gwv1.HTTPProtocolType, Port: 80},
				{
					Name: listenerHTTPS, Protocol: gwv1.HTTPSProtocolType, Port: 443,
					Hostname: ptr.To(gwv1.Hostname(gwSecureHost)),
					TLS: &gwv1.ListenerTLSConfig{
						Mode:            ptr.To(gwv1.TLSModeTerminate),
						CertificateRefs: []gwv1.SecretObjectReference{{Name: "gw-cert"}},
					},
				},
			},
		},
	}
}

// gatewayServiceKey is where plexus-ingress keeps the Service of Gateway namespace/name.
func gatewayServiceKey(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: plexusNamespace, Name: translate.GatewayServiceName(types.NamespacedName{Namespace: namespace, Name: name})}
}

func parent(section string) gwv1.ParentReference {
	return gwv1.ParentReference{Name: gwName, SectionName: ptr.To(gwv1.SectionName(section))}
}

func backend(ns, name string, weight int32) gwv1.HTTPBackendRef {
	ref := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))},
		Weight:                 ptr.To(weight),
	}}
	if ns != "" {
		ref.Namespace = ptr.To(gwv1.Namespace(ns))
	}
	return ref
}

func pathPrefix(p string) *gwv1.HTTPPathMatch {
	return &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(p)}
}

func httpRoute(name string, hosts []string, parents []gwv1.ParentReference, rules ...gwv1.HTTPRouteRule) *gwv1.HTTPRoute {
	hn := make([]gwv1.Hostname, 0, len(hosts))
	for _, h := range hosts {
		hn = append(hn, gwv1.Hostname(h))
	}
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: gatewayTestNS, Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents},
			Hostnames:       hn,
			Rules:           rules,
		},
	}
}

// testRoutes: matches (path + header), a 3:1 split, a prefix rewrite, a redirect, a route on both
// listeners and one to a Service in another namespace.
func testRoutes() []*gwv1.HTTPRoute {
	onHTTP := []gwv1.ParentReference{parent(listenerHTTP)}
	return []*gwv1.HTTPRoute{
		httpRoute("match", []string{gwAppHost}, onHTTP,
			gwv1.HTTPRouteRule{
				Matches: []gwv1.HTTPRouteMatch{{
					Path:    pathPrefix("/api"),
					Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Env", Value: "canary"}},
				}},
				BackendRefs: []gwv1.HTTPBackendRef{backend("", "beta", 1)},
			},
			gwv1.HTTPRouteRule{
				Matches:     []gwv1.HTTPRouteMatch{{Path: pathPrefix("/api")}},
				BackendRefs: []gwv1.HTTPBackendRef{backend("", "alpha", 1)},
			},
		),
		httpRoute("split", []string{gwSplitHost}, onHTTP, gwv1.HTTPRouteRule{
			BackendRefs: []gwv1.HTTPBackendRef{backend("", "alpha", 3), backend("", "beta", 1)},
		}),
		// /legacy becomes /healthz, which the echo server answers with "ok"; /legacy/x becomes
		// /healthz/x, which it answers like any other path: a prefix rewrite, not a full one.
		httpRoute("rewrite", []string{gwAppHost}, onHTTP, gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{{Path: pathPrefix("/legacy")}},
			Filters: []gwv1.HTTPRouteFilter{{
				Type: gwv1.HTTPRouteFilterURLRewrite,
				URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: &gwv1.HTTPPathModifier{
					Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/healthz"),
				}},
			}},
			BackendRefs: []gwv1.HTTPBackendRef{backend("", "alpha", 1)},
		}),
		httpRoute("redirect", []string{gwAppHost}, onHTTP, gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{{Path: pathPrefix("/old")}},
			Filters: []gwv1.HTTPRouteFilter{{
				Type: gwv1.HTTPRouteFilterRequestRedirect,
				RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
					Scheme:     ptr.To("https"),
					Hostname:   ptr.To(gwv1.PreciseHostname(gwSecureHost)),
					Path:       &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/new")},
					StatusCode: ptr.To(301),
				},
			}},
		}),
		httpRoute("secure", []string{gwSecureHost}, []gwv1.ParentReference{parent(listenerHTTP), parent(listenerHTTPS)},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "beta", 1)}}),
		httpRoute("cross", []string{gwCrossHost}, onHTTP,
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend(gatewayOtherNS, "gamma", 1)}}),
	}
}

// crossGrant lets HTTPRoutes of gatewayTestNS reference Services of gatewayOtherNS.
func crossGrant() *gwv1.ReferenceGrant {
	return &gwv1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Namespace: gatewayOtherNS, Name: "routes-to-gamma"},
		Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gatewayTestNS}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		},
	}
}

// conditionIs checks that conds hold t with status s for generation gen (and reason, when given).
func conditionIs(g Gomega, conds []metav1.Condition, t string, s metav1.ConditionStatus, gen int64, reason string, what string) {
	c := meta.FindStatusCondition(conds, t)
	g.Expect(c).NotTo(BeNil(), "%s: no %s condition in %v", what, t, conds)
	g.Expect(c.ObservedGeneration).To(Equal(gen), "%s: %s of an older generation", what, t)
	g.Expect(c.Status).To(Equal(s), "%s: %s %s: %s", what, t, c.Reason, c.Message)
	if reason != "" {
		g.Expect(c.Reason).To(Equal(reason), "%s: %s: %s", what, t, c.Message)
	}
}

// routeParentStatus is the status plexus-ingress wrote for route's parent ref to listener section.
func routeParentStatus(g Gomega, r *gwv1.HTTPRoute, section string) []metav1.Condition {
	for _, p := range r.Status.Parents {
		if string(p.ControllerName) == "plexus.dev/gateway" && p.ParentRef.SectionName != nil && string(*p.ParentRef.SectionName) == section {
			return p.Conditions
		}
	}
	g.Expect(r.Status.Parents).To(ContainElement(HaveField("ParentRef.SectionName", HaveValue(BeEquivalentTo(section)))),
		fmt.Sprintf("route %s: no status of plexus.dev/gateway for parent section %s", r.Name, section))
	return nil
}

// dumpGatewayState writes what a failed Gateway API spec needs to be understood: the Gateway API
// objects as the API server has them and the recent logs of plexus-ingress and the operator.
func dumpGatewayState() {
	var out strings.Builder
	for _, args := range [][]string{
		{"get", "gatewayclasses,gateways,httproutes,referencegrants", "-A", "-o", "yaml"},
		{"-n", plexusNamespace, "get", "pods", "-o", "wide"},
		{"-n", plexusNamespace, "logs", "-l", "app.kubernetes.io/component=ingress", "--all-containers", "--prefix", "--tail", "80"},
		{"-n", plexusNamespace, "logs", "-l", operatorSelector, "--all-containers", "--prefix", "--tail", "40"},
	} {
		o, err := lab.Kubectl(labCfg, "", args...)
		fmt.Fprintf(&out, "$ kubectl %s (%v)\n%s\n", strings.Join(args, " "), err, o)
	}
	fmt.Fprintln(GinkgoWriter, out.String())
	AddReportEntry("gateway: state after the failure", out.String())
}
