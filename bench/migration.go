package main

import (
	"context"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	gateway "github.com/faas-criu/faas-criu/client"
)

// The migration phase moves a hibernated function from a provider on the
// engine to one on a second engine (scripts/second-engine.sh: its own
// socket, data root and bridge, standing in for a second box), through the
// same API `faas-criu migrate` uses, for a small function and one holding
// about 100 MB of state that does not compress. The first move of each sends
// the image too; later ones find it there.

var (
	migrationNetworkA = "fcb-mig-a"
	migrationSubnetA  = "10.77.2.0/24"
	migrationNetworkB = "fcb-mig-b"
	migrationSubnetB  = "10.77.3.0/24"
)

// migrationEngine names the second engine (scripts/second-engine.sh) of the
// migration phase; renamed with the networks.
var migrationEngine = "bench"

type migrationSample struct {
	Took       time.Duration // the whole migration, to the target's answer
	ImageBytes int64         // compressed image sent (0: the target had it)
	Bytes      int64         // compressed definition and checkpoints sent
	Checkpoint int64         // checkpoint size on disk
}

type migrationResult struct {
	Kinds    []string
	Samples  map[string][]migrationSample
	Failures []string
}

var migrationKinds = map[string]map[string]string{
	"small":  nil,
	"100 MB": {"STATE_MB": "100", "STATE_RANDOM": "1"},
}

func (b *bench) runMigration(ctx context.Context, cl *cleanups, bin string, samples int) (*migrationResult, error) {
	script := filepath.Join("scripts", "second-engine.sh")
	out, err := exec.CommandContext(ctx, script, "start", migrationEngine).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("second engine: %v: %s", err, out)
	}
	host := strings.TrimSpace(string(out))
	cl.push(func() error { return exec.Command(script, "purge", migrationEngine).Run() })

	a, err := b.startProvider(ctx, cl, providerOpts{Bin: bin, Network: migrationNetworkA, Subnet: migrationSubnetA,
		LogPath: filepath.Join(b.logDir, "provider-migration-a.log")})
	if err != nil {
		return nil, err
	}
	bp, err := StartProvider(ctx, providerOpts{Bin: bin, Network: migrationNetworkB, Subnet: migrationSubnetB,
		LogPath: filepath.Join(b.logDir, "provider-migration-b.log"), Env: []string{"DOCKER_HOST=" + host}})
	if err != nil {
		return nil, err
	}
	// Box B's functions, then its provider; the engine's purge (pushed
	// above, so run after) removes its network and what else is left.
	cl.push(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		derr := bp.DeleteAll(ctx)
		bp.Stop()
		return derr
	})

	src := gateway.NewClient(a.URL, &gateway.Credentials{User: a.User, Password: a.Pass})
	res := &migrationResult{Kinds: []string{"small", "100 MB"}, Samples: map[string][]migrationSample{}}
	for i := 0; i < samples; i++ {
		for _, kind := range res.Kinds {
			b.progress("migration: %s, sample %d/%d", kind, i+1, samples)
			s, err := b.migrateOnce(ctx, src, a, bp, kind, i)
			if err != nil {
				res.Failures = append(res.Failures, fmt.Sprintf("migration %s #%d: %v", kind, i+1, err))
				continue
			}
			res.Samples[kind] = append(res.Samples[kind], s)
		}
	}
	return res, nil
}

// migrateOnce deploys a function at A, counts to 3, moves it to B and
// checks that B goes on counting (and has the same state checksum).
func (b *bench) migrateOnce(ctx context.Context, src *gateway.Client, a, bp *Provider, kind string, i int) (migrationSample, error) {
	var s migrationSample
	name := fmt.Sprintf("mig-%s-%d", strings.NewReplacer(" ", "", "MB", "mb").Replace(kind), i)
	if err := a.Deploy(ctx, types.FunctionDeployment{Service: name, Image: fixtureImage, EnvVars: migrationKinds[kind],
		Labels: &map[string]string{benchLabel: "true"}}); err != nil {
		return s, err
	}
	for n := 1; n <= 3; n++ {
		if _, _, err := a.Invoke(ctx, name, "/count"); err != nil {
			return s, err
		}
	}
	sum, _, err := a.Invoke(ctx, name, "/state")
	if err != nil {
		return s, err
	}
	req := api.MigrateRequest{FunctionName: name, To: bp.URL, ToUser: bp.User, ToPassword: bp.Pass}
	start := time.Now()
	err = src.Migrate(ctx, req, func(p api.Progress) {
		if !p.Done {
			return
		}
		switch p.Step {
		case "image":
			s.ImageBytes = p.Bytes
		case "transfer":
			s.Bytes = p.Bytes
		}
	})
	s.Took = time.Since(start)
	if err != nil {
		return s, err
	}
	got, _, err := bp.Invoke(ctx, name, "/count")
	if err != nil || strings.TrimSpace(got) != "4" {
		return s, fmt.Errorf("after the move the count is %q (%v), want 4", got, err)
	}
	if gotSum, _, err := bp.Invoke(ctx, name, "/state"); err != nil || gotSum != sum {
		return s, fmt.Errorf("after the move the state is %q (%v), want %q", gotSum, err, sum)
	}
	if st, err := bp.Status(ctx, name); err == nil && st.Annotations != nil {
		fmt.Sscan((*st.Annotations)["com.openfaas.criu.checkpoint-bytes"], &s.Checkpoint)
	}
	return s, bp.Delete(ctx, name)
}

// Section reports the migration figures.
func (m *migrationResult) Section() Section {
	t := table{Header: []string{"function", "first move (image sent)", "image sent", "later moves (median)", "checkpoint sent", "moves"}}
	for _, kind := range m.Kinds {
		ss := m.Samples[kind]
		if len(ss) == 0 {
			t.add(kind, "failed", "", "", "", "0")
			continue
		}
		var later []float64
		var sent []float64
		for _, s := range ss[1:] {
			later = append(later, float64(s.Took.Microseconds())/1000)
		}
		for _, s := range ss {
			sent = append(sent, float64(s.Bytes))
		}
		laterCell := "n/a"
		if len(later) > 0 {
			laterCell = fmt.Sprintf("%.0f ms", Median(later))
		}
		t.add(kind, ss[0].Took.Round(time.Millisecond).String(), fmtBytes(ss[0].ImageBytes), laterCell,
			fmtBytes(int64(Median(sent))), fmt.Sprint(len(ss)))
	}
	body := "A function deployed on one engine, counted to 3 (and, for the second, holding 100 MB of pseudo-random memory, which does not compress), moved to a provider on a second engine on this machine (its own socket, data root and bridge) with the API behind `faas-criu migrate`: hibernated, its image (only when the target lacks it) and checkpoint streamed with zstd over loopback, restored at the target, removed at the source. The time runs to the target's answer; every move was checked: the count went on at 4 and the state's checksum matched. Bytes are compressed bytes on the wire.\n\n" + t.Markdown()
	for _, f := range m.Failures {
		body += "\n- failure: " + f
	}
	return Section{Title: "7. Migration", Body: body}
}
