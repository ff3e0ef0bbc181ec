package docs

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The operator bundle: alerts, recording rules, their promtool tests and
// the Grafana dashboard (cmd/varta-watch/prometheus/README.md).
const bundleDir = "cmd/varta-watch/prometheus/"

var (
	alertDecl  = regexp.MustCompile(`(?m)^\s*- alert: (\S+)\s*$`)
	recordDecl = regexp.MustCompile(`(?m)^\s*- record: (\S+)\s*$`)
	// recordedName matches a level:metric:operation name, so that its
	// middle part is not taken for a family name.
	recordedName = regexp.MustCompile(`\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b`)
)

// alertCases reads tests.yml and returns, per alert name, whether some
// alert_rule_test expects it firing (a non-empty exp_alerts) and whether
// some expects it quiet (exp_alerts: []). promtool's format is read line
// by line: an alertname line is followed by its exp_alerts line.
func alertCases(t *testing.T, tests string) (firing, quiet map[string]bool) {
	t.Helper()
	firing, quiet = map[string]bool{}, map[string]bool{}
	lines := strings.Split(tests, "\n")
	for i, line := range lines {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "alertname: ")
		if !ok {
			continue
		}
		for _, next := range lines[i+1:] {
			next = strings.TrimSpace(next)
			if !strings.HasPrefix(next, "exp_alerts:") {
				continue
			}
			rest := strings.TrimSpace(strings.TrimPrefix(next, "exp_alerts:"))
			if strings.HasPrefix(rest, "[]") {
				quiet[name] = true
			} else {
				firing[name] = true
			}
			break
		}
	}
	return firing, quiet
}

// TestPrometheusAlertsTested: every alert in alerts.yml has a promtool case
// in tests.yml where it fires and one where it stays quiet, tests.yml names
// no alert that does not exist, and every recording rule in rules.yml is
// evaluated by a promql_expr_test.
func TestPrometheusAlertsTested(t *testing.T) {
	root := repoRoot(t)
	alerts := readFile(t, root, bundleDir+"alerts.yml")
	rules := readFile(t, root, bundleDir+"rules.yml")
	tests := readFile(t, root, bundleDir+"tests.yml")

	var names []string
	for _, m := range alertDecl.FindAllStringSubmatch(alerts, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatal(bundleDir + "alerts.yml: found no '- alert:' lines")
	}
	firing, quiet := alertCases(t, tests)
	for _, n := range names {
		if !firing[n] {
			t.Errorf("alert %s has no test in %stests.yml where it fires (an alert_rule_test with non-empty exp_alerts)", n, bundleDir)
		}
		if !quiet[n] {
			t.Errorf("alert %s has no test in %stests.yml where it stays quiet (exp_alerts: [])", n, bundleDir)
		}
	}
	for n := range firing {
		if !slices.Contains(names, n) {
			t.Errorf("%stests.yml tests alert %s, which alerts.yml does not define", bundleDir, n)
		}
	}
	for n := range quiet {
		if !slices.Contains(names, n) {
			t.Errorf("%stests.yml tests alert %s, which alerts.yml does not define", bundleDir, n)
		}
	}

	var exprs []string
	for _, line := range strings.Split(tests, "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "- expr: "); ok {
			exprs = append(exprs, e)
		}
	}
	records := recordDecl.FindAllStringSubmatch(rules, -1)
	if len(records) == 0 {
		t.Fatal(bundleDir + "rules.yml: found no '- record:' lines")
	}
	for _, m := range records {
		if !slices.ContainsFunc(exprs, func(e string) bool { return regexp.MustCompile(`\b` + regexp.QuoteMeta(m[1]) + `\b`).MatchString(e) }) {
			t.Errorf("recording rule %s has no promql_expr_test in %stests.yml", m[1], bundleDir)
		}
	}
}

// dashboardExprs returns every target's expr in dashboard.json.
func dashboardExprs(t *testing.T, root string) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readFile(t, root, bundleDir+"dashboard.json")), &d); err != nil {
		t.Fatalf("%sdashboard.json: %v", bundleDir, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%sdashboard.json: panel %q has a target without an expr", bundleDir, p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%sdashboard.json: no panel has a target", bundleDir)
	}
	return exprs
}

// TestPrometheusBundleNames: every metric family the alerts, the recording
// rules and the dashboard query is a row of the reference's metrics table
// (a histogram's _bucket, _sum and _count series by its family), and every
// recorded series the alerts and the dashboard use is one rules.yml
// records. A renamed family thus breaks this test, not an operator's
// dashboard.
func TestPrometheusBundleNames(t *testing.T) {
	root := repoRoot(t)
	reference := readFile(t, root, referencePath)
	rules := readFile(t, root, bundleDir+"rules.yml")
	var recorded []string
	for _, m := range recordDecl.FindAllStringSubmatch(rules, -1) {
		recorded = append(recorded, m[1])
	}
	sources := map[string]string{
		"alerts.yml":     readFile(t, root, bundleDir+"alerts.yml"),
		"rules.yml":      rules,
		"dashboard.json": strings.Join(dashboardExprs(t, root), "\n"),
	}
	for file, text := range sources {
		// Comments may name anything; only the queries count.
		var code strings.Builder
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") {
				code.WriteString(line + "\n")
			}
		}
		q := code.String()
		for _, r := range recordedName.FindAllString(q, -1) {
			if !slices.Contains(recorded, r) {
				t.Errorf("%s%s uses %s, which rules.yml does not record", bundleDir, file, r)
			}
		}
		for _, name := range metricName.FindAllString(recordedName.ReplaceAllString(q, ""), -1) {
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(reference, "| `"+f+"` | histogram |") {
					family = f
				}
			}
			if !strings.Contains(reference, "| `"+family+"` |") {
				t.Errorf("%s%s queries %s, which the metrics table of %s does not list", bundleDir, file, name, referencePath)
			}
		}
	}
}
