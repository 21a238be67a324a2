package testnet

import "time"

// Poll calls cond every interval until it is true or bound has passed, and reports which. For
// waits whose outcome is a figure rather than a pass or fail.
func Poll(bound, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
