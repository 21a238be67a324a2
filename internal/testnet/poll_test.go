package testnet

import (
	"context"
	"testing"
	"time"
)

func TestPollReportsWhetherTheConditionHeld(t *testing.T) {
	calls := 0
	if !Poll(time.Second, time.Millisecond, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Fatalf("Poll: calls=%d, want true after 3", calls)
	}
	calls = 0
	if Poll(20*time.Millisecond, time.Millisecond, func() bool { calls++; return false }) || calls < 2 {
		t.Fatalf("Poll of a condition that never holds: calls=%d, want false after several", calls)
	}
	calls = 0
	if Poll(0, time.Hour, func() bool { calls++; return false }) || calls != 1 {
		t.Fatalf("Poll with no time: calls=%d, want one call", calls)
	}
}

func TestPollContextStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	if PollContext(ctx, time.Millisecond, func() bool {
		calls++
		if calls == 2 {
			cancel()
		}
		return false
	}) || calls != 2 {
		t.Fatalf("PollContext: calls=%d, want false after the cancel at call 2", calls)
	}
}
