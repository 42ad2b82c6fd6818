package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GatewayMetrics are the OpenFaaS gateway's Prometheus series, named and
// labelled as openfaas/faas gateway/metrics does, so that OpenFaaS
// dashboards and alert rules work with faas-criu and no gateway in front:
//
//	gateway_function_invocation_total{function_name="NAME.NAMESPACE",code}
//	gateway_function_invocation_started{function_name}
//	gateway_functions_seconds{function_name,code} (histogram)
//	gateway_service_count{function_name} (replicas asked for)
type GatewayMetrics struct {
	invocations *prometheus.CounterVec
	started     *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	replicas    *prometheus.GaugeVec
	defaultNS   string
	fns         Functions
	nss         Namespaces
	// series caches each function's children of the vectors, by the name
	// in the path: looking them up by label values hashed the values and
	// took the vectors' locks three times per invocation.
	series sync.Map // string -> *fnSeries
}

// fnSeries are one function's series.
type fnSeries struct {
	started prometheus.Counter
	full    string
	codes   sync.Map // int -> *codeSeries
}

type codeSeries struct {
	seconds     prometheus.Observer
	invocations prometheus.Counter
}

// seriesOf returns the series of the function named in the path (NAME or
// NAME.NAMESPACE).
func (m *GatewayMetrics) seriesOf(name string) *fnSeries {
	if s, ok := m.series.Load(name); ok {
		return s.(*fnSeries)
	}
	full := name
	if !strings.Contains(full, ".") {
		full += "." + m.defaultNS
	}
	s, _ := m.series.LoadOrStore(name, &fnSeries{started: m.started.WithLabelValues(full), full: full})
	return s.(*fnSeries)
}

func (m *GatewayMetrics) codeSeries(s *fnSeries, code int) *codeSeries {
	if c, ok := s.codes.Load(code); ok {
		return c.(*codeSeries)
	}
	label := strconv.Itoa(code)
	c, _ := s.codes.LoadOrStore(code, &codeSeries{
		seconds:     m.seconds.WithLabelValues(s.full, label),
		invocations: m.invocations.WithLabelValues(s.full, label),
	})
	return c.(*codeSeries)
}

// NewGatewayMetrics makes the series; defaultNS names the namespace of
// /function/NAME without one.
func NewGatewayMetrics(fns Functions, nss Namespaces, defaultNS string) *GatewayMetrics {
	return &GatewayMetrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gateway", Subsystem: "function", Name: "invocation_total", Help: "Function metrics",
		}, []string{"function_name", "code"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gateway", Subsystem: "function", Name: "invocation_started",
			Help: "The total number of function HTTP requests started.",
		}, []string{"function_name"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_functions_seconds", Help: "Function time taken",
		}, []string{"function_name", "code"}),
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "gateway", Name: "service_count", Help: "Current count of replicas for function",
		}, []string{"function_name"}),
		defaultNS: defaultNS,
		fns:       fns,
		nss:       nss,
	}
}

// Describe is part of prometheus.Collector.
func (m *GatewayMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.invocations.Describe(ch)
	m.started.Describe(ch)
	m.seconds.Describe(ch)
	m.replicas.Describe(ch)
}

// Collect is part of prometheus.Collector. gateway_service_count is read
// from the functions at scrape time, as the gateway's exporter does.
func (m *GatewayMetrics) Collect(ch chan<- prometheus.Metric) {
	m.invocations.Collect(ch)
	m.started.Collect(ch)
	m.seconds.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.replicas.Reset()
	for _, ns := range m.nss.Namespaces() {
		list, err := m.fns.List(ctx, ns)
		if err != nil {
			continue // a scrape shows what it can
		}
		for _, st := range list {
			m.replicas.WithLabelValues(st.Name + "." + st.Namespace).Set(float64(st.Replicas))
		}
	}
	m.replicas.Collect(ch)
}

// Wrap counts the invocations next passes to functions.
func (m *GatewayMetrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.EscapedPath(), "/function/")
		full, _, _ := strings.Cut(rest, "/")
		if full == "" {
			next.ServeHTTP(w, r)
			return
		}
		series := m.seriesOf(full)
		series.started.Inc()
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		// An unknown or invalid function name (a scanner's, say) would make
		// series without bound: the proxy's own 4xx answers (no function
		// was reached) are not counted.
		if sw.code >= 400 && sw.code < 500 && sw.Header().Get("X-OpenFaaS-Internal") != "" {
			return
		}
		c := m.codeSeries(series, sw.code)
		c.seconds.Observe(time.Since(start).Seconds())
		c.invocations.Inc()
	})
}

// statusWriter remembers the status code. Unwrap lets
// http.NewResponseController reach Flush and Hijack underneath.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader && code >= 200 {
		s.code, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
