package proxybench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-net/plexus/agent/cachetrim"
	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
)

// The Plexus side of the comparison runs as a child process of the test binary, started inside
// the benchmark's network namespace (like kube-proxy), selected by these environment variables.
const (
	envAgent       = "PROXYBENCH_AGENT"        // "1": run the agent instead of the tests
	envAgentAPI    = "PROXYBENCH_AGENT_API"    // API server URL (on the namespace's loopback)
	envAgentToken  = "PROXYBENCH_AGENT_TOKEN"  // bearer token
	envAgentNode   = "PROXYBENCH_AGENT_NODE"   // node name
	envAgentListen = "PROXYBENCH_AGENT_LISTEN" // address of its /state endpoint
	// envHeapProfile, when set by the user, is a file the agent writes its heap profile to
	// (after the GC of a mem=1 query, i.e. where the benchmark reads its Go heap), and to
	// FILE.first after its first sync (as of the last GC: near its peak).
	envHeapProfile = "PROXYBENCH_HEAP_PROFILE"
	// envAgentGOGC, envAgentGoMemLimit and envAgentGoDebug, when set by the user, become the
	// agent's GOGC, GOMEMLIMIT and GODEBUG (the control plane's processes keep the defaults).
	envAgentGOGC       = "PROXYBENCH_AGENT_GOGC"
	envAgentGoMemLimit = "PROXYBENCH_AGENT_GOMEMLIMIT"
	envAgentGoDebug    = "PROXYBENCH_AGENT_GODEBUG"
	// envAgentUntrimmed=1 caches whole objects, without the agent's informer transforms (to
	// measure what they save).
	envAgentUntrimmed = "PROXYBENCH_AGENT_UNTRIMMED"
)

// TestMain runs the Plexus proxy agent when the benchmark starts this binary as its child.
func TestMain(m *testing.M) {
	if os.Getenv(envAgent) == "1" {
		if err := runAgent(); err != nil {
			fmt.Fprintln(os.Stderr, "proxybench agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncReport describes one sync of the agent.
type syncReport struct {
	End        int64 // unix nanoseconds when Sync returned
	DurationNs int64
	Full       bool
	Wrote      bool
	Operations int
	Elements   int
}

// agentState is what the agent's /state endpoint answers.
type agentState struct {
	Syncs int
	First syncReport
	Last  syncReport
	// Present says the last programmed model has the queried Service (and, when asked, the
	// endpoint address among its cluster endpoints); ProgrammedAt is when the sync that last
	// changed that Service returned (unix nanoseconds).
	Present      bool
	ProgrammedAt int64
	// ProgrammedIn is the duration of that sync (model update + nftables transaction).
	ProgrammedIn int64
	// HeapInuse is the Go heap in use after a GC (only with mem=1).
	HeapInuse uint64
	Error     string
}

// agent is a minimal Plexus service proxy: informers for Services and EndpointSlices feed a
// proxy.Tracker, and one loop syncs the Tracker's Model with the nftables Proxier whenever
// something changed (no minimum interval between syncs). It is the data path of the real agent's
// service proxy without its status reporting.
type agent struct {
	mu           sync.Mutex
	tracker      *proxy.Tracker
	dirty        map[string]bool // Service names changed since the last Model
	kick         chan struct{}
	cur          proxy.Model
	programmedAt map[string]int64
	programmedIn map[string]int64
	syncs        int
	first, last  syncReport
	lastErr      error
}

func runAgent() error {
	if os.Getenv(envHeapProfile) != "" {
		// Finer samples than the default one per 512 KiB: the profile is read for its parts.
		runtime.MemProfileRate = 4096
	}
	cfg := &rest.Config{
		Host:            os.Getenv(envAgentAPI),
		BearerToken:     os.Getenv(envAgentToken),
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		// As kube-proxy's defaults: protobuf; a proxy only lists and watches.
		ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
		QPS:           5, Burst: 10,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	a := &agent{
		tracker:      proxy.NewTracker(proxy.NodeInfo{Name: os.Getenv(envAgentNode)}),
		dirty:        map[string]bool{},
		kick:         make(chan struct{}, 1),
		programmedAt: map[string]int64{},
		programmedIn: map[string]int64{},
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	f := informers.NewSharedInformerFactory(cs, 15*time.Minute)
	svcInf := f.Core().V1().Services().Informer()
	sliceInf := f.Discovery().V1().EndpointSlices().Informer()
	// The agent's informer transforms: the process holds what the agent's caches hold.
	if os.Getenv(envAgentUntrimmed) != "1" {
		if err := svcInf.SetTransform(cachetrim.Service); err != nil {
			return err
		}
		if err := sliceInf.SetTransform(cachetrim.EndpointSlice); err != nil {
			return err
		}
	}
	// The first sync must see every object: wait for the handlers to have been given the initial
	// list (an informer's own HasSynced only says its store has it).
	svcReg, err := svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { a.service(o, false) },
		UpdateFunc: func(_, o any) { a.service(o, false) },
		DeleteFunc: func(o any) { a.service(o, true) },
	})
	if err != nil {
		return err
	}
	sliceReg, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { a.slice(o, false) },
		UpdateFunc: func(_, o any) { a.slice(o, false) },
		DeleteFunc: func(o any) { a.slice(o, true) },
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcReg.HasSynced, sliceReg.HasSynced) {
		return fmt.Errorf("informer caches did not sync")
	}
	nft, err := nfttable.Open(nftables.TableFamily, nftables.TableName)
	if err != nil {
		return err
	}
	// As in the agent: element changes go through a lasting netlink socket.
	nl, err := nftables.NewNetlink("")
	if err != nil {
		return err
	}
	defer nl.Close()
	p := nftables.New(nft, nftables.WithNetlink(nl))

	srv := &http.Server{Addr: os.Getenv(envAgentListen), Handler: http.HandlerFunc(a.serveState), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()

	a.signal()
	released := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		}
		// The reported duration covers the model update and the Sync, as kube-proxy's
		// sync duration covers computing its rules and writing them.
		start := time.Now()
		a.mu.Lock()
		m := a.tracker.Model()
		names := a.dirty
		a.dirty = map[string]bool{}
		a.mu.Unlock()
		err := p.Sync(ctx, m)
		end := time.Now().UnixNano()
		took := time.Since(start)
		st := p.Stats()
		a.mu.Lock()
		a.lastErr = err
		if err == nil {
			a.cur = m
			for n := range names {
				a.programmedAt[n] = end
				a.programmedIn[n] = int64(took)
			}
			a.syncs++
			a.last = syncReport{End: end, DurationNs: int64(took), Full: st.Full, Wrote: st.Wrote, Operations: st.Operations, Elements: st.Elements}
			if a.syncs == 1 {
				a.first = a.last
				if path := os.Getenv(envHeapProfile); path != "" {
					// As of the last GC, which the first (full) sync's garbage usually triggers:
					// what the process holds at its peak.
					if err := writeHeapProfile(path + ".first"); err != nil {
						fmt.Fprintln(os.Stderr, "heap profile:", err)
					}
				}
			}
		} else {
			for n := range names { // retried with the next sync
				a.dirty[n] = true
			}
		}
		a.mu.Unlock()
		if err == nil && st.Wrote && !released {
			released = true
			debug.FreeOSMemory() // as the agent does after its first sync that wrote Services (agent/sync.go)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sync:", err)
			time.Sleep(100 * time.Millisecond)
			a.signal()
		}
	}
}

func (a *agent) signal() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *agent) service(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	svc, ok := o.(*corev1.Service)
	if !ok {
		return
	}
	a.mu.Lock()
	if deleted {
		a.tracker.DeleteService(svc.Namespace, svc.Name)
	} else {
		a.tracker.SetService(svc)
	}
	a.dirty[svc.Name] = true
	a.mu.Unlock()
	a.signal()
}

func (a *agent) slice(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	a.mu.Lock()
	if deleted {
		a.tracker.DeleteSlice(s)
	} else {
		a.tracker.SetSlice(s)
	}
	a.dirty[s.Labels[discoveryv1.LabelServiceName]] = true
	a.mu.Unlock()
	a.signal()
}

// serveState answers GET /state?svc=NAME&ip=ADDR&mem=1.
func (a *agent) serveState(w http.ResponseWriter, r *http.Request) {
	var st agentState
	if r.URL.Query().Get("mem") == "1" {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st.HeapInuse = ms.HeapInuse
		if path := os.Getenv(envHeapProfile); path != "" {
			if err := writeHeapProfile(path); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
		}
	}
	a.mu.Lock()
	st.Syncs, st.First, st.Last = a.syncs, a.first, a.last
	if a.lastErr != nil {
		st.Error = a.lastErr.Error()
	}
	if svc := r.URL.Query().Get("svc"); svc != "" {
		key := proxy.Key{ServicePortName: proxy.ServicePortName{Namespace: benchNamespace, Name: svc, Port: portName}, Family: proxy.IPv4}
		if sp := a.cur.Ports[key]; sp != nil {
			st.Present = true
			if ip := r.URL.Query().Get("ip"); ip != "" {
				want, _ := netip.ParseAddr(ip)
				st.Present = false
				for _, e := range sp.ClusterEndpoints {
					if e.Addr == want {
						st.Present = true
					}
				}
			}
		}
		st.ProgrammedAt, st.ProgrammedIn = a.programmedAt[svc], a.programmedIn[svc]
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// writeHeapProfile writes the heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
