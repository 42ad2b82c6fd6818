// Package ticker runs periodic work until a context ends: the provider's
// flush loop and the policies' tick share it.
package ticker

import (
	"context"
	"time"
)

// Every calls f each period until ctx ends (f's calls do not overlap).
func Every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
