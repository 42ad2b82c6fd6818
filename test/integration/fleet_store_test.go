//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/faas-criu/faas-criu/fleet"
)

// storedCheckpoint polls a box for a function's stored checkpoint until it
// is one from box (and newer than after).
func storedCheckpoint(t *testing.T, p *Provider, name, box string, after time.Time) fleet.Meta {
	t.Helper()
	var m fleet.Meta
	eventually(t, 120*time.Second, func() string {
		code, body := p.Request("GET", "/system/fleet/checkpoints/"+name, nil)
		if code != http.StatusOK || json.Unmarshal([]byte(body), &m) != nil || m.Box != box || !m.TakenAt.After(after) {
			return fmt.Sprintf("stored checkpoint of %s: %d %s", name, code, body)
		}
		return ""
	})
	return m
}

// logLines returns the lines of a provider's log that match re.
func logLines(p *Provider, re string) []string {
	var out []string
	for _, l := range strings.Split(p.Logs(), "\n") {
		if regexp.MustCompile(re).MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// TestFleetCheckpointsLeaveTheBox: three boxes. A function hibernated on
// box 1 has its checkpoint in the fleet's object store (three replicas);
// box 1 is killed, and box 2 restores the function from the store and
// claims it, its counter continuing. Then `faas-criu migrate` moves it to
// box 3 through the cluster: the checkpoint goes through the store and the
// record names box 3. A function backed up on box 1 comes back on box 2
// from its stored backup. A 100 MB function's checkpoint makes the same trip,
// for the numbers. A delete removes the stored checkpoint.
func TestFleetCheckpointsLeaveTheBox(t *testing.T) {
	boxes := startFleet(t)
	name := func(i int) string { return fmt.Sprintf("%s%d", fleetPrefix, i+1) }
	for _, fn := range []string{"fs-keeper", "fs-big"} {
		d := Fixture(fn)
		d.Constraints = []string{"node.hostname == " + name(0)}
		if fn == "fs-big" {
			d.EnvVars = map[string]string{"STATE_MB": "100", "STATE_RANDOM": "1"}
		}
		boxes[1].Deploy(d)
	}
	if got := counts(boxes[2], "fs-keeper", 3); got[2] != 3 {
		t.Fatalf("fs-keeper counted %v", got)
	}
	counts(boxes[0], "fs-big", 2)
	// A function backed up while it runs: its backups are stored too,
	// each replacing the one before.
	backed := Fixture("fs-backed")
	backed.Constraints = []string{"node.hostname == " + name(0)}
	backed.Labels = &map[string]string{"com.openfaas.criu.backup-interval": "2s"}
	boxes[0].Deploy(backed)
	counts(boxes[0], "fs-backed", 2)
	bm := storedCheckpoint(t, boxes[2], "fs-backed", name(0), time.Now())
	if bm.Kind != fleet.KindBackup {
		t.Errorf("fs-backed's stored checkpoint: %+v, want a backup", bm)
	}
	before := time.Now()
	boxes[2].Scale("fs-keeper", 0)
	boxes[0].Scale("fs-big", 0)
	m := storedCheckpoint(t, boxes[1], "fs-keeper", name(0), before.Add(-time.Second))
	if chunk := int64(fleet.ObjectChunk); m.Kind != fleet.KindCheckpoint || int64(m.Chunks) != (m.Size+chunk-1)/chunk || m.Size <= 0 || m.Size >= m.Bytes {
		t.Errorf("fs-keeper's stored checkpoint: %+v, want a compressed checkpoint in chunks", m)
	}
	big := storedCheckpoint(t, boxes[2], "fs-big", name(0), before.Add(-time.Second))
	t.Logf("stored: fs-keeper %d bytes (checkpoint %d) in %d chunks; fs-big %d bytes (checkpoint %d) in %d chunks", m.Size, m.Bytes, m.Chunks, big.Size, big.Bytes, big.Chunks)
	eventually(t, 10*time.Second, func() string {
		if len(logLines(boxes[0], `offsite: checkpoint stored.*fs-big`)) == 0 {
			return "fs-big's upload is not logged yet"
		}
		return ""
	})
	for _, l := range logLines(boxes[0], `offsite: (checkpoint|image) stored`) {
		t.Log(l)
	}

	// A live box's function is not claimed (it moves by migration).
	if code, body := boxes[1].Request("POST", "/system/fleet/restore", map[string]any{"functionName": "fs-keeper", "claim": true}); code != http.StatusConflict {
		t.Errorf("a claim of a live box's function: %d %s, want 409", code, body)
	}

	// Box 1 dies; box 2, which lacks the functions' image, brings them
	// back from the store, the image too.
	boxes[0].Kill()
	if _, err := boxes[1].engine.ImageRemove(context.Background(), FixtureImage, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, func() string {
		_, body := boxes[1].Request("GET", "/system/fleet", nil)
		if strings.Contains(body, `"name":"`+name(0)+`"`) {
			return name(0) + " still live: " + body
		}
		return ""
	})
	for _, fn := range []string{"fs-keeper", "fs-big", "fs-backed"} {
		start := time.Now()
		code, body := boxes[1].Request("POST", "/system/fleet/restore", map[string]any{"functionName": fn, "claim": true})
		if code != http.StatusOK {
			t.Fatalf("restore %s on %s: %d %s", fn, name(1), code, body)
		}
		t.Logf("%s restored and claimed on %s in %s", fn, name(1), time.Since(start).Round(time.Millisecond))
	}
	if len(logLines(boxes[1], `image loaded from the store`)) != 1 {
		t.Errorf("box 2 did not load the image from the store once:\n%s", strings.Join(logLines(boxes[1], `image`), "\n"))
	}
	for _, l := range logLines(boxes[1], `restored from the store|image loaded`) {
		t.Log(l)
	}
	// Box 3 learns of the claim through its watch of the records.
	eventually(t, 20*time.Second, func() string {
		if b := boxOf(boxes[2].Status("fs-keeper")); b != name(1) {
			return "box 3 sees fs-keeper on " + b
		}
		return ""
	})
	if got := counts(boxes[2], "fs-keeper", 1); got[0] != 4 {
		t.Errorf("fs-keeper through %s after its restore on %s: %v, want 4", name(2), name(1), got)
	}
	if got := counts(boxes[1], "fs-backed", 1); got[0] != 3 {
		t.Errorf("fs-backed after its restore from a backup on %s: %v, want 3", name(1), got)
	}
	if got := counts(boxes[1], "fs-big", 1); got[0] != 3 {
		t.Errorf("fs-big after its restore on %s: %v, want 3", name(1), got)
	}

	// Migrate to box 3 through the cluster, asked of box 3.
	cfg := FaasCLIConfig(t, map[string][2]string{boxes[1].URL: {boxes[1].User, boxes[1].Pass}, boxes[2].URL: {boxes[2].User, boxes[2].Pass}})
	env := []string{"OPENFAAS_CONFIG=" + cfg, "OPENFAAS_URL=" + boxes[2].URL}
	start := time.Now()
	out, err := Run(t, env, "migrate", "fs-keeper", "--to", boxes[2].URL)
	if err != nil {
		t.Fatalf("migrate through the cluster: %v\n%s", err, out)
	}
	t.Logf("migrated through the cluster in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if b := boxOf(boxes[1].Status("fs-keeper")); b != name(2) {
		t.Errorf("after the migration fs-keeper's status names box %q, want %s", b, name(2))
	}
	if got := counts(boxes[1], "fs-keeper", 1); got[0] != 5 {
		t.Errorf("fs-keeper after its migration to %s: %v, want 5", name(2), got)
	}
	if n := len(boxes[1].AllContainers("fs-keeper")); n != 0 {
		t.Errorf("%s keeps %d containers of fs-keeper after the migration", name(1), n)
	}
	if n := len(boxes[2].Containers("fs-keeper")); n == 0 {
		t.Errorf("%s has no container of fs-keeper after the migration", name(2))
	}
	if m2 := storedCheckpoint(t, boxes[2], "fs-keeper", name(1), m.TakenAt); m2.Kind != fleet.KindCheckpoint {
		t.Errorf("the migration's stored checkpoint: %+v", m2)
	}

	// A delete forgets the stored checkpoint.
	boxes[1].Delete("fs-keeper")
	eventually(t, 10*time.Second, func() string {
		if code, body := boxes[2].Request("GET", "/system/fleet/checkpoints/fs-keeper", nil); code != http.StatusNotFound {
			return fmt.Sprintf("stored checkpoint after delete: %d %s", code, body)
		}
		return ""
	})
	boxes[1].Delete("fs-big")
	boxes[1].Delete("fs-backed")
}
