package handlers

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

// upstreamGatewayInfo has the fields and JSON names of the OpenFaaS
// gateway's gateway/types.GatewayInfo, which faas-cli's `version` and the
// conformance suite decode /system/info into (that module cannot be
// imported here). Any decoding error makes faas-cli fail.
type upstreamGatewayInfo struct {
	Provider *types.ProviderInfo `json:"provider"`
	Version  *types.VersionInfo  `json:"version"`
	Arch     string              `json:"arch"`
}

// /system/info answers the gateway's shape to a client straight at
// faas-criu, and faas-provider's ProviderInfo to a gateway in front, which
// forwards with X-Forwarded-For/Host (issue 11, fault 6).
func TestInfoShapes(t *testing.T) {
	h := Info(func() InfoDoc {
		return InfoDoc{
			Provider: types.ProviderInfo{Name: "faas-criu", Orchestration: "docker",
				Version: &types.VersionInfo{Release: "1.2.3", SHA: "abc"}},
			Extra: map[string]any{"criu": map[string]any{"available": true}},
		}
	})
	get := func(header, value, query string) []byte {
		r := httptest.NewRequest("GET", "/system/info"+query, nil)
		if header != "" {
			r.Header.Set(header, value)
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != 200 {
			t.Fatalf("info: %d %s", w.Code, w.Body)
		}
		return w.Body.Bytes()
	}

	// faas-cli straight at faas-criu.
	body := get("User-Agent", "faas-cli/dev", "")
	var gw upstreamGatewayInfo
	if err := json.Unmarshal(body, &gw); err != nil {
		t.Fatalf("the gateway's type does not decode %s: %v", body, err)
	}
	if gw.Provider == nil || gw.Provider.Name != "faas-criu" || gw.Provider.Orchestration != "docker" ||
		gw.Provider.Version == nil || gw.Provider.Version.Release != "1.2.3" || gw.Provider.Version.SHA != "abc" ||
		gw.Version == nil || gw.Version.Release != "1.2.3" || gw.Arch == "" {
		t.Errorf("gateway shape = %s", body)
	}
	var extra struct{ CRIU struct{ Available bool } }
	if json.Unmarshal(body, &extra); !extra.CRIU.Available {
		t.Errorf("gateway shape lost the provider's own figures: %s", body)
	}

	// A gateway in front: its forwarding proxy sets both headers.
	for _, hdr := range []string{"X-Forwarded-For", "X-Forwarded-Host"} {
		body := get(hdr, "10.0.0.1", "")
		var pi types.ProviderInfo
		if err := json.Unmarshal(body, &pi); err != nil {
			t.Fatalf("with %s: faas-provider's ProviderInfo does not decode %s: %v", hdr, body, err)
		}
		if pi.Name != "faas-criu" || pi.Orchestration != "docker" || pi.Version == nil || pi.Version.Release != "1.2.3" {
			t.Errorf("with %s: provider shape = %s", hdr, body)
		}
	}

	// The override.
	var pi types.ProviderInfo
	if err := json.Unmarshal(get("", "", "?shape=provider"), &pi); err != nil || pi.Name != "faas-criu" {
		t.Errorf("?shape=provider: %+v %v", pi, err)
	}
	if err := json.Unmarshal(get("X-Forwarded-For", "10.0.0.1", "?shape=gateway"), &gw); err != nil || gw.Provider.Name != "faas-criu" {
		t.Errorf("?shape=gateway: %+v %v", gw, err)
	}
}
