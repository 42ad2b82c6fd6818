package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// The tiers phase's in-place tier (label com.openfaas.criu.in-place=true):
// a function hibernated in place keeps its container (under faas-criu-init,
// its function's processes dumped) and its sandbox, so it costs the box more
// than "hibernated, sandbox kept" (a shim, a cgroup and the init more); the
// deep-after policy takes it to the deep tier (container and sandbox
// stopped, the dump kept).

// tierInPlacePrefix names the functions of the in-place memory measurement.
const tierInPlacePrefix = "tier-ip-"

// tierInPlace measures the box memory of n functions hibernated in place,
// after the other tiers' functions were deleted: its baselines before are
// the run's baselines after that deletion, its samples (boxReads, in Kept)
// are taken with all n hibernated in place, then each is woken once (its
// count checked), all deleted, and as many baselines read again. A provider
// that refuses the label, or functions that do not hibernate in place, leave
// the tier not measured (res.InPlaceWhy) and the phase going.
func (b *bench) tierInPlace(ctx context.Context, p *Provider, res *tiersResult, n int) error {
	ip := &tiersResult{N: n}
	after := res.Base[res.BaseBefore:]
	ip.Base, ip.BaseBefore = append([]boxSample{}, after...), len(after)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", tierInPlacePrefix, i)
	}
	drop := func() {
		_ = parallel(n, 3, func(i int) error { _ = p.Delete(ctx, names[i]); return nil })
	}
	b.progress("tiers: deploying %d functions in place", n)
	err := parallel(n, 3, func(i int) error {
		return b.deployCounted(ctx, p, tierDeployment(names[i], "never", true))
	})
	if err == nil {
		b.progress("tiers: hibernating %d functions in place", n)
		err = b.tierHibernateInPlace(ctx, p, names)
	}
	if err != nil {
		res.InPlaceWhy = "not measured (" + err.Error() + ")"
		drop()
		return nil
	}
	time.Sleep(2 * time.Second) // as for the other tiers: namespaces freed lazily
	if ip.Kept, err = b.sampleBoxes(ctx, p, tierInPlacePrefix); err != nil {
		return err
	}
	b.progress("tiers: waking %d functions from in place", n)
	var mu sync.Mutex
	_ = parallel(n, 4, func(i int) error {
		body, _, err := p.Invoke(ctx, names[i], "/count")
		if err == nil && body != "2" {
			err = fmt.Errorf("%s /count after a sleep in place: %q, want 2 (state lost)", names[i], body)
		}
		if err != nil {
			mu.Lock()
			res.inPlaceFail(err)
			mu.Unlock()
		}
		return nil
	})
	b.progress("tiers: deleting %d functions in place", n)
	drop()
	time.Sleep(3 * time.Second)
	base, err := b.sampleBoxes(ctx, p, tierInPlacePrefix)
	if err != nil {
		return err
	}
	ip.Base = append(ip.Base, base...)
	res.InPlace = ip
	return nil
}

// tierDeployment is a tiers phase function: the trivial fixture, hibernated
// by the engine's checkpoint or in place.
func tierDeployment(name, deepAfter string, inPlace bool) types.FunctionDeployment {
	labels := map[string]string{api.LabelStrategy: api.StrategyCheckpoint, api.LabelDeepAfter: deepAfter, benchLabel: "tiers"}
	if inPlace {
		inPlaceLabels(labels)
	}
	return types.FunctionDeployment{Service: name, Image: fixtureImage, Labels: &labels}
}

// tierHibernateInPlace hibernates the functions, checks that each did so in
// place and waits until the provider reports them in the hibernated tier.
func (b *bench) tierHibernateInPlace(ctx context.Context, p *Provider, names []string) error {
	if err := b.tierHibernate(ctx, p, names); err != nil {
		return err
	}
	for _, name := range names {
		if err := checkInPlace(ctx, p, name); err != nil {
			return err
		}
		if err := waitAnnotation(ctx, p, name, api.AnnotationTier, "hibernated", time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// checkInPlace fails unless the provider says name is hibernated in place.
func checkInPlace(ctx context.Context, p *Provider, name string) error {
	how, err := p.Annotation(ctx, name, annHibernation)
	if err != nil {
		return err
	}
	if how != hibInPlace {
		return fmt.Errorf("%s, deployed with %s=true, hibernated with %s=%q, not %q", name, labelInPlace, annHibernation, how, hibInPlace)
	}
	return nil
}

// inPlaceFail records a failure of the in-place tier: it is a wrong answer
// of the run, and its figures are not judged.
func (t *tiersResult) inPlaceFail(err error) {
	t.InPlaceFailures++
	t.Failures = append(t.Failures, "tiers (in place): "+err.Error())
}

// tierWakeFn is one function whose wake from a tier is timed.
type tierWakeFn struct {
	name, deepAfter, tier string
	inPlace               bool
	wakes                 *[]time.Duration
	count                 int
	broken                bool          // an in-place function that failed: left out from then on
	spent                 time.Duration // the phase's time on its wakes
}

// tierWakeFns are the functions of the tier wakes: one that never goes
// deep, one that goes deep a second after it hibernates (by the provider's
// own policy), and with inPlace the same two hibernated in place.
func (t *tiersResult) tierWakeFns(inPlace bool) []*tierWakeFn {
	fns := []*tierWakeFn{
		{name: "tier-wake-kept", deepAfter: "never", tier: "hibernated", wakes: &t.WakeKept},
		{name: "tier-wake-deep", deepAfter: "1s", tier: "deep", wakes: &t.WakeDeep},
	}
	if inPlace {
		fns = append(fns,
			&tierWakeFn{name: "tier-wake-ip", deepAfter: "never", tier: "hibernated", inPlace: true, wakes: &t.WakeInPlace},
			&tierWakeFn{name: "tier-wake-ip-deep", deepAfter: "1s", tier: "deep", inPlace: true, wakes: &t.WakeInPlaceDeep})
	}
	return fns
}

// tierWakeOnce hibernates f, waits for its tier, and times its wake,
// checking its count.
func (b *bench) tierWakeOnce(ctx context.Context, p *Provider, f *tierWakeFn) error {
	start := time.Now()
	defer func() { f.spent += time.Since(start) }()
	if _, err := p.Scale(ctx, f.name, 0); err != nil {
		return err
	}
	if err := waitAnnotation(ctx, p, f.name, api.AnnotationTier, f.tier, time.Minute); err != nil {
		return err
	}
	if f.inPlace {
		if err := checkInPlace(ctx, p, f.name); err != nil {
			return err
		}
	}
	b.track(ctx)
	time.Sleep(time.Second)
	body, ttfb, err := p.Invoke(ctx, f.name, "/count")
	f.count++
	if err == nil && body != strconv.Itoa(f.count) {
		err = fmt.Errorf("%s /count after a wake from %s: %q, want %d (state lost)", f.name, f.tier, body, f.count)
	}
	if err != nil {
		return err
	}
	*f.wakes = append(*f.wakes, ttfb)
	return nil
}

// inPlaceFigures are the tiers phase's figures of the in-place tier for
// the targets.
func (t *tiersResult) inPlaceFigures(f *inPlaceFigures) {
	failed := ""
	if t.InPlaceFailures > 0 {
		failed = fmt.Sprintf("failed in this run (%d wrong answers or errors: see Failures)", t.InPlaceFailures)
	}
	wake := func(ds []time.Duration) tierFig {
		switch {
		case failed != "":
			return tierFig{Why: failed}
		case len(ds) == 0:
			return tierFig{Why: orNotMeasured(t.InPlaceWhy)}
		}
		return tierFig{Has: true, D: DurMedian(ds)}
	}
	f.TierWake, f.TierWakeDeep = wake(t.WakeInPlace), wake(t.WakeInPlaceDeep)
	switch ip := t.InPlace; {
	case failed != "":
		f.TierWhy = failed
	case ip == nil || len(ip.Kept) == 0:
		f.TierWhy = orNotMeasured(t.InPlaceWhy)
	default:
		c := ip.corrected(ip.Kept)
		f.HasTier, f.TierN, f.Box, f.BoxNoise, f.Acc = true, ip.N, c.PerFn, c.Noise, ip.accounted(ip.Kept)
	}
}

// inPlaceText describes the in-place tier's measurement in the section, or
// says why it is missing.
func (t *tiersResult) inPlaceText() string {
	ip := t.InPlace
	if ip == nil || len(ip.Kept) == 0 {
		return "Hibernated in place (label `" + labelInPlace + "=true`): " + orNotMeasured(t.InPlaceWhy) + "."
	}
	c := ip.corrected(ip.Kept)
	s := fmt.Sprintf("**Hibernated in place** (label `%s=true`): after the baselines above were read, %d more functions were deployed with the label (three at a time), called once and hibernated in place (the status checked to say `%s=%s` and tier hibernated), so that each keeps its container, with only faas-criu-init in it, and its sandbox; %d samples were read, then each was woken once (its count checked), all deleted, and %d baselines read again. Its figure is against those baselines (its baselines before are the ones after the other tiers' deletion), by the same drift rule: **%s ± %s per function** (accounted %s). Corrected MemAvailable of each sample, MiB: baselines before, after: ",
		labelInPlace, ip.N, annHibernation, hibInPlace, len(ip.Kept), len(ip.Base)-ip.BaseBefore, fmtMiB(c.PerFn), fmtMiB(c.Noise), fmtMiB(ip.accounted(ip.Kept)))
	s += corrList(ip.Base[:ip.BaseBefore]) + "; " + corrList(ip.Base[ip.BaseBefore:]) + "; in place: " + corrList(ip.Kept) + "."
	if t.InPlaceFailures > 0 {
		s += fmt.Sprintf(" The in-place tier failed %d times in this run (see Failures): its figures are not judged.", t.InPlaceFailures)
	}
	return s
}

// corrList lists the corrected MemAvailable of samples, in MiB.
func corrList(xs []boxSample) string {
	var out []string
	for _, s := range xs {
		out = append(out, fmt.Sprintf("%.0f", float64(s.corrected())/(1<<20)))
	}
	return strings.Join(out, ", ")
}
