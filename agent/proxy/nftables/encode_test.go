package nftables

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/nftables/expr"
)

// TestEncodeElement pins the register layout of each kind of element (the
// kernel test proves the same against nft's own encoding).
func TestEncodeElement(t *testing.T) {
	slot3 := binary.NativeEndian.AppendUint32(nil, 3)
	cases := []struct {
		name       string
		e          element
		key, value []byte
		verdict    *expr.Verdict
	}{
		{"endpoint v4", element{"endpoints-v4-2", "10.96.0.10 . tcp . 80 . 3", "10.244.1.5 . 8080"},
			append([]byte{10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0}, slot3...), []byte{10, 244, 1, 5, 0x1f, 0x90, 0, 0}, nil},
		{"frontend v6 verdict", element{"vips-v6", "fd00::1 . sctp . 443", "goto dnat-v6-2"},
			append(append([]byte{0xfd}, make([]byte, 14)...), 1, 132, 0, 0, 0, 1, 0xbb, 0, 0), nil,
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: "dnat-v6-2"}},
		{"no endpoints drop", element{"no-endpoints-v4", "10.96.0.1 . udp . 53", "drop"},
			[]byte{10, 96, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0}, nil, &expr.Verdict{Kind: expr.VerdictDrop}},
		{"hairpin set", element{"hairpin-v4", "10.244.1.5 . 10.244.1.5", ""},
			[]byte{10, 244, 1, 5, 10, 244, 1, 5}, nil, nil},
		{"stamp: one field, no padding", element{setStamp, "::1:2", ""},
			append(make([]byte, 12), 0, 1, 0, 2), nil, nil},
	}
	for _, c := range cases {
		got, err := encodeElement(c.e, true)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got.Key, c.key) || !bytes.Equal(got.Val, c.value) {
			t.Errorf("%s: key % x value % x, want key % x value % x", c.name, got.Key, got.Val, c.key, c.value)
		}
		if (got.VerdictData == nil) != (c.verdict == nil) || (c.verdict != nil && *got.VerdictData != *c.verdict) {
			t.Errorf("%s: verdict %+v, want %+v", c.name, got.VerdictData, c.verdict)
		}
		if del, _ := encodeElement(c.e, false); del.Val != nil || del.VerdictData != nil {
			t.Errorf("%s: a delete carries a value", c.name)
		}
	}
	for _, bad := range []element{{"vips-v4", "10.96.0.1 . icmp . 80", "drop"}, {"vips-v4", "10.96.0.1 . tcp . 80", "goto "}, {"endpoints-v4-1", "10.96.0.1 . tcp . 80 . x", "1.2.3.4 . 80"}} {
		if _, err := encodeElement(bad, true); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
