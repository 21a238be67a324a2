package proxy

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/plexus-net/plexus/ingress/translate"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rolloutInput routes roll.test to Service "roll" whose endpoints are pods (one EndpointSlice
// per pod, as each test backend listens on its own port).
func rolloutInput(pods ...*backend) translate.Input {
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "plexus"},
			Spec:       networkingv1.IngressClassSpec{Controller: controllerName},
		}},
		Ingresses: []networkingv1.Ingress{ingressOf("roll", 0, hostRule("roll.test", toService(networkingv1.PathTypePrefix, "/", "roll")))},
	}
	for i, b := range pods {
		svc, es := serviceFor("roll", b)
		if i == 0 {
			in.Services = append(in.Services, svc)
		}
		es.Name = "roll-" + b.name
		in.EndpointSlices = append(in.EndpointSlices, es)
	}
	return in
}

// TestRolloutBehindTheProxy replaces every pod of a Service while clients send requests, in the
// two ways pods go away. Graceful (a rollout): the endpoint leaves the EndpointSlice, the
// controller loads the change, then the pod shuts down; GET and POST see no error. Crash: the
// pod dies while still listed; connections to it are refused and the request is retried on
// another endpoint. Only GETs run then: a POST that was already written to a kept-alive
// upstream connection when the pod died cannot be retried safely (the pod may have acted on
// it), so it can fail, as with any proxy.
func TestRolloutBehindTheProxy(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "graceful"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) { testRollout(t, crash) })
	}
}

func testRollout(t *testing.T, crash bool) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	port := freePort(t)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(t, p, port), StorageDir: t.TempDir(), LogLevel: "ERROR"}
	load := func(pods ...*backend) {
		t.Helper()
		if _, err := p.Load(translate.Translate(rolloutInput(pods...), opts).Config); err != nil {
			t.Fatalf("load: %v", err)
		}
	}
	gen := []*backend{startBackend(t, "r1"), startBackend(t, "r2")}
	load(gen...)

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cl := newClient(port, 0, nil)
	t.Cleanup(cl.closeIdle)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			method := http.MethodGet
			if w%2 == 1 && !crash {
				method = http.MethodPost
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := cl.do(method, "http", "roll.test", "/p")
				if err == nil && got.status == 200 && strings.HasSuffix(got.body, " /p") {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				if err != nil {
					firstFailure.CompareAndSwap(nil, method+": "+err.Error())
				} else {
					firstFailure.CompareAndSwap(nil, method+": "+itoa(got.status)+" "+got.body)
				}
			}
		}(w)
	}
	waitForRequests(&ok, 100)
	const rounds = 4
	for round := 0; round < rounds; round++ {
		old, next := gen[0], startBackend(t, "r"+itoa(3+round))
		gen = []*backend{gen[1], next}
		if crash {
			old.srv.Close() // dies while still listed...
			waitForRequests(&ok, 100)
			load(gen...) // ...then leaves the slice
		} else {
			load(gen...) // leaves the slice...
			waitForRequests(&ok, 50)
			old.srv.Close() // ...then stops
		}
		waitForRequests(&ok, 100)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d pod replacements under load: %d requests, %d ok, %d failed", rounds, ok.Load()+failed.Load(), ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the rollout; first: %v", failed.Load(), firstFailure.Load())
	}
}
