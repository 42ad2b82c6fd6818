package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
)

// List returns the status of every function in a namespace.
func (p *Provider) List(ctx context.Context, ns string) ([]types.FunctionStatus, error) {
	ns, err := p.namespace(ns)
	if err != nil {
		return nil, err
	}
	out := []types.FunctionStatus{}
	for _, fn := range p.functions() {
		if fn.key.Namespace == ns {
			out = append(out, p.status(fn))
		}
	}
	slices.SortFunc(out, func(a, b types.FunctionStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Status returns one function's status.
func (p *Provider) Status(ctx context.Context, ns, name string) (types.FunctionStatus, error) {
	if err := api.ValidateName(name); err != nil {
		return types.FunctionStatus{}, err
	}
	fn, err := p.lookup(ns, name)
	if err != nil {
		return types.FunctionStatus{}, err
	}
	return p.status(fn), nil
}

func (p *Provider) status(fn *function) types.FunctionStatus {
	rec, reps := fn.snapshot()
	dep := rec.Deployment
	var ready uint64
	for _, r := range reps {
		if r.ready && r.status == "running" {
			ready++
		}
	}
	ann := map[string]string{}
	if dep.Annotations != nil {
		for k, v := range *dep.Annotations {
			ann[k] = v
		}
	}
	p.describeSleep(fn, rec, ann)
	st := types.FunctionStatus{
		Name:                   fn.key.Name,
		Namespace:              fn.key.Namespace,
		Image:                  dep.Image,
		EnvProcess:             dep.EnvProcess,
		EnvVars:                dep.EnvVars,
		Constraints:            dep.Constraints,
		Secrets:                dep.Secrets,
		Labels:                 statusLabels(fn.key.Name, dep.Labels),
		Annotations:            &ann,
		Limits:                 dep.Limits,
		Requests:               dep.Requests,
		ReadOnlyRootFilesystem: dep.ReadOnlyRootFilesystem,
		InvocationCount:        float64(fn.invocations.Load()),
		Replicas:               uint64(rec.Replicas),
		AvailableReplicas:      ready,
		CreatedAt:              rec.CreatedAt,
	}
	if mem := functionMemory(reps); mem > 0 {
		st.Usage = &types.FunctionUsage{TotalMemoryBytes: float64(mem)}
	}
	return st
}

// statusLabels is a function's labels as its status reports them: the
// deployment's, plus faas_function.
func statusLabels(name string, labels *map[string]string) *map[string]string {
	out := map[string]string{}
	if labels != nil {
		for k, v := range *labels {
			out[k] = v
		}
	}
	out[api.LabelFaasFunction] = name
	return &out
}

// describeSleep adds the provider's annotations about sleep and wake.
func (p *Provider) describeSleep(fn *function, rec record, ann map[string]string) {
	ann[api.AnnotationState] = rec.State
	_, reps := fn.snapshot()
	ann[api.AnnotationTier] = tierOf(rec, reps)
	if n := fn.inflight.Load(); n > 0 {
		ann[api.AnnotationInflight] = strconv.FormatInt(n, 10)
	}
	if rec.SleptAt != nil && rec.State != api.StateAwake {
		ann[api.AnnotationSleptAt] = rec.SleptAt.Format(time.RFC3339Nano)
		ann[api.AnnotationSleptReplicas] = strconv.Itoa(rec.SleptReplicas)
	}
	if rec.State == api.StateHibernated {
		ann[api.AnnotationHibernation] = api.HibernationCheckpoint
		if len(rec.InPlace) > 0 {
			ann[api.AnnotationHibernation] = api.HibernationInPlace
		}
	}
	if rec.State == api.StatePaused && p.strategyOf(fn) == api.StrategyCheckpoint && !p.criu.Available {
		ann[api.AnnotationFallback] = "paused instead of hibernated: " + p.criu.Problem
	}
	cps := maps.Clone(rec.Checkpoints)
	for idx, d := range rec.InPlace {
		if d.Done {
			if cps == nil {
				cps = map[int]CheckpointInfo{}
			}
			cps[idx] = d.CheckpointInfo
		}
	}
	if len(cps) > 0 {
		var bytes int64
		var pages uint64
		var newest CheckpointInfo
		for _, c := range cps {
			bytes += c.Bytes
			if c.Stats != nil {
				pages += c.Stats.PagesWritten
			}
			if c.TakenAt.After(newest.TakenAt) {
				newest = c
			}
		}
		ann[api.AnnotationCheckpointBytes] = strconv.FormatInt(bytes, 10)
		ann[api.AnnotationCheckpointAt] = newest.TakenAt.Format(time.RFC3339Nano)
		if newest.Stats != nil {
			ann[api.AnnotationFreezingMs] = strconv.FormatFloat(float64(newest.Stats.FreezingTime.Microseconds())/1000, 'f', 3, 64)
			ann[api.AnnotationPagesWritten] = strconv.FormatUint(pages, 10)
		}
	}
	if backups, _ := ckpt.ListBackups(p.backupRoot(fn.key)); len(backups) > 0 {
		ann[api.AnnotationBackups] = strconv.Itoa(len(backups))
		ann[api.AnnotationLastBackup] = backups[0].TakenAt.Format(time.RFC3339Nano)
	}
	if b := rec.FromBackup; b != nil {
		ann[api.AnnotationFromBackup] = b.Backup + " taken at " + b.TakenAt.Format(time.RFC3339Nano) + ", restored at " + b.RestoredAt.Format(time.RFC3339Nano)
	}
	if w := rec.LastWake; w != nil {
		ann[api.AnnotationLastWake] = w.From + " " + w.Duration.Round(time.Millisecond).String() + " at " + w.At.Format(time.RFC3339)
		if w.StateLost {
			ann[api.AnnotationStateLost] = w.Reason
		}
	}
	if l := rec.StateLost; l != nil {
		ann[api.AnnotationStateLost] = fmt.Sprintf("replica %d: %s", l.Replica, l.Reason)
		ann[api.AnnotationStateLostAt] = l.At.Format(time.RFC3339Nano)
	}
}
