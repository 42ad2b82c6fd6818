package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loadRun is one closed-loop load run: conns workers, each sending the next
// request when the previous answer is read, over keep-alive connections.
type loadRun struct {
	Target   string // "provider" or "direct"
	Conns    int
	Elapsed  time.Duration
	Requests int
	Errors   int
	RPS      float64
	P50, P99 time.Duration
	// CPUPerReq is the proxy process's CPU time (user and system) over the
	// run per request; 0 for direct.
	CPUPerReq time.Duration
}

// runLoad sends GET url from conns workers for d and records the latency of
// every request (to the end of its body).
func runLoad(ctx context.Context, target, url string, conns int, d time.Duration) (loadRun, error) {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	lat := make([][]time.Duration, conns)
	errs := make([]int, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conns {
		lat[w] = make([]time.Duration, 0, 1<<14)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := get(ctx, client, url); err != nil {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return loadRun{}, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := loadRun{Target: target, Conns: conns, Elapsed: elapsed, Requests: len(all)}
	for _, e := range errs {
		r.Errors += e
	}
	r.RPS = float64(len(all)) / elapsed.Seconds()
	r.P50 = durPercentileSorted(all, 50)
	r.P99 = durPercentileSorted(all, 99)
	if len(all) == 0 {
		return r, fmt.Errorf("load on %s: no request succeeded (%d errors)", url, r.Errors)
	}
	return r, nil
}

func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}
