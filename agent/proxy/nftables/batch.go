package nftables

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

const (
	// nftCommand is the nft binary, found through PATH as knftables does.
	nftCommand = "nft"
	// batchSize is the number of elements per `add element` command when
	// batching: one command per element makes nft parse and evaluate
	// 110k commands at 10k Services (≈ 2.4 s); a few large commands take
	// ≈ 1.5 s for the same table.
	batchSize = 5000
)

// writeElements adds (or deletes) elems in tx: one command per element,
// or, when batch is set, one command per set and batchSize elements. The
// batched form writes several elements through one knftables.Element (its
// Key holds "k1 : v1, k2 : v2, ..., kN" and its Value "vN"), which nft
// reads as one element list; knftables' fake would store that as a single
// odd element, so tests against the fake use the unbatched form.
func writeElements(tx *knftables.Transaction, add bool, elems []element, batch bool) {
	if !batch {
		for _, e := range elems {
			if add {
				tx.Add(elementObj(e))
			} else {
				tx.Delete(elementObj(e))
			}
		}
		return
	}
	bySet := map[string][]element{}
	var names []string
	for _, e := range elems {
		if bySet[e.set] == nil {
			names = append(names, e.set)
		}
		bySet[e.set] = append(bySet[e.set], e)
	}
	slices.Sort(names)
	for _, name := range names {
		list := bySet[name]
		for start := 0; start < len(list); start += batchSize {
			chunk := list[start:min(start+batchSize, len(list))]
			el := batchedElement(name, chunk, add)
			if add {
				tx.Add(el)
			} else {
				tx.Delete(el)
			}
		}
	}
}

func batchedElement(set string, chunk []element, add bool) *knftables.Element {
	var b strings.Builder
	withValues := add && !isSet(set)
	for i, e := range chunk {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.key)
		if withValues && i < len(chunk)-1 {
			b.WriteString(" : ")
			b.WriteString(e.value)
		}
	}
	el := &knftables.Element{Key: []string{b.String()}}
	if isSet(set) {
		el.Set = set
	} else {
		el.Map = set
		if withValues {
			el.Value = []string{chunk[len(chunk)-1].value}
		}
	}
	return el
}

// tableReader reads what the full sync compares: the chain names of the
// table (and whether it exists) and the elements of sync-stamp.
type tableReader struct {
	chains func(ctx context.Context) (names []string, exists bool, err error)
	stamp  func(ctx context.Context) ([]string, error)
}

// fakeReader reads through knftables (used with its fake).
func fakeReader(nft knftables.Interface) tableReader {
	return tableReader{
		chains: func(ctx context.Context) ([]string, bool, error) {
			names, err := nft.List(ctx, "chains")
			if knftables.IsNotFound(err) {
				return nil, false, nil
			}
			return names, err == nil, err
		},
		stamp: func(ctx context.Context) ([]string, error) {
			elems, err := nft.ListElements(ctx, "set", setStamp)
			if knftables.IsNotFound(err) {
				return nil, nil
			}
			var out []string
			for _, e := range elems {
				out = append(out, strings.Join(e.Key, " . "))
			}
			return out, err
		},
	}
}

// execReader runs nft in the caller's namespace. Why not knftables' List:
// it runs `list table --terse`, which still makes nft fetch every set
// element from the kernel (seconds at 10k Services); `list chains` fetches
// tables and chains only, `list set` one set (milliseconds each).
func execReader() tableReader {
	return tableReader{chains: execChains, stamp: execStamp}
}

func execChains(ctx context.Context) ([]string, bool, error) {
	out, err := exec.CommandContext(ctx, nftCommand, "-j", "list", "chains", string(TableFamily)).Output()
	if err != nil {
		return nil, false, fmt.Errorf("nft list chains: %w", err)
	}
	var doc struct {
		Nftables []struct {
			Chain *struct {
				Table string `json:"table"`
				Name  string `json:"name"`
			} `json:"chain"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, false, fmt.Errorf("parse nft list chains: %w", err)
	}
	var names []string
	for _, o := range doc.Nftables {
		if o.Chain != nil && o.Chain.Table == TableName {
			names = append(names, o.Chain.Name)
		}
	}
	// A table always has our base chains; none listed means no table.
	return names, len(names) > 0, nil
}

// execStamp lists sync-stamp; a missing set (an older layout) reads as
// empty, which never matches.
func execStamp(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, nftCommand, "-j", "list", "set", string(TableFamily), TableName, setStamp).Output()
	if err != nil {
		return nil, nil
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parse nft list set %s: %w", setStamp, err)
	}
	var elems []string
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return []string{string(raw)}, nil // not ours: never matches
			}
			elems = append(elems, s)
		}
	}
	return elems, nil
}
