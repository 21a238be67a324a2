package e2e

import (
	"context"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
)

// gatewayCRDs are the standard-channel CRDs plexus-ingress serves; the operator installs them and
// never removes them.
var gatewayCRDs = []string{"gatewayclasses", "gateways", "httproutes", "referencegrants"}

var _ = Describe("Gateway API through plexus-ingress", Ordered, func() {
	// ingressIP is the plexus-ingress Service's load-balancer address (Ingress); gwIP the test
	// Gateway's own (its Service's).
	var ingressIP, gwIP string
	var saved *v1.Ingress
	var gw client.Client

	// gatewayOn is the ingress spec of this container: ingress with the Gateway API.
	gatewayOn := func(on bool) *v1.Ingress {
		return &v1.Ingress{Enabled: ptr.To(true), GatewayAPI: &v1.GatewayAPI{Enabled: ptr.To(on)}}
	}
	waitServing := func() {
		Eventually(func(g Gomega) {
			c := ingressCondition()
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
			g.Expect(c.Reason).To(Equal(v1.ReasonIngressServing))
			g.Expect(c.Message).To(ContainSubstring("2 of 2 plexus-ingress replicas ready"))
		}, 4*time.Minute, time.Second).Should(Succeed())
	}

	BeforeAll(func() {
		gw = gatewayClient()
		saved = clusterNetwork().Spec.Ingress.DeepCopy()
		for _, name := range []string{gatewayTestNS, gatewayOtherNS} {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
			// Registered now, so it runs after AfterAll (which turns the operator's part off):
			// the namespaces and every Gateway API object in them go, and are waited for.
			DeferCleanup(func() {
				Expect(client.IgnoreNotFound(k8s.Delete(context.Background(), ns))).To(Succeed())
				Eventually(func() bool {
					return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(ns), ns))
				}, 3*time.Minute, time.Second).Should(BeTrue(), "namespace %s still there", name)
			})
		}
		for _, b := range []struct{ ns, name string }{{gatewayTestNS, "alpha"}, {gatewayTestNS, "beta"}, {gatewayOtherNS, "gamma"}} {
			d, s := echoBackend(b.name, 2)
			d.Namespace, s.Namespace = b.ns, b.ns
			Expect(k8s.Create(ctx, d)).To(Succeed())
			Expect(k8s.Create(ctx, s)).To(Succeed())
		}
		cert := tlsSecret("gw-cert", gwSecureHost)
		cert.Namespace = gatewayTestNS
		Expect(k8s.Create(ctx, cert)).To(Succeed())

		By("enabling ingress and the Gateway API in the ClusterNetwork")
		t0 := time.Now()
		setIngress(gatewayOn(true))
		waitServing()
		AddReportEntry("gateway: time to IngressAvailable", time.Since(t0).Round(100*time.Millisecond).String())

		for _, crd := range gatewayCRDs {
			var o apiextensionsv1.CustomResourceDefinition
			Expect(gw.Get(ctx, client.ObjectKey{Name: crd + "." + gwv1.GroupName}, &o)).To(Succeed(), "CRD %s", crd)
		}
		Eventually(func(g Gomega) {
			var gc gwv1.GatewayClass
			g.Expect(gw.Get(ctx, client.ObjectKey{Name: render.DefaultGatewayClassName}, &gc)).To(Succeed())
			g.Expect(string(gc.Spec.ControllerName)).To(Equal(render.GatewayControllerName))
			conditionIs(g, gc.Status.Conditions, string(gwv1.GatewayClassConditionStatusAccepted), metav1.ConditionTrue, gc.Generation, "", "GatewayClass")
		}, 2*time.Minute, time.Second).Should(Succeed())
		AddReportEntry("gateway: time to GatewayClass Accepted", time.Since(t0).Round(100*time.Millisecond).String())

		Eventually(func(g Gomega) {
			var svc corev1.Service
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: plexusNamespace, Name: render.IngressName}, &svc)).To(Succeed())
			g.Expect(svc.Status.LoadBalancer.Ingress).NotTo(BeEmpty(), "no load-balancer address yet")
			ingressIP = svc.Status.LoadBalancer.Ingress[0].IP
		}, time.Minute, time.Second).Should(Succeed())
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpGatewayState()
		}
	})

	AfterAll(func() {
		By("restoring spec.ingress: everything the operator made for ingress goes")
		setIngress(saved)
		Eventually(func(g Gomega) {
			for _, o := range renderedIngressObjects() {
				err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o)
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s still there (%v)", o, o.GetName(), err)
			}
			var pods corev1.PodList
			g.Expect(k8s.List(ctx, &pods, client.InNamespace(plexusNamespace), client.MatchingLabels{"app.kubernetes.io/component": "ingress"})).To(Succeed())
			g.Expect(pods.Items).To(BeEmpty(), "plexus-ingress pods left")
			var gc gwv1.GatewayClass
			g.Expect(apierrors.IsNotFound(gw.Get(ctx, client.ObjectKey{Name: render.DefaultGatewayClassName}, &gc))).To(BeTrue(), "GatewayClass left")
		}, 2*time.Minute, time.Second).Should(Succeed())
	})

	It("programs a Gateway with an HTTP and an HTTPS listener at a load-balancer address of its own", func() {
		t0 := time.Now()
		g0 := testGateway()
		Expect(gw.Create(ctx, g0)).To(Succeed())
		Eventually(func(g Gomega) {
			var cur gwv1.Gateway
			g.Expect(gw.Get(ctx, client.ObjectKeyFromObject(g0), &cur)).To(Succeed())
			conditionIs(g, cur.Status.Conditions, string(gwv1.GatewayConditionAccepted), metav1.ConditionTrue, cur.Generation, "", "Gateway")
			conditionIs(g, cur.Status.Conditions, string(gwv1.GatewayConditionProgrammed), metav1.ConditionTrue, cur.Generation, "", "Gateway")
			// The Gateway's Service: in plexus-ingress's namespace, one port per listener port.
			var svc corev1.Service
			g.Expect(k8s.Get(ctx, gatewayServiceKey(gatewayTestNS, gwName), &svc)).To(Succeed())
			g.Expect(svc.Spec.Ports).To(HaveLen(2))
			g.Expect(svc.Status.LoadBalancer.Ingress).NotTo(BeEmpty())
			g.Expect(cur.Status.Addresses).To(ConsistOf(HaveField("Value", svc.Status.LoadBalancer.Ingress[0].IP)))
			gwIP = cur.Status.Addresses[0].Value
			g.Expect(gwIP).NotTo(Equal(ingressIP), "the Gateway shares the Ingress address")
			g.Expect(cur.Status.Listeners).To(HaveLen(2))
			for _, l := range cur.Status.Listeners {
				conditionIs(g, l.Conditions, string(gwv1.ListenerConditionProgrammed), metav1.ConditionTrue, cur.Generation, "", "listener "+string(l.Name))
				conditionIs(g, l.Conditions, string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionTrue, cur.Generation, "", "listener "+string(l.Name))
			}
		}, 2*time.Minute, 200*time.Millisecond).Should(Succeed())
		took := time.Since(t0).Round(100 * time.Millisecond)
		fmt.Fprintf(GinkgoWriter, "Gateway Programmed with address %s after %s\n", gwIP, took)
		AddReportEntry("gateway: time to Gateway Programmed", took.String())

		for _, r := range testRoutes() {
			Expect(gw.Create(ctx, r)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			var cur gwv1.Gateway
			g.Expect(gw.Get(ctx, client.ObjectKeyFromObject(g0), &cur)).To(Succeed())
			attached := map[string]int32{}
			for _, l := range cur.Status.Listeners {
				attached[string(l.Name)] = l.AttachedRoutes
			}
			g.Expect(attached).To(Equal(map[string]int32{listenerHTTP: 6, listenerHTTPS: 1}))
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("accepts every route per parent and resolves its references", func() {
		Eventually(func(g Gomega) {
			for _, want := range testRoutes() {
				var r gwv1.HTTPRoute
				g.Expect(gw.Get(ctx, client.ObjectKeyFromObject(want), &r)).To(Succeed())
				g.Expect(r.Status.Parents).To(HaveLen(len(want.Spec.ParentRefs)), "route %s", r.Name)
				for _, p := range want.Spec.ParentRefs {
					conds := routeParentStatus(g, &r, string(*p.SectionName))
					what := fmt.Sprintf("route %s parent %s", r.Name, *p.SectionName)
					conditionIs(g, conds, string(gwv1.RouteConditionAccepted), metav1.ConditionTrue, r.Generation, "", what)
					if r.Name == "cross" {
						conditionIs(g, conds, string(gwv1.RouteConditionResolvedRefs), metav1.ConditionFalse, r.Generation, string(gwv1.RouteReasonRefNotPermitted), what)
					} else {
						conditionIs(g, conds, string(gwv1.RouteConditionResolvedRefs), metav1.ConditionTrue, r.Generation, "", what)
					}
				}
			}
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("matches path and headers, rewrites a path prefix and redirects", func() {
		c := ingressClient(gwIP, false)
		cases := []struct {
			path    string
			headers map[string]string
			status  int
			body    string
		}{
			{"/api", nil, http.StatusOK, "pod=alpha-"},
			{"/api/v1", map[string]string{"X-Env": "canary"}, http.StatusOK, "pod=beta-"},
			{"/api/v1", map[string]string{"X-Env": "stable"}, http.StatusOK, "pod=alpha-"},
			{"/apiary", nil, http.StatusNotFound, ""}, // PathPrefix matches whole path elements
			{"/legacy", nil, http.StatusOK, "ok"},     // rewritten to /healthz
			{"/legacy/x", nil, http.StatusOK, "pod=alpha-"},
		}
		for _, tc := range cases {
			Eventually(func(g Gomega) {
				a, err := gwGet(c, "http://"+gwAppHost+tc.path, tc.headers)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(a.status).To(Equal(tc.status), a.body)
				g.Expect(a.body).To(ContainSubstring(tc.body))
			}, time.Minute, 500*time.Millisecond).Should(Succeed(), "GET %s%s %v", gwAppHost, tc.path, tc.headers)
		}
		a, err := gwGet(c, "http://"+gwAppHost+"/old/page", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusMovedPermanently), a.body)
		Expect(a.location).To(Equal("https://" + gwSecureHost + "/new/page"))
	})

	It("terminates TLS on the HTTPS listener with the Gateway's certificate, and serves the same route on HTTP", func() {
		c := ingressClient(gwIP, false)
		Eventually(func(g Gomega) {
			a, err := gwGet(c, "https://"+gwSecureHost+"/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusOK), a.body)
			g.Expect(a.body).To(ContainSubstring("pod=beta-"))
			g.Expect(a.certNames).To(ContainElement(gwSecureHost))
		}, time.Minute, 500*time.Millisecond).Should(Succeed())
		a, err := gwGet(c, "http://"+gwSecureHost+"/", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusOK), a.body)
		Expect(a.body).To(ContainSubstring("pod=beta-"))
	})

	It("splits requests 3:1 by backendRef weight", func() {
		// New connections, so both plexus-ingress replicas (each keeping its own rotation) see
		// requests. Tolerance: if the split were a fair random draw at 3:1, alpha's share of 400
		// would have a standard deviation of sqrt(0.75*0.25/400) = 2.2 points; 75 % ± 8 points is
		// over 3.5 of them (a false failure about once in 4,000 runs), and an exact weighted
		// rotation per replica (what plexus-ingress does) lands within a point.
		c := ingressClient(gwIP, false)
		counts := map[string]int{}
		const n = 400
		for range n {
			a, err := gwGet(c, "http://"+gwSplitHost+"/", nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(a.status).To(Equal(http.StatusOK), a.body)
			counts[podOf(a.body)]++
		}
		msg := fmt.Sprintf("weights 3:1 over %d requests: alpha %d, beta %d", n, counts["alpha"], counts["beta"])
		fmt.Fprintln(GinkgoWriter, msg)
		AddReportEntry("gateway: weighted split", msg)
		Expect(counts).To(HaveLen(2), msg)
		Expect(float64(counts["alpha"])/n).To(BeNumerically("~", 0.75, 0.08), msg)
	})

	It("refuses a backend in another namespace until a ReferenceGrant allows it", func() {
		c := ingressClient(gwIP, false)
		// The spec: a request that would go to an invalid backendRef gets a 500.
		Eventually(func(g Gomega) {
			a, err := gwGet(c, "http://"+gwCrossHost+"/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusInternalServerError), a.body)
		}, time.Minute, 500*time.Millisecond).Should(Succeed())

		t0 := time.Now()
		Expect(gw.Create(ctx, crossGrant())).To(Succeed())
		Eventually(func(g Gomega) {
			a, err := gwGet(c, "http://"+gwCrossHost+"/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusOK), a.body)
			g.Expect(a.body).To(ContainSubstring("pod=gamma-"))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		AddReportEntry("gateway: ReferenceGrant to first allowed request", time.Since(t0).Round(100*time.Millisecond).String())
		Eventually(func(g Gomega) {
			var r gwv1.HTTPRoute
			g.Expect(gw.Get(ctx, client.ObjectKey{Namespace: gatewayTestNS, Name: "cross"}, &r)).To(Succeed())
			conds := routeParentStatus(g, &r, listenerHTTP)
			conditionIs(g, conds, string(gwv1.RouteConditionResolvedRefs), metav1.ConditionTrue, r.Generation, "", "route cross")
		}, time.Minute, time.Second).Should(Succeed())

		By("deleting the grant refuses the backend again")
		Expect(gw.Delete(ctx, crossGrant())).To(Succeed())
		Eventually(func(g Gomega) {
			a, err := gwGet(c, "http://"+gwCrossHost+"/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusInternalServerError), a.body)
		}, time.Minute, 500*time.Millisecond).Should(Succeed())
	})

	It("isolates Gateways: a second Gateway serves only its own routes, at its own address, also on port 8080", func() {
		second := &gwv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: gatewayTestNS, Name: "second"},
			Spec: gwv1.GatewaySpec{GatewayClassName: "plexus", Listeners: []gwv1.Listener{
				{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80},
				{Name: "alt", Protocol: gwv1.HTTPProtocolType, Port: 8080, Hostname: ptr.To(gwv1.Hostname(gwSecondHost))},
			}},
		}
		Expect(gw.Create(ctx, second)).To(Succeed())
		onSecond := func(section string) gwv1.ParentReference {
			return gwv1.ParentReference{Name: "second", SectionName: ptr.To(gwv1.SectionName(section))}
		}
		Expect(gw.Create(ctx, httpRoute("second-only", []string{gwSecondHost}, []gwv1.ParentReference{onSecond("http")},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "beta", 1)}}))).To(Succeed())
		Expect(gw.Create(ctx, httpRoute("second-alt", []string{gwSecondHost}, []gwv1.ParentReference{onSecond("alt")},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "alpha", 1)}}))).To(Succeed())
		var secondIP string
		Eventually(func(g Gomega) {
			var cur gwv1.Gateway
			g.Expect(gw.Get(ctx, client.ObjectKeyFromObject(second), &cur)).To(Succeed())
			conditionIs(g, cur.Status.Conditions, string(gwv1.GatewayConditionProgrammed), metav1.ConditionTrue, cur.Generation, "", "Gateway second")
			g.Expect(cur.Status.Addresses).To(HaveLen(1))
			secondIP = cur.Status.Addresses[0].Value
		}, 2*time.Minute, 500*time.Millisecond).Should(Succeed())
		Expect(secondIP).NotTo(BeElementOf(gwIP, ingressIP))
		fmt.Fprintf(GinkgoWriter, "Gateway second at %s, %s at %s, Ingress at %s\n", secondIP, gwName, gwIP, ingressIP)

		for _, tc := range []struct {
			addr, url string
			status    int
			body      string
		}{
			{secondIP, "http://" + gwSecondHost + "/", http.StatusOK, "pod=beta-"},
			{secondIP, "http://" + gwSecondHost + ":8080/", http.StatusOK, "pod=alpha-"},
			{gwIP, "http://" + gwSecondHost + "/", http.StatusNotFound, ""},      // not the first Gateway's route
			{ingressIP, "http://" + gwSecondHost + "/", http.StatusNotFound, ""}, // nor Ingress's
			{secondIP, "http://" + gwAppHost + "/api", http.StatusNotFound, ""},  // the first's routes stay there
			{ingressIP, "http://" + gwAppHost + "/api", http.StatusNotFound, ""},
			{gwIP, "http://" + gwAppHost + "/api", http.StatusOK, "pod=alpha-"},
		} {
			c := ingressClient(tc.addr, false)
			Eventually(func(g Gomega) {
				a, err := gwGet(c, tc.url, nil)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(a.status).To(Equal(tc.status), a.body)
				g.Expect(a.body).To(ContainSubstring(tc.body))
			}, time.Minute, 500*time.Millisecond).Should(Succeed(), "GET %s at %s", tc.url, tc.addr)
		}

		By("deleting the second Gateway deletes its Service")
		Expect(gw.Delete(ctx, second)).To(Succeed())
		Eventually(func() bool {
			var svc corev1.Service
			return apierrors.IsNotFound(k8s.Get(ctx, gatewayServiceKey(gatewayTestNS, "second"), &svc))
		}, time.Minute, time.Second).Should(BeTrue(), "the Service of the deleted Gateway is still there")
	})

	It("turned off, removes the GatewayClass, keeps the CRDs and still serves Ingress", func() {
		in := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: gatewayTestNS, Name: "still"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("plexus"), Rules: []networkingv1.IngressRule{
				rule(gwIngressHost, prefix("/", "alpha")),
			}},
		}
		Expect(k8s.Create(ctx, in)).To(Succeed())
		setIngress(gatewayOn(false))
		Eventually(func(g Gomega) {
			var gc gwv1.GatewayClass
			err := gw.Get(ctx, client.ObjectKey{Name: render.DefaultGatewayClassName}, &gc)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "GatewayClass still there (%v)", err)
		}, 2*time.Minute, time.Second).Should(Succeed())
		for _, crd := range gatewayCRDs {
			var o apiextensionsv1.CustomResourceDefinition
			Expect(gw.Get(ctx, client.ObjectKey{Name: crd + "." + gwv1.GroupName}, &o)).To(Succeed(), "CRD %s must stay", crd)
		}
		waitServing()
		// Old pods may still be terminating (their grace period) when the new ones are ready.
		Eventually(func(g Gomega) {
			var pods corev1.PodList
			g.Expect(k8s.List(ctx, &pods, client.InNamespace(plexusNamespace), client.MatchingLabels{"app.kubernetes.io/component": "ingress"})).To(Succeed())
			running := 0
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					running++
					g.Expect(p.Spec.Containers[0].Args).NotTo(ContainElement("-gateway-api"), "pod %s", p.Name)
				}
			}
			g.Expect(running).To(Equal(2))
		}, 2*time.Minute, time.Second).Should(Succeed())

		c := ingressClient(ingressIP, false)
		Eventually(func(g Gomega) {
			a, err := gwGet(c, "http://"+gwIngressHost+"/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusOK), a.body)
			g.Expect(a.body).To(ContainSubstring("pod=alpha-"))
			// The Gateway's routes are no longer served.
			a, err = gwGet(c, "http://"+gwAppHost+"/api", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusNotFound), a.body)
		}, time.Minute, 500*time.Millisecond).Should(Succeed())
		// Nor is the Gateway's address: the operator removed its Service.
		Eventually(func() bool {
			var svc corev1.Service
			return apierrors.IsNotFound(k8s.Get(ctx, gatewayServiceKey(gatewayTestNS, gwName), &svc))
		}, time.Minute, time.Second).Should(BeTrue(), "the Gateway's Service outlived the Gateway API")
	})
})
