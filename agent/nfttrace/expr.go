package nfttrace

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// This file evaluates the expressions of a rule: concatenations of packet
// and conntrack fields, and jhash.

// jhashOfMark is the tracer's `jhash ct mark mod n`: the kernel's hash
// spreads a choice over the slots; the tracer takes the choice modulo n,
// which is as good for following one connection and lets connect pick the
// choice that gives a wanted slot. A random choice is any slot.
func (t *Tracer) jhashOfMark(s *state, n int) string {
	if s.ctMarkRandom {
		return "*"
	}
	return strconv.Itoa(int(s.ctMark&^t.layout.ChoiceMask) % n)
}

// fakeJhash stands for nft's jhash of other fields: any function of them
// and the seed does, as the tracer only compares hashes with hashes.
func fakeJhash(fields []string, seed string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(seed + "|" + strings.Join(fields, "|")))
	return strconv.Itoa(int(h.Sum32()))
}

// fieldLen is the number of tokens of each field the rules use.
var fieldLen = map[string]int{"ip": 2, "ip6": 2, "meta": 2, "th": 2, "ct": 2, "numgen": 4}

// exprLen returns how many tokens the concatenation at the start of toks
// takes.
func exprLen(toks []string) int {
	i := 0
	for {
		n := fieldLenAt(toks[i:])
		if n == 0 {
			panic(fmt.Sprintf("tracer: unknown field at %q", toks[i:]))
		}
		i += n
		if i >= len(toks) || toks[i] != "." {
			return i
		}
		i++
	}
}

// expr evaluates a concatenation to its field values; numgen gives "*".
func (t *Tracer) expr(toks []string, s *state) []string {
	var out []string
	for i := 0; i < len(toks); {
		n := fieldLenAt(toks[i:])
		f := strings.Join(toks[i:i+n], " ")
		i += n
		if toks[i-n] == "jhash" {
			out = append(out, t.jhash(toks[i-n:i], s))
			if i < len(toks) && toks[i] == "." {
				i++
			}
			continue
		}
		switch f {
		case "ip saddr", "ip6 saddr":
			out = append(out, s.p.Src.String())
		case "ip daddr", "ip6 daddr":
			out = append(out, s.dst.String())
		case "meta l4proto":
			out = append(out, s.p.Proto)
		case "th dport":
			out = append(out, strconv.Itoa(int(s.dport)))
		case "meta mark":
			out = append(out, strconv.Itoa(int(s.mark)))
		case "ct mark":
			out = append(out, strconv.Itoa(int(s.ctMark)))
		case "meta nfproto":
			out = append(out, map[bool]string{true: "ipv4", false: "ipv6"}[s.p.Src.Is4()])
		case "ct state":
			out = append(out, "new")
		case "ct status":
			if s.dnat {
				out = append(out, "dnat")
			} else {
				out = append(out, "none")
			}
		case "ct original ip daddr", "ct original ip6 daddr":
			out = append(out, s.p.Dst.String())
		case "ct original proto-dst":
			out = append(out, strconv.Itoa(int(s.p.DPort)))
		default:
			if strings.HasPrefix(f, "numgen random mod") {
				out = append(out, "*")
				continue
			}
			panic("tracer: unknown field " + f)
		}
		if i < len(toks) && toks[i] == "." {
			i++
		}
	}
	return out
}

func fieldLenAt(toks []string) int {
	if toks[0] == "jhash" {
		// jhash <concat> mod M [seed S] [offset O]
		n := slices.Index(toks, "mod") + 2
		for _, opt := range []string{"seed", "offset"} {
			if n < len(toks) && toks[n] == opt {
				n += 2
			}
		}
		return n
	}
	if toks[0] == "ct" && toks[1] == "original" {
		if toks[2] == "ip" || toks[2] == "ip6" {
			return 4
		}
		return 3
	}
	return fieldLen[toks[0]]
}

// jhash evaluates `jhash <concat> mod M [seed S]`: of the ct mark alone it
// is the slot of an affinity choice (jhashOfMark), of anything else a fake
// hash.
func (t *Tracer) jhash(toks []string, s *state) string {
	mod := slices.Index(toks, "mod")
	m, _ := strconv.Atoi(toks[mod+1])
	if strings.Join(toks[1:mod], " ") == "ct mark" {
		return t.jhashOfMark(s, m)
	}
	seed := ""
	if i := slices.Index(toks, "seed"); i > 0 {
		seed = toks[i+1]
	}
	return fakeJhash(t.expr(toks[1:mod], s), seed)
}
