package envtest

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/render"
)

// networkEvents returns the events about the ClusterNetwork with uid, by reason. An event
// recorded twice with the same note becomes a series (client-go's events broadcaster), so a
// duplicate shows as Series != nil.
func networkEvents(g Gomega, uid types.UID) map[string][]eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8s.List(ctx(), &list)).To(Succeed())
	out := map[string][]eventsv1.Event{}
	for _, e := range list.Items {
		if e.Regarding.UID == uid {
			out[e.Reason] = append(out[e.Reason], e)
		}
	}
	return out
}

func notes(es []eventsv1.Event) []string {
	var out []string
	for _, e := range es {
		n := e.Note
		if e.Series != nil {
			n += " (series)"
		}
		out = append(out, n)
	}
	return out
}

// expectOnce waits until the ClusterNetwork has exactly one event of reason whose note contains
// text, recorded once (no series), and keeps checking that no second one follows while the
// operator reconciles again.
func expectOnce(uid types.UID, reason, text string, reconcile func()) {
	matching := func(g Gomega) []string {
		var out []string
		for _, n := range notes(networkEvents(g, uid)[reason]) {
			if strings.Contains(n, text) {
				out = append(out, n)
			}
		}
		return out
	}
	EventuallyWithOffset(1, func(g Gomega) { g.Expect(matching(g)).To(HaveLen(1)) }, timeout, interval).Should(Succeed())
	reconcile()
	ConsistentlyWithOffset(1, func(g Gomega) {
		m := matching(g)
		g.Expect(m).To(HaveLen(1))
		g.Expect(m[0]).NotTo(HaveSuffix("(series)"), "recorded again")
	}, "3s", interval).Should(Succeed())
}

var _ = Describe("Cluster DNS events", func() {
	BeforeEach(removeDNS)
	AfterEach(func() {
		cleanup()
		removeDNS()
	})

	// nudge makes the operator reconcile without changing what it renders: a new Node is watched,
	// and two nodes more still size CoreDNS the same (at least 2 replicas, one per 16 nodes).
	nudges := 0
	nudge := func() {
		nudges++
		createNodes("dnsev-nudge-"+string(rune('a'+nudges)), 1)
	}

	It("tells each rollout once: deployed, Corefile reloaded, pods rolled, replicas scaled", func() {
		createNodes("dnsev", 3)
		createNetwork(dualStackNetwork())
		uid := getNetwork().UID
		expectOnce(uid, controllers.EventDNSDeployed, "CoreDNS deployed with 2 replicas", nudge)

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{CacheSeconds: ptr.To[int32](5)} })
		expectOnce(uid, controllers.EventDNSCorefileChanged, "Corefile of generation 2 applied; CoreDNS reloads it without restarting", nudge)
		Expect(networkEvents(Default, uid)).NotTo(HaveKey(controllers.EventDNSRolledOut), "a Corefile change restarts no pod")

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Images = &v1.Images{DNS: "plexus-coredns:next"} })
		expectOnce(uid, controllers.EventDNSRolledOut, "CoreDNS pod template changed (generation 3)", nudge)

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.DNS.Replicas = ptr.To[int32](3) })
		expectOnce(uid, controllers.EventDNSScaled, "CoreDNS scaled from 2 to 3 replicas", nudge)
		Expect(notes(networkEvents(Default, uid)[controllers.EventDNSCorefileChanged])).To(HaveLen(1), "neither the image nor the replicas touched the Corefile")
	})

	It("tells a foreign kube-dns once, however often it reconciles", func() {
		foreign := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: render.DNSNamespace, Name: render.DNSServiceName, Labels: map[string]string{"k8s-app": "kube-dns"}},
			Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}, Selector: map[string]string{"k8s-app": "kube-dns"}},
		}
		// The address may still be held for a moment by the kube-dns an earlier spec deleted.
		Eventually(func() error { return k8s.Create(ctx(), foreign.DeepCopy()) }, timeout, interval).Should(Succeed())
		createNodes("dnsev", 2)
		createNetwork(dualStackNetwork())
		uid := getNetwork().UID
		eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionFalse)
		expectOnce(uid, v1.ReasonDNSForeignObject, "Service kube-system/kube-dns exists and was not created by Plexus", func() {
			nudge()
			nudge()
		})
		Expect(networkEvents(Default, uid)).NotTo(HaveKey(controllers.EventDNSDeployed), "nothing is applied while a foreign object is in the way")
	})
})
