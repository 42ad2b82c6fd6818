package main

import (
	"fmt"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// In-place hibernation (issue 13, /work/team/inplace.md): a function
// deployed with the label below runs under faas-criu-init, and its
// hibernation dumps only its processes while its container and sandbox stay
// up; its wake restores them into the same container, without Docker's
// start from a checkpoint. The benchmark measures it beside the engine's
// checkpoint in the wake, suspend, fan-out and tiers phases, and judges the
// wake and suspend targets on the faster of the two (judge).
const (
	labelInPlace = api.LabelInPlace
	// annHibernation says how a hibernated function keeps its state; the
	// benchmark checks it after every in-place suspend, so that a provider
	// that silently took the engine's checkpoint instead cannot pass for in
	// place.
	annHibernation = api.AnnotationHibernation
	hibInPlace     = api.HibernationInPlace
	// wayInPlace is the wake phase's key (and function name suffix) of the
	// in-place functions.
	wayInPlace = "inplace"
)

// inPlaceLabelText names the label in the report's figures.
const inPlaceLabelText = "label " + labelInPlace + "=true"

// inPlaceLabels adds the in-place label to a function's labels.
func inPlaceLabels(labels map[string]string) {
	labels[labelInPlace] = "true"
}

// tierFig is one figure of the in-place tier (a wake or a suspend, median),
// or why the run has none: Why is "" when Has.
type tierFig struct {
	Has bool
	D   time.Duration
	Own time.Duration // the provider's own wake (last-wake annotation), if any
	Why string        // "not measured (...)" or "failed in this run (...)"
}

// judged is what a wake, suspend or fan-out target is judged on: the
// faster of the engine's checkpoint and in place (in place when equal),
// with the text saying which tier and label that is, and the other.
type judged struct {
	D       time.Duration
	Own     time.Duration
	InPlace bool
	// Head is the judged figure with its tier; Other the other tier's
	// figure, or why in place was not judged.
	Head, Other string
}

// judge picks the tier a target is judged on. Without an in-place figure
// (not measured, or failed) it is the engine's checkpoint, as before the
// in-place tier existed, and Other says so.
func judge(cp, cpOwn time.Duration, ip tierFig) judged {
	own := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return "; provider's own wake " + fmtDur(d)
	}
	cpText := fmt.Sprintf("%s by the engine's checkpoint (the default, no label%s)", fmtDur(cp), own(cpOwn))
	if !ip.Has {
		return judged{D: cp, Own: cpOwn, Head: cpText,
			Other: "hibernation in place " + orNotMeasured(ip.Why) + ": judged on the engine's checkpoint, as before the in-place tier"}
	}
	ipText := fmt.Sprintf("%s hibernated in place (%s%s)", fmtDur(ip.D), inPlaceLabelText, own(ip.Own))
	if ip.D <= cp {
		return judged{D: ip.D, Own: ip.Own, InPlace: true, Head: ipText,
			Other: fmt.Sprintf("by the engine's checkpoint %s%s", fmtDur(cp), ownParen(cpOwn))}
	}
	return judged{D: cp, Own: cpOwn, Head: cpText,
		Other: fmt.Sprintf("hibernated in place (%s) %s%s, slower in this run: the engine's checkpoint is judged", inPlaceLabelText, fmtDur(ip.D), ownParen(ip.Own))}
}

func ownParen(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " (provider's own wake " + fmtDur(d) + ")"
}

// tierTexts states the in-place tier and the deep tier reached from it, for
// the box target's list of tiers.
func (ip inPlaceFigures) tierTexts() []string {
	if !ip.HasTier {
		return []string{"hibernated in place (" + inPlaceLabelText + "): " + orNotMeasured(ip.TierWhy)}
	}
	return []string{
		fmt.Sprintf("hibernated in place (%s: container and sandbox kept, under faas-criu-init): %s ± %s of MemAvailable over %d functions (accounted %s; wake %s)",
			inPlaceLabelText, fmtMiB(ip.Box), fmtMiB(ip.BoxNoise), ip.TierN, fmtMiB(ip.Acc), ip.TierWake.text()),
		"deep reached from in place (deep-after: container and sandbox stopped, the dump kept): wake " + ip.TierWakeDeep.text(),
	}
}

// text is the figure, or why there is none.
func (t tierFig) text() string {
	if !t.Has {
		return orNotMeasured(t.Why)
	}
	return fmtDur(t.D)
}

func orNotMeasured(why string) string {
	if why == "" {
		return "not measured"
	}
	return why
}

// inPlaceFig is the median of kind's in-place row of m (first bytes or
// suspends; with withOwn, the provider's own wake too), or why the run has
// none: not deployed, or it failed (any wrong answer or error).
func (r *wakeResult) inPlaceFig(kind string, m map[string][]time.Duration, withOwn bool) tierFig {
	f := r.fnOf(kind, wayInPlace)
	switch {
	case f == nil:
		return tierFig{Why: orNotMeasured(r.InPlaceWhy)}
	case f.failed > 0:
		return tierFig{Why: fmt.Sprintf("failed in this run (%d wrong answers or errors of %s: see Failures)", f.failed, f.Name)}
	case len(m[f.Name]) == 0:
		return tierFig{Why: "not measured (no sample)"}
	}
	fig := tierFig{Has: true, D: DurMedian(m[f.Name])}
	if withOwn {
		fig.Own = DurMedian(r.ProviderWake[f.Name])
	}
	return fig
}
