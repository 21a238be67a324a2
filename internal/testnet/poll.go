package testnet

import (
	"context"
	"time"
)

// Poll calls cond every interval until it is true or bound has passed, and reports which. For
// waits whose outcome is a figure rather than a pass or fail.
func Poll(bound, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return PollContext(ctx, interval, cond)
}

// PollContext calls cond every interval until it is true or ctx is done, and reports which. cond
// always runs at least once. The interval runs from one start of cond to the next, so a cond that
// took longer than interval (a connection attempt that timed out) is retried at once. An interval
// of zero or less polls as often as cond returns (cond paces itself, e.g. a request with a timeout).
func PollContext(ctx context.Context, interval time.Duration, cond func() bool) bool {
	if interval <= 0 {
		interval = time.Nanosecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
