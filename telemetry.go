package beyondidentity

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Vault cannot collect an external plugin's go-metrics, so the mount keeps
// its own Prometheus counters, served at <mount>/metrics, and sends Vault
// event notifications. Neither ever carries a secret or a token; labels
// carry role names, never token ids, to keep their number bounded.

// metrics are one mount's counters, in a registry of its own: a plugin
// process serves several mounts, and each reports only its own.
type metrics struct {
	registry        *prometheus.Registry
	issued          *prometheus.CounterVec
	issueFailures   *prometheus.CounterVec
	revocations     *prometheus.CounterVec
	rotations       *prometheus.CounterVec
	upstreamCalls   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	throttled       *prometheus.CounterVec
	journalCommits  *prometheus.CounterVec
	journalTokens   *prometheus.CounterVec
	eventsDropped   prometheus.Counter
}

func newMetrics(b *backend) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "beyondidentity", Name: name, Help: help}, labels)
		m.registry.MustRegister(c)
		return c
	}
	m.issued = counter("tokens_issued_total", "Credentials issued, by role; static roles count their rotations apart.", "role")
	m.issueFailures = counter("issue_failures_total", "Refused creds, static-creds and rotate-role requests, by path, cause class "+
		"(bad_request, not_configured, upstream, unavailable, internal) and the HTTP status answered.", "path", "cause", "status")
	m.revocations = counter("revocations_total", "Revocations, by outcome: revoked, ended (nothing to do), retrying (failed, recorded), failed.", "outcome")
	m.rotations = counter("static_rotations_total", "Static role rotations, by outcome: rotated or failed.", "role", "outcome")
	m.upstreamCalls = counter("upstream_calls_total", "Requests to Beyond Identity, by call and HTTP status (0: no answer).", "call", "status")
	m.retries = counter("upstream_retries_total", "Requests to Beyond Identity that repeated a failed one, by call.", "call")
	m.throttled = counter("upstream_throttled_total", "Answers 429 from Beyond Identity, by call.", "call")
	m.journalCommits = counter("journal_commits_total", "Storage writes of the journal of new tokens, by op: cover (a page written, new or over a done one) or handover (a done page deleted).", "op")
	m.journalTokens = counter("journal_tokens_total", "Tokens the journal took on (op cover) or let go of once handed over (op handover), by a page deleted or written over: over journal_commits_total, the tokens per commit.", "op")
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "beyondidentity", Name: "events_dropped_total",
		Help: "Event notifications dropped because Vault fell too far behind in taking them."})
	m.registry.MustRegister(m.eventsDropped)
	m.upstreamLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "beyondidentity", Name: "upstream_latency_seconds", Help: "Time from sending a request to Beyond Identity to its answer, by call.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"call"})
	m.registry.MustRegister(m.upstreamLatency)
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "beyondidentity", Name: "revocations_pending", Help: "Failed revocations the plugin keeps retrying in the background.",
	}, func() float64 { return float64(b.pendingRevocations.len()) }))
	for kind, limiter := range map[string]*biclient.Limiter{"issue": b.limits.issue, "revoke": b.limits.revoke} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "beyondidentity", Name: "call_slots", Help: "Calls to Beyond Identity allowed at once now, as adapted to its answers.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(limiter.Limit()) }))
	}
	return m
}

// observe counts one request to Beyond Identity.
func (m *metrics) observe(a biclient.Attempt) {
	m.upstreamCalls.WithLabelValues(a.Call, strconv.Itoa(a.Status)).Inc()
	m.upstreamLatency.WithLabelValues(a.Call).Observe(a.Duration.Seconds())
	if a.Number > 1 {
		m.retries.WithLabelValues(a.Call).Inc()
	}
	if a.Status == http.StatusTooManyRequests {
		m.throttled.WithLabelValues(a.Call).Inc()
	}
}

// exposition writes the counters in the Prometheus text format.
func (m *metrics) exposition() ([]byte, error) {
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	encoder := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, family := range families {
		if err := encoder.Encode(family); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// series is every counter and gauge as one entry, named as Prometheus
// shows it (name{label="value",...}), and each histogram's _count and
// _sum: flat, so that `vault read` prints one line per series.
func (m *metrics) series() (map[string]any, error) {
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	series := map[string]any{}
	for _, family := range families {
		for _, metric := range family.GetMetric() {
			name := family.GetName() + labelsOf(metric)
			switch {
			case metric.GetCounter() != nil:
				series[name] = metric.GetCounter().GetValue()
			case metric.GetGauge() != nil:
				series[name] = metric.GetGauge().GetValue()
			case metric.GetHistogram() != nil:
				series[family.GetName()+"_count"+labelsOf(metric)] = metric.GetHistogram().GetSampleCount()
				series[family.GetName()+"_sum"+labelsOf(metric)] = metric.GetHistogram().GetSampleSum()
			}
		}
	}
	return series, nil
}

// labelsOf writes a series' labels as Prometheus does: {a="x",b="y"}.
func labelsOf(metric *dto.Metric) string {
	if len(metric.GetLabel()) == 0 {
		return ""
	}
	pairs := make([]string, 0, len(metric.GetLabel()))
	for _, label := range metric.GetLabel() {
		pairs = append(pairs, fmt.Sprintf("%s=%q", label.GetName(), label.GetValue()))
	}
	return "{" + strings.Join(pairs, ",") + "}"
}
