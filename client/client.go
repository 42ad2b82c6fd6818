package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// DefaultTimeout bounds one request. A deploy waits for the function's
// first replica to be ready, so it is generous.
const DefaultTimeout = 3 * time.Minute

// Client calls the provider's /system API.
type Client struct {
	URL         string // the gateway, without a trailing slash
	Credentials *Credentials
	HTTP        *http.Client
	// insecure skips TLS verification (faas-cli's --tls-no-verify).
	insecure bool
}

// SkipTLSVerify makes the client accept any TLS certificate, as faas-cli's
// --tls-no-verify does: for a gateway with a self-signed certificate.
func (c *Client) SkipTLSVerify() {
	c.insecure = true
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	c.HTTP.Transport = t
}

// NewClient returns a client for gatewayURL; creds may be nil.
func NewClient(gatewayURL string, creds *Credentials) *Client {
	return &Client{URL: gatewayURL, Credentials: creds, HTTP: &http.Client{Timeout: DefaultTimeout}}
}

// Function answers GET /system/function/NAME: the function's current
// definition and status. A missing function is a *StatusError with code 404
// (see IsNotFound).
func (c *Client) Function(ctx context.Context, name, namespace string) (types.FunctionStatus, error) {
	var st types.FunctionStatus
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	err := c.do(ctx, http.MethodGet, "/system/function/"+url.PathEscape(name), q, nil, &st)
	return st, err
}

// Deploy creates a function: POST /system/functions.
func (c *Client) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	return c.do(ctx, http.MethodPost, "/system/functions", nil, dep, nil)
}

// Update replaces a function's definition: PUT /system/functions.
func (c *Client) Update(ctx context.Context, dep types.FunctionDeployment) error {
	return c.do(ctx, http.MethodPut, "/system/functions", nil, dep, nil)
}

// Delete removes a function: DELETE /system/functions.
func (c *Client) Delete(ctx context.Context, name, namespace string) error {
	req := types.DeleteFunctionRequest{FunctionName: name, Namespace: namespace}
	return c.do(ctx, http.MethodDelete, "/system/functions", nil, req, nil)
}

// do sends one request with a JSON body (if in is not nil) and decodes a
// JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.Credentials.apply(req)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Name the whole URL: where the request went is what to check.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Message: firstLine(resp.Body), Hint: c.hint(resp.StatusCode)}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

// hint explains an authentication failure.
func (c *Client) hint(code int) string {
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		return ""
	}
	if c.Credentials == nil {
		return "no credentials found for " + c.URL + ": run faas-cli login, or set secret_mount_path to the provider's credentials directory"
	}
	return "credentials from " + c.Credentials.Source
}
