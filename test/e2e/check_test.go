package e2e

import (
	"bytes"
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/check"
)

// checkNamespaces lists the namespaces plexusctl check made that still exist.
func checkNamespaces() []string {
	var list corev1.NamespaceList
	Expect(k8s.List(ctx, &list, client.MatchingLabels{check.ManagedByLabel: "plexusctl-check"})).To(Succeed())
	var out []string
	for _, ns := range list.Items {
		out = append(out, ns.Name)
	}
	return out
}

func checkClient() kubernetes.Interface {
	rc, err := clientcmd.BuildConfigFromFlags("", labCfg.AdminKubeconfig())
	Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(rc)
	Expect(err).NotTo(HaveOccurred())
	return cs
}

var _ = Describe("plexusctl check", func() {
	It("is green on the lab and leaves nothing behind", func() {
		var progress bytes.Buffer
		rep, err := check.Run(ctx, checkClient(), k8s, check.Options{Progress: &progress})
		Expect(err).NotTo(HaveOccurred(), progress.String())
		var out bytes.Buffer
		check.Format(&out, rep)
		AddReportEntry("plexusctl check", out.String())
		Expect(rep.Failures()).To(BeEmpty(), out.String())
		var nodes corev1.NodeList
		Expect(k8s.List(ctx, &nodes)).To(Succeed())
		ready := 0
		for i := range nodes.Items {
			if nodeReady(&nodes.Items[i]) {
				ready++
			}
		}
		Expect(rep.Rows).To(HaveLen(2*ready), "a pod-network and a host-network client per Ready node")
		Expect(out.String()).NotTo(ContainSubstring("✗"), "a failed cell in the matrix")
		// Every kind of check ran somewhere: none is silently empty.
		probed := map[string]bool{}
		for _, row := range rep.Rows {
			for _, r := range row.Results {
				probed[r.Check] = true
			}
		}
		Expect(probed).To(HaveLen(len(rep.Columns)), "checks that ran: %v of %v", probed, rep.Columns)
		Expect(checkNamespaces()).To(BeEmpty())
	})

	It("removes its namespace when interrupted", func() {
		cctx, cancel := context.WithCancel(ctx)
		var progress bytes.Buffer
		done := make(chan error, 1)
		go func() {
			_, err := check.Run(cctx, checkClient(), k8s, check.Options{Progress: &progress})
			done <- err
		}()
		Eventually(checkNamespaces, time.Minute, 200*time.Millisecond).ShouldNot(BeEmpty())
		cancel() // Ctrl-C
		var err error
		Eventually(done, 2*time.Minute).Should(Receive(&err))
		Expect(err).To(HaveOccurred())
		Expect(progress.String()).To(ContainSubstring("removing namespace"))
		Eventually(func() []string {
			var left []string
			for _, ns := range checkNamespaces() {
				var n corev1.Namespace
				if k8s.Get(ctx, client.ObjectKey{Name: ns}, &n) == nil && n.DeletionTimestamp == nil {
					left = append(left, ns)
				}
			}
			return left
		}, time.Minute, time.Second).Should(BeEmpty(), strings.TrimSpace(progress.String()))
	})
})
