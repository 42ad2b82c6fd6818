package provider

import (
	"github.com/faas-criu/faas-criu/api"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the provider's Prometheus series, served on /metrics.
type Metrics struct {
	sleepSeconds      *prometheus.HistogramVec // by "how": checkpoint, pause
	wakeSeconds       *prometheus.HistogramVec // by "how": restore, unpause
	restoreSeconds    prometheus.Histogram
	checkpointBytes   prometheus.Histogram
	hibernateFailures prometheus.Counter
	restoreFailures   prometheus.Counter
	wakeFailures      prometheus.Counter
	functionsDeployed prometheus.Counter
	dumpFreezing      prometheus.Histogram
	dumpPages         prometheus.Counter
	backupSeconds     prometheus.Histogram
	backupFailures    prometheus.Counter
	backupRestores    prometheus.Counter
	migrations        *prometheus.CounterVec
}

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .15, .2, .25, .3, .4, .5, .75, 1, 1.5, 2.5, 5, 10, 30}

func newMetrics() *Metrics {
	m := &Metrics{
		sleepSeconds:   latencyBy("sleep_seconds", "Time to put a function to sleep, by how: checkpoint (hibernate) or pause.", "how"),
		wakeSeconds:    latencyBy("wake_seconds", "Time to wake a sleeping function until its replicas are started, by how: restore or unpause.", "how"),
		restoreSeconds: latency("restore_seconds", "Time of one replica's restore from its checkpoint."),
		checkpointBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "checkpoint_bytes",
			Help:    "Size on disk of each checkpoint taken.",
			Buckets: prometheus.ExponentialBuckets(256<<10, 2, 12),
		}),
		hibernateFailures: counter("hibernate_failures_total", "Checkpoints that failed (the function kept running)."),
		restoreFailures:   counter("restore_failures_total", "Restores that failed (the checkpoint was kept)."),
		wakeFailures:      counter("wake_failures_total", "Wake-ups that failed."),
		functionsDeployed: counter("functions_deployed_total", "Functions deployed."),
		dumpFreezing:      latency("criu_freezing_seconds", "CRIU's freezing time per dump, from its dump statistics."),
		dumpPages:         counter("criu_pages_written_total", "Memory pages CRIU wrote, from its dump statistics."),
		backupSeconds:     latency("backup_seconds", "Time to back up a function (checkpoint while running)."),
		backupFailures:    counter("backup_failures_total", "Backups of a replica that failed."),
		backupRestores:    counter("backup_restores_total", "Replicas brought back from a backup."),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "migrations_total", Help: "Migrations sent and received, by direction and result.",
		}, []string{"direction", "result"}),
	}
	return m
}

// counter, latencyBy and latency make the provider's plain series: a
// counter, and histograms of seconds over latencyBuckets.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "faas_criu", Name: name, Help: help})
}

func latencyBy(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "faas_criu", Name: name, Help: help, Buckets: latencyBuckets}, labels)
}

func latency(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "faas_criu", Name: name, Help: help, Buckets: latencyBuckets})
}

// Collectors returns every series, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sleepSeconds, m.wakeSeconds, m.restoreSeconds, m.checkpointBytes,
		m.hibernateFailures, m.restoreFailures, m.wakeFailures, m.functionsDeployed, m.dumpFreezing, m.dumpPages,
		m.backupSeconds, m.backupFailures, m.backupRestores, m.migrations}
}

func (m *Metrics) observeSleep(how string, d time.Duration) {
	if how == api.StateHibernated {
		how = "checkpoint"
	} else {
		how = "pause"
	}
	m.sleepSeconds.WithLabelValues(how).Observe(d.Seconds())
}

func (m *Metrics) observeWake(how string, d time.Duration) {
	m.wakeSeconds.WithLabelValues(how).Observe(d.Seconds())
}

// Metrics exposes the provider's series.
func (p *Provider) Metrics() *Metrics { return p.metrics }
