package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// streamBuffer bounds the kernel's send buffer for transfers, so that the
// bytes a migration reports as sent are (within this much) on the wire, not
// queued in the kernel.
const streamBuffer = 128 << 10

// streamTransport carries transfers that may take long on a slow link.
var streamTransport = &http.Transport{
	Proxy: http.ProxyFromEnvironment,
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(streamBuffer)
		}
		return c, err
	},
	TLSHandshakeTimeout: 10 * time.Second,
	IdleConnTimeout:     30 * time.Second,
}

// streaming is a client without an overall timeout, for transfers that may
// take long on a slow link; the caller's context bounds them.
func (c *Client) streaming() *http.Client {
	if c.insecure {
		t := streamTransport.Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: streamTransport}
}

// send makes one request with body r and fails unless the answer is 2xx.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, contentType string, r io.Reader) (*http.Response, error) {
	u := c.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c.Credentials.apply(req)
	resp, err := c.streaming().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Message: firstLine(resp.Body), Hint: c.hint(resp.StatusCode)}
	}
	return resp, nil
}

// Check makes sure the gateway is a faas-criu that can restore checkpoints
// and takes the credentials. It is the first step of a migration to it.
func (c *Client) Check(ctx context.Context) error {
	var info struct {
		Provider string `json:"provider"`
		CRIU     struct {
			Available bool   `json:"available"`
			Problem   string `json:"problem"`
		} `json:"criu"`
	}
	// The provider's shape: faas-criu answers the gateway's to other callers.
	if err := c.do(ctx, http.MethodGet, "/system/info", url.Values{"shape": {"provider"}}, nil, &info); err != nil {
		return err
	}
	if info.Provider != "faas-criu" {
		return fmt.Errorf("%s runs %q, not faas-criu", c.URL, info.Provider)
	}
	if !info.CRIU.Available {
		return fmt.Errorf("%s cannot restore checkpoints: %s", c.URL, info.CRIU.Problem)
	}
	return nil
}

// HasImage reports whether the gateway's engine has an image.
func (c *Client) HasImage(ctx context.Context, id string) (bool, error) {
	err := c.do(ctx, http.MethodGet, "/system/import/image", url.Values{"id": {id}}, nil, nil)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// SendImage streams a compressed docker save stream to the gateway.
func (c *Client) SendImage(ctx context.Context, r io.Reader) error {
	resp, err := c.send(ctx, http.MethodPost, "/system/import/image", nil, "application/zstd", r)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Import streams a compressed migration archive; the gateway answers once it
// has restored the function.
func (c *Client) Import(ctx context.Context, r io.Reader, replace bool) error {
	q := url.Values{}
	if replace {
		q.Set("replace", "true")
	}
	resp, err := c.send(ctx, http.MethodPost, "/system/import", q, "application/zstd", r)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Migrate asks the gateway (the source) to move a function, and calls
// progress with each line it streams back. The error says which step failed.
func (c *Client) Migrate(ctx context.Context, req api.MigrateRequest, progress func(api.Progress)) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodPost, "/system/migrate", nil, "application/json", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var p api.Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("malformed progress line %q: %w", sc.Text(), err)
		}
		switch {
		case p.Error != "":
			return &api.MigrationError{Step: p.Step, Message: p.Error, Restored: p.Restored}
		case p.Result == "done":
			return nil
		}
		progress(p)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("progress stream: %w", err)
	}
	return errors.New("the source stopped answering before the migration finished")
}

// Backups lists a function's backups, newest first.
func (c *Client) Backups(ctx context.Context, name, namespace string) ([]api.Backup, error) {
	var out []api.Backup
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	err := c.do(ctx, http.MethodGet, "/system/backups/"+url.PathEscape(name), q, nil, &out)
	return out, err
}

// RestoreBackup brings a function back to one of its backups.
func (c *Client) RestoreBackup(ctx context.Context, name, namespace, backup string) error {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	return c.do(ctx, http.MethodPost, "/system/backups/"+url.PathEscape(name)+"/restore", q, map[string]string{"backup": backup}, nil)
}
