package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// engine speaks the Docker engine API (1.41) over its socket.
type engine struct{ c *http.Client }

func (e engine) do(method, path, body string) ([]byte, error) {
	req, err := http.NewRequest(method, "http://engine/v1.41"+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}

func (e engine) get(path string, v any) error {
	b, err := e.do("GET", path, "")
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (e engine) checkpoint(name, cp string) (time.Duration, error) {
	t0 := time.Now()
	_, err := e.do("POST", "/containers/"+name+"/checkpoints", fmt.Sprintf(`{"CheckpointID":%q,"Exit":true}`, cp))
	return time.Since(t0), err
}

func (e engine) start(name, cp string) error {
	_, err := e.do("POST", "/containers/"+name+"/start?checkpoint="+cp, "")
	return err
}

func (e engine) deleteCheckpoint(name, cp string) error {
	_, err := e.do("DELETE", "/containers/"+name+"/checkpoints/"+cp, "")
	return err
}
