package async

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	accepted  prometheus.Counter
	retries   *prometheus.CounterVec // by the status retried
	calls     *prometheus.CounterVec // by result: done, failed, callback_failed
	inflightN atomic.Int64
	waitingN  atomic.Int64 // calls waiting for their function's box (a fleet)
}

func newMetrics() *metrics {
	return &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "async_accepted_total", Help: "Asynchronous calls accepted (202).",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "async_retries_total",
			Help: "Asynchronous calls tried again, by the status that made them retry (429, 502, 503, 504).",
		}, []string{"code"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "faas_criu", Name: "async_calls_total",
			Help: "Asynchronous calls finished, by result: done, failed (the function's last answer was 4xx or 5xx) or callback_failed.",
		}, []string{"result"}),
	}
}

// Collectors returns the queue's series, for registration: with the
// queue depth (calls accepted and not finished) and the calls running.
func (q *Queue) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		q.metrics.accepted, q.metrics.retries, q.metrics.calls,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "faas_criu", Name: "async_queue_depth",
			Help: "Asynchronous calls accepted and not finished (queued, waiting for a retry or running).",
		}, q.depth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "faas_criu", Name: "async_inflight",
			Help: "Asynchronous calls running now.",
		}, func() float64 { return float64(q.metrics.inflightN.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "faas_criu", Name: "async_waiting",
			Help: "Asynchronous calls waiting for their function's box, down or unreachable (a fleet).",
		}, func() float64 { return float64(q.metrics.waitingN.Load()) }),
	}
}
