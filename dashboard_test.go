package beyondidentity

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The Grafana dashboard (docs/grafana-dashboard.json) queries the metrics
// the plugin exports; these tests fail when a query names a metric the
// plugin does not export, or when a metric the documentation describes is
// on no panel.

// dashboardPanel is what the tests read of a Grafana panel.
type dashboardPanel struct {
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource map[string]any   `json:"datasource"`
	Targets    []map[string]any `json:"targets"`
	Panels     []dashboardPanel `json:"panels"`
}

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json is not JSON: %v", err)
	}
	return d
}

// queries returns every panel's PromQL expressions, by panel title,
// rows' panels included.
func (d dashboard) queries() map[string][]string {
	byPanel := map[string][]string{}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				if expr, ok := target["expr"].(string); ok {
					byPanel[p.Title] = append(byPanel[p.Title], expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return byPanel
}

// exportedMetrics are the names of every metric in the plugin's own
// registry, as a mount serves them: described by each collector, so that
// a vector nothing has counted yet is there too.
func exportedMetrics(t *testing.T) []string {
	t.Helper()
	e := newTestBackend(t)
	descs := make(chan *prometheus.Desc)
	go func() {
		e.b.metrics.registry.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for desc := range descs {
		match := fqName.FindStringSubmatch(desc.String())
		if match == nil {
			t.Fatalf("cannot read the name of %s", desc)
		}
		if !slices.Contains(names, match[1]) {
			names = append(names, match[1])
		}
	}
	sort.Strings(names)
	if len(names) < 10 {
		t.Fatalf("the registry describes only %v", names)
	}
	return names
}

// metricName finds the plugin's metric names in text.
var metricName = regexp.MustCompile(`\bbeyondidentity_[a-z][a-z0-9_]*[a-z0-9]`)

// baseMetric maps a series name to its metric: a histogram's _bucket, _sum
// and _count series belong to the histogram.
func baseMetric(name string, exported []string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(exported, base) {
			return base
		}
	}
	return name
}

func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	d := readDashboard(t)
	queries := d.queries()
	if len(queries) < 8 {
		t.Fatalf("the dashboard has %d panels with queries", len(queries))
	}
	for title, exprs := range queries {
		for _, expr := range exprs {
			names := metricName.FindAllString(expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %s names no metric of the plugin", title, expr)
			}
			for _, name := range names {
				if !slices.Contains(exported, baseMetric(name, exported)) {
					t.Errorf("panel %q queries %s, which the plugin does not export (it exports %v)", title, name, exported)
				}
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
				t.Errorf("panel %q: unbalanced brackets in %s", title, expr)
			}
			if strings.Contains(expr, "_bucket") && !strings.Contains(expr, "histogram_quantile(") {
				t.Errorf("panel %q reads histogram buckets without histogram_quantile: %s", title, expr)
			}
		}
	}
}

// TestDashboardPanelsUseTheDatasourceVariable: the dashboard imports into
// any Grafana, whatever its Prometheus data source is called.
func TestDashboardPanelsUseTheDatasourceVariable(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	hasVariable := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasVariable = true
		}
	}
	if !hasVariable {
		t.Fatal("the dashboard has no Prometheus datasource variable named datasource")
	}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			if p.Type != "row" && (p.Datasource["uid"] != "${datasource}" || p.Datasource["type"] != "prometheus") {
				t.Errorf("panel %q uses data source %v, not ${datasource}", p.Title, p.Datasource)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

// TestEveryDocumentedMetricIsOnTheDashboard: every metric the README and
// docs/ name is one the plugin exports, and some panel shows it.
func TestEveryDocumentedMetricIsOnTheDashboard(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	pages, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, page := range append(pages, "README.md") {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(data), -1) {
			// The lease type shares the metrics' prefix.
			if name != secretTypeToken {
				documented[baseMetric(name, exported)] = page
			}
		}
	}
	var onPanels []string
	for _, exprs := range readDashboard(t).queries() {
		for _, expr := range exprs {
			for _, name := range metricName.FindAllString(expr, -1) {
				onPanels = append(onPanels, baseMetric(name, exported))
			}
		}
	}
	if len(documented) < len(exported) {
		t.Errorf("the docs name %d metrics; the plugin exports %d: %v", len(documented), len(exported), exported)
	}
	for name, page := range documented {
		if !slices.Contains(exported, name) {
			t.Errorf("%s documents %s, which the plugin does not export", page, name)
		}
		if !slices.Contains(onPanels, name) {
			t.Errorf("%s documents %s, which no panel of docs/grafana-dashboard.json shows", page, name)
		}
	}
}

// exportedLabels are the labels of each metric in the plugin's registry,
// as its collectors describe them.
func exportedLabels(t *testing.T) map[string][]string {
	t.Helper()
	e := newTestBackend(t)
	descs := make(chan *prometheus.Desc)
	go func() {
		e.b.metrics.registry.Describe(descs)
		close(descs)
	}()
	described := regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)
	labels := map[string][]string{}
	for desc := range descs {
		match := described.FindStringSubmatch(desc.String())
		if match == nil {
			t.Fatalf("cannot read the labels of %s", desc)
		}
		for _, pair := range strings.Split(match[2], ",") {
			if name, _, ok := strings.Cut(pair, "="); ok {
				labels[match[1]] = append(labels[match[1]], name)
			}
		}
		for _, name := range strings.Split(match[3], ",") {
			if name != "" {
				labels[match[1]] = append(labels[match[1]], name)
			}
		}
	}
	return labels
}

// TestDashboardGroupsByLabelsTheMetricsHave: a query that groups by a label
// the metric lacks (a label renamed in the code) shows one empty series;
// the legend names only the labels grouped by. The issue failures are
// shown by cause, the label operators alert on.
func TestDashboardGroupsByLabelsTheMetricsHave(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	labels := exportedLabels(t)
	groupedBy := regexp.MustCompile(`\bby \(([^)]*)\)`)
	legendLabel := regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)
	failuresByCause := false
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				expr, _ := target["expr"].(string)
				// Prometheus adds these to every series it scrapes; le is a histogram's.
				have := []string{"job", "instance", "le"}
				for _, name := range metricName.FindAllString(expr, -1) {
					have = append(have, labels[baseMetric(name, exported)]...)
				}
				var grouped []string
				for _, match := range groupedBy.FindAllStringSubmatch(expr, -1) {
					for _, label := range strings.Split(match[1], ",") {
						label = strings.TrimSpace(label)
						grouped = append(grouped, label)
						if !slices.Contains(have, label) {
							t.Errorf("panel %q groups by %q, which its metrics lack (they have %v): %s", p.Title, label, have, expr)
						}
					}
				}
				legend, _ := target["legendFormat"].(string)
				for _, match := range legendLabel.FindAllStringSubmatch(legend, -1) {
					if !slices.Contains(grouped, match[1]) {
						t.Errorf("panel %q's legend %q names %q, which the query does not group by: %s", p.Title, legend, match[1], expr)
					}
				}
				if strings.Contains(expr, "beyondidentity_issue_failures_total") && slices.Contains(grouped, "cause") {
					failuresByCause = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(readDashboard(t).Panels)
	if !failuresByCause {
		t.Error("no panel shows beyondidentity_issue_failures_total by cause")
	}
}
