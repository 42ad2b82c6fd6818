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
		sleepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "sleep_seconds",
			Help:    "Time to put a function to sleep, by how: checkpoint (hibernate) or pause.",
			Buckets: latencyBuckets,
		}, []string{"how"}),
		wakeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "wake_seconds",
			Help:    "Time to wake a sleeping function until its replicas are started, by how: restore or unpause.",
			Buckets: latencyBuckets,
		}, []string{"how"}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "restore_seconds",
			Help: "Time of one replica's restore from its checkpoint.", Buckets: latencyBuckets,
		}),
		checkpointBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "checkpoint_bytes",
			Help:    "Size on disk of each checkpoint taken.",
			Buckets: prometheus.ExponentialBuckets(256<<10, 2, 12),
		}),
		hibernateFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "hibernate_failures_total", Help: "Checkpoints that failed (the function kept running).",
		}),
		restoreFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "restore_failures_total", Help: "Restores that failed (the checkpoint was kept).",
		}),
		wakeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "wake_failures_total", Help: "Wake-ups that failed.",
		}),
		functionsDeployed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "functions_deployed_total", Help: "Functions deployed.",
		}),
		dumpFreezing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "criu_freezing_seconds",
			Help: "CRIU's freezing time per dump, from its dump statistics.", Buckets: latencyBuckets,
		}),
		dumpPages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "criu_pages_written_total", Help: "Memory pages CRIU wrote, from its dump statistics.",
		}),
		backupSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "faas_criu", Name: "backup_seconds",
			Help: "Time to back up a function (checkpoint while running).", Buckets: latencyBuckets,
		}),
		backupFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "backup_failures_total", Help: "Backups of a replica that failed.",
		}),
		backupRestores: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "backup_restores_total", Help: "Replicas brought back from a backup.",
		}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "migrations_total", Help: "Migrations sent and received, by direction and result.",
		}, []string{"direction", "result"}),
	}
	return m
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
