package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// call makes an authenticated request to the provider's /system API and
// returns the status and body.
func (p *Provider) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, r)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.SetBasicAuth(p.User, p.Pass)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, out, nil
}

func (p *Provider) expect(ctx context.Context, want int, method, path string, body any) error {
	code, out, err := p.call(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, code, strings.TrimSpace(string(out)))
	}
	return nil
}

// Deploy creates a function.
func (p *Provider) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	return p.expect(ctx, http.StatusAccepted, http.MethodPost, "/system/functions", dep)
}

// Delete removes a function.
func (p *Provider) Delete(ctx context.Context, name string) error {
	return p.expect(ctx, http.StatusAccepted, http.MethodDelete, "/system/functions", types.DeleteFunctionRequest{FunctionName: name})
}

// Scale sets a function's replicas and returns how long the call took (for
// zero: the time to pause, checkpoint or remove it).
func (p *Provider) Scale(ctx context.Context, name string, n uint64) (time.Duration, error) {
	start := time.Now()
	err := p.expect(ctx, http.StatusAccepted, http.MethodPost, "/system/scale-function/"+name, types.ScaleServiceRequest{ServiceName: name, Replicas: n})
	return time.Since(start), err
}

// Status returns one function's status.
func (p *Provider) Status(ctx context.Context, name string) (types.FunctionStatus, error) {
	var st types.FunctionStatus
	code, out, err := p.call(ctx, http.MethodGet, "/system/function/"+name, nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("status of %s: %d: %s", name, code, strings.TrimSpace(string(out)))
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("status of %s: %w", name, err)
	}
	return st, nil
}

// Annotation returns one annotation of a function's status.
func (p *Provider) Annotation(ctx context.Context, name, key string) (string, error) {
	st, err := p.Status(ctx, name)
	if err != nil || st.Annotations == nil {
		return "", err
	}
	return (*st.Annotations)[key], nil
}

// MemoryInfo is the memory part of /system/info.
type MemoryInfo struct {
	BudgetBytes int64 `json:"budgetBytes"`
	UsedBytes   int64 `json:"usedBytes"`
}

// Memory reads the budget and the memory used by functions from /system/info.
func (p *Provider) Memory(ctx context.Context) (MemoryInfo, error) {
	var doc struct {
		Memory MemoryInfo `json:"memory"`
	}
	code, out, err := p.call(ctx, http.MethodGet, "/system/info", nil)
	if err != nil {
		return doc.Memory, err
	}
	if code != http.StatusOK {
		return doc.Memory, fmt.Errorf("/system/info: %d", code)
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return doc.Memory, fmt.Errorf("/system/info: %w", err)
	}
	return doc.Memory, nil
}

// WaitAvailable waits until a function has n ready replicas.
func (p *Provider) WaitAvailable(ctx context.Context, name string, n uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := p.Status(ctx, name)
		if err != nil {
			return err
		}
		if st.Replicas == n && st.AvailableReplicas == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: want %d ready replicas, have %d of %d after %s", name, n, st.AvailableReplicas, st.Replicas, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Invoke calls /function/NAME/path (no credentials, as OpenFaaS) and returns
// the trimmed body and the time to the first byte of the response.
func (p *Provider) Invoke(ctx context.Context, name, path string) (string, time.Duration, error) {
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, p.URL+"/function/"+name+path, nil)
	if err != nil {
		return "", 0, fmt.Errorf("invoke %s%s: %w", name, path, err)
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("invoke %s%s: %w", name, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	ttfb := first.Sub(start)
	if err != nil {
		return "", ttfb, fmt.Errorf("invoke %s%s: read answer: %w", name, path, err)
	}
	body := strings.TrimSpace(string(out))
	if resp.StatusCode != http.StatusOK {
		return body, ttfb, fmt.Errorf("invoke %s%s: status %d: %s", name, path, resp.StatusCode, body)
	}
	return body, ttfb, nil
}
