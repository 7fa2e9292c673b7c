//! The monitoring assets of `manifests/monitoring` against the real `promtool` (Debian package
//! `prometheus`): the alerting rules load and pass their unit tests, the scrape snippet makes a
//! valid Prometheus config with them, every dashboard query parses, and the rules and the
//! Grafana dashboard query only metrics the controller exports. No Docker engine needed; no
//! `promtool`: the tests fail, never skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use meme_e2e::workspace;

const MONITORING: &str = "manifests/monitoring";

/// Every metric family `controller/src/metrics.rs` registers, with the series names it
/// exposes (a histogram exposes `_bucket`, `_sum` and `_count`).
const EXPORTED: &[(&str, &[&str])] = &[
    ("meme_reconcile_total", &["meme_reconcile_total"]),
    ("meme_reconcile_errors_total", &["meme_reconcile_errors_total"]),
    (
        "meme_reconcile_duration_seconds",
        &[
            "meme_reconcile_duration_seconds_bucket",
            "meme_reconcile_duration_seconds_sum",
            "meme_reconcile_duration_seconds_count",
        ],
    ),
    ("meme_reconcile_actions_total", &["meme_reconcile_actions_total"]),
    ("meme_drift_corrections_total", &["meme_drift_corrections_total"]),
    ("meme_service_ready", &["meme_service_ready"]),
    ("meme_service_replicas", &["meme_service_replicas"]),
    ("meme_source_revision_info", &["meme_source_revision_info"]),
    ("meme_applied_revision_info", &["meme_applied_revision_info"]),
    ("meme_sync_status", &["meme_sync_status"]),
    ("meme_source_errors_total", &["meme_source_errors_total"]),
    ("meme_workqueue_depth", &["meme_workqueue_depth"]),
];

/// The alerts the rules must define (README of `manifests/monitoring`).
const ALERTS: &[&str] = &[
    "MemeControllerDown",
    "MemeReconcileErrors",
    "MemeServiceNotReady",
    "MemeOutOfSync",
    "MemeStalled",
    "MemeRevisionNotApplied",
    "MemeSourceErrors",
    "MemeSuspendedTooLong",
];

fn monitoring(file: &str) -> PathBuf {
    workspace().join(MONITORING).join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs `promtool ARGS` in the workspace root: (success, stdout + stderr).
fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool").args(args).current_dir(workspace()).output().unwrap_or_else(|e| {
        panic!("cannot run promtool (Debian package `prometheus`): {e}; these tests need it and never skip")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Every series name the controller exposes, plus `up` from the scrape.
fn exported_series() -> BTreeSet<&'static str> {
    EXPORTED.iter().flat_map(|(_, series)| series.iter().copied()).chain(["up"]).collect()
}

/// The family a series name belongs to.
fn family_of(series: &str) -> Option<&'static str> {
    EXPORTED.iter().find(|(_, names)| names.contains(&series)).map(|(family, _)| *family)
}

/// Fails with every metric of `exprs` (context, PromQL) that the controller does not export,
/// and with any expression that names no metric at all (the tokenizer missed it); returns the
/// metric names used.
fn assert_only_exported(what: &str, exprs: &[(String, String)]) -> BTreeSet<String> {
    assert!(!exprs.is_empty(), "{what}: no PromQL expression found");
    let exported = exported_series();
    let mut used = BTreeSet::new();
    let mut bad = Vec::new();
    for (context, expr) in exprs {
        let names = metric_names(expr);
        if names.is_empty() {
            bad.push(format!("{context}: names no metric: {expr}"));
        }
        for name in names {
            if !(name.starts_with("meme_") || name == "up") {
                bad.push(format!("{context}: `{name}` is not a meme_* metric (or up): {expr}"));
            } else if !exported.contains(name.as_str()) {
                bad.push(format!("{context}: `{name}` is not exported by controller/src/metrics.rs: {expr}"));
            }
            used.insert(name);
        }
    }
    assert!(bad.is_empty(), "{what}:\n{}", bad.join("\n"));
    used
}

// ---------------------------------------------------------------------------------------------
// A PromQL tokenizer just good enough to name the metrics of an expression: a bare identifier
// that is not a function call, an aggregation, a keyword or a grouping label list is a metric.
// Strings, label matchers (`{...}`), ranges (`[...]`), numbers, durations and Grafana variables
// (`$x`, `${x}`) are skipped.

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &["and", "or", "unless", "offset", "bool", "atan2", "inf", "nan", "start", "end"];

/// The metric names an expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            let end = skip_group(&chars, i, '{', '}');
            let matchers: String = chars[i..end].iter().collect();
            assert!(!matchers.contains("__name__"), "select metrics by name, not with __name__: {expr}");
            i = end;
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '{', '}');
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number or a duration: 0.99, 1e-3, 0x1f, 5m, 1h30m.
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || chars[i] == '_'
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if GROUPING.contains(&word.as_str()) {
                if call {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if !call && !AGGREGATIONS.contains(&word.as_str()) && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index after the string literal that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The index after the bracket that closes the one at `start`, strings inside skipped.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced `{open}` in {}", chars.iter().collect::<String>())
}

#[test]
fn tokenizer_should_name_exactly_the_metrics() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"sum by (service) (rate(meme_reconcile_total{result="error", x=~"a|b"}[5m])) > 0"#,
            &["meme_reconcile_total"],
        ),
        (r#"max without (status) (meme_sync_status{status=~"OutOfSync|Degraded"}) == 1"#, &["meme_sync_status"]),
        ("a unless on (job, instance, revision) b offset 1m", &["a", "b"]),
        ("sum(x) by (le) / ignoring (le) group_left (y) z", &["x", "z"]),
        (r#"histogram_quantile(0.99, sum by (le) (rate(h_bucket{s=~"$service"}[$__rate_interval])))"#, &["h_bucket"]),
        (r#"label_replace(m, "of", "source (tip)", "__name__", ".*") or vector(0)"#, &["m"]),
        ("1e-3 * foo + .5 - ${var} * bar:rate5m", &["bar:rate5m", "foo"]),
        (r#"up{job="meme-controller"} == 0 or absent(up{job="meme-controller"})"#, &["up"]),
        ("count(a and on (revision) b) or count(a) * 0", &["a", "b"]),
    ];
    for (expr, want) in cases {
        let got = metric_names(expr);
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(got, want, "{expr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The few YAML shapes our rule files use: `key: value` (plain, 'single' or "double" quoted) and
// `key: |`/`key: >-` blocks, optionally after a list dash.

/// Every value of `key` in a YAML text, with its 1-based line number.
fn yaml_values(text: &str, key: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("{key}:");
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // The key's column: a block value is indented deeper.
        let mut indent = line.len() - line.trim_start().len();
        let mut body = line.trim_start();
        if let Some(after_dash) = body.strip_prefix("- ") {
            indent += body.len() - after_dash.trim_start().len();
            body = after_dash.trim_start();
        }
        let Some(rest) = body.strip_prefix(&prefix) else {
            i += 1;
            continue;
        };
        let rest = rest.trim();
        let key_line = i + 1;
        i += 1;
        if rest.starts_with('|') || rest.starts_with('>') {
            let folded = rest.starts_with('>');
            let mut block = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                if !l.trim().is_empty() && l.len() - l.trim_start().len() <= indent {
                    break;
                }
                block.push(l.trim());
                i += 1;
            }
            out.push((key_line, block.join(if folded { " " } else { "\n" }).trim().to_owned()));
        } else if let Some(s) = rest.strip_prefix('\'') {
            // 'single quoted', '' is a quote; a comment may follow.
            let mut value = String::new();
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, chars.peek()) {
                    ('\'', Some('\'')) => {
                        value.push('\'');
                        chars.next();
                    }
                    ('\'', _) => break,
                    _ => value.push(c),
                }
            }
            out.push((key_line, value));
        } else if let Some(s) = rest.strip_prefix('"') {
            // "double quoted", with \" and \\ escapes; a comment may follow.
            let mut value = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    _ => value.push(c),
                }
            }
            out.push((key_line, value));
        } else {
            out.push((key_line, rest.split(" #").next().unwrap_or(rest).trim().to_owned()));
        }
    }
    out
}

#[test]
fn yaml_values_should_read_plain_quoted_and_block_values() {
    let text = "a:\n  - expr: up == 0   # down\n    x: 1\n  - expr: 'x{a=\"b\"} > 0'  # it''s\n  - expr: |\n      sum(\n\n        y)\n    for: 5m\n  - expr: \"a{b=\\\"c\\\"}\"\n";
    let got = yaml_values(text, "expr");
    let want = [(2, "up == 0"), (4, "x{a=\"b\"} > 0"), (5, "sum(\n\ny)"), (10, "a{b=\"c\"}")];
    assert_eq!(got, want.map(|(line, v)| (line, v.to_owned())));
}

// ---------------------------------------------------------------------------------------------
// promtool

#[test]
fn alert_rules_should_pass_promtool_check_rules() {
    let rules = read(&monitoring("alerts.yml"));
    let count = yaml_values(&rules, "alert").len() + yaml_values(&rules, "record").len();
    let (ok, out) = promtool(&["check", "rules", "manifests/monitoring/alerts.yml"]);
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(out.contains(&format!("SUCCESS: {count} rules found")), "expected {count} rules:\n{out}");
    // Lint findings (duplicate rules) are printed as FAILED even though the exit code is 0.
    assert!(!out.contains("FAILED") && !out.contains("lint error"), "{out}");

    let defined: BTreeSet<String> = yaml_values(&rules, "alert").into_iter().map(|(_, v)| v).collect();
    for alert in ALERTS {
        assert!(defined.contains(*alert), "alerts.yml lacks {alert}; it has {defined:?}");
    }
    assert!(rules.contains("- name: meme-controller"), "the rule group is named meme-controller");
    for (line, value) in yaml_values(&rules, "alert") {
        let rule = rule_text(&rules, line);
        for required in ["expr", "for", "severity", "summary", "description"] {
            assert!(!yaml_values(&rule, required).is_empty(), "alert {value} (alerts.yml:{line}) lacks `{required}`");
        }
    }
}

/// The text of the rule whose `- alert:` is on 1-based `line`, up to the next rule.
fn rule_text(rules: &str, line: usize) -> String {
    let lines: Vec<&str> = rules.lines().collect();
    let mut end = line;
    while end < lines.len() && !lines[end].trim_start().starts_with("- alert:") {
        end += 1;
    }
    lines[line - 1..end].join("\n")
}

#[test]
fn alert_rules_should_pass_their_unit_tests() {
    let (ok, out) = promtool(&["test", "rules", "manifests/monitoring/alerts_test.yml"]);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules failed:\n{out}");

    // Every alert has a case where it fires and one where it stays quiet.
    let tests = read(&monitoring("alerts_test.yml"));
    let lines: Vec<&str> = tests.lines().collect();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for (line, alert) in yaml_values(&tests, "alertname") {
        let exp = lines[line..]
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with("exp_alerts:"))
            .unwrap_or_else(|| panic!("alerts_test.yml:{line}: no exp_alerts after alertname {alert}"));
        if exp.trim_end_matches(|c: char| c.is_whitespace()).ends_with("[]") {
            quiet.insert(alert);
        } else {
            fires.insert(alert);
        }
    }
    let rules = read(&monitoring("alerts.yml"));
    for (_, alert) in yaml_values(&rules, "alert") {
        assert!(fires.contains(&alert), "alerts_test.yml never expects {alert} to fire");
        assert!(quiet.contains(&alert), "alerts_test.yml never expects {alert} to stay quiet");
    }
}

#[test]
fn scrape_snippet_should_make_a_valid_config_with_the_rules() {
    let snippet_path = monitoring("prometheus-scrape.yml");
    let snippet = read(&snippet_path);
    assert!(snippet.contains("job_name: meme-controller"), "alerts.yml matches on job=\"meme-controller\"");
    assert!(snippet.contains(":9797"), "the controller's default port is 9797");

    // As is: its relative rule_files entry resolves next to it.
    let (ok, out) = promtool(&["check", "config", "manifests/monitoring/prometheus-scrape.yml"]);
    assert!(ok, "promtool check config on the snippet failed:\n{out}");
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");

    // Merged into a config elsewhere, as a Prometheus would load it: relative rule_files
    // entries are resolved from the snippet's directory and written as absolute paths.
    let dir = tempfile::tempdir().expect("temp dir");
    let base = snippet_path.parent().expect("snippet directory");
    let mut config = String::from("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\n");
    let mut rule_files = Vec::new();
    let mut in_rule_files = false;
    for line in snippet.lines() {
        if !line.starts_with(' ') && !line.starts_with('-') && !line.starts_with('#') && !line.trim().is_empty() {
            in_rule_files = line.starts_with("rule_files:");
        }
        let entry = line.trim_start().strip_prefix("- ").map(|e| e.trim().trim_matches(|c| c == '"' || c == '\''));
        match entry {
            Some(entry) if in_rule_files => {
                let path = base.join(entry);
                assert!(path.is_file(), "rule_files entry {entry} resolves to {}, which is missing", path.display());
                let path = path.canonicalize().expect("canonical rule file path");
                config.push_str(&format!("  - {}\n", serde_json::to_string(&path.display().to_string()).unwrap()));
                rule_files.push(path);
            }
            _ => {
                config.push_str(line);
                config.push('\n');
            }
        }
    }
    assert_eq!(rule_files, [monitoring("alerts.yml").canonicalize().unwrap()], "the snippet loads alerts.yml");
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).expect("write the temp config");
    let (ok, out) = promtool(&["check", "config", config_path.to_str().expect("UTF-8 temp path")]);
    assert!(ok, "promtool check config failed on\n{config}\n{out}");
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    assert!(out.contains(&format!("Checking {}", rule_files[0].display())), "{out}");
    let count = yaml_values(&read(&rule_files[0]), "alert").len();
    assert!(out.contains(&format!("SUCCESS: {count} rules found")), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Only exported metrics

/// Every PromQL string of the dashboard (panel targets, annotations, templating), with where
/// it sits.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                let title = map.get("title").or_else(|| map.get("name")).and_then(|t| t.as_str());
                let at = title.map_or_else(|| at.to_owned(), |t| format!("{at} > {t}"));
                for (key, value) in map {
                    if key == "expr"
                        && let Some(expr) = value.as_str()
                    {
                        out.push((at.clone(), expr.to_owned()));
                    } else {
                        walk(value, &at, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, at, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], "panels", &mut out);
    walk(&dashboard["annotations"], "annotations", &mut out);
    // Query variables: Grafana's `label_values(metric, label)` or `query_result(expr)`.
    for var in dashboard["templating"]["list"].as_array().expect("templating.list") {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("?");
        let query = var["query"]["query"].as_str().or_else(|| var["query"].as_str()).expect("variable query");
        for q in [query, var["definition"].as_str().unwrap_or(query)] {
            out.push((format!("templating > {name}"), grafana_variable_expr(q)));
        }
    }
    out
}

/// The PromQL inside a Grafana Prometheus variable query.
fn grafana_variable_expr(query: &str) -> String {
    let query = query.trim();
    if let Some(args) = query.strip_prefix("label_values(").and_then(|a| a.strip_suffix(')')) {
        let (metric, _label) = args.rsplit_once(',').unwrap_or_else(|| panic!("label_values needs a metric: {query}"));
        metric.trim().to_owned()
    } else if let Some(expr) = query.strip_prefix("query_result(").and_then(|a| a.strip_suffix(')')) {
        expr.to_owned()
    } else {
        panic!("unexpected variable query {query}")
    }
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&monitoring("grafana-dashboard.json"))).expect("grafana-dashboard.json is valid JSON")
}

#[test]
fn dashboard_should_query_only_exported_metrics() {
    let dashboard = dashboard();
    let exprs = dashboard_exprs(&dashboard);
    let used = assert_only_exported("grafana-dashboard.json", &exprs);

    // It shows every metric the controller exports.
    let families: BTreeSet<&str> = used.iter().filter_map(|name| family_of(name)).collect();
    for (family, _) in EXPORTED {
        assert!(families.contains(family), "the dashboard does not show {family}");
    }

    // Its shape: an importable dashboard on a templated Prometheus data source.
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "schemaVersion");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no variable {name}"));
    assert_eq!(var("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(var("DS_PROMETHEUS")["query"], "prometheus");
    assert_eq!(var("service")["query"]["query"], "label_values(meme_service_replicas, service)");
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert!(ids.insert(panel["id"].as_u64().expect("panel id")), "duplicate panel id {}", panel["id"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", panel["title"]);
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", panel["title"]);
        }
    }
}

#[test]
fn dashboard_queries_should_parse() {
    // Grafana's variables as Grafana would substitute them, then each query as a recording
    // rule, which promtool parses (JSON is YAML).
    let rules: Vec<serde_json::Value> = dashboard_exprs(&dashboard())
        .into_iter()
        .enumerate()
        .map(|(i, (_, expr))| {
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "1m")
                .replace("$__range", "6h")
                .replace("${service}", ".*")
                .replace("$service", ".*");
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr})
        })
        .collect();
    let count = rules.len();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dashboard-queries.yml");
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let (ok, out) = promtool(&["check", "rules", path.to_str().expect("UTF-8 temp path")]);
    assert!(ok && out.contains(&format!("SUCCESS: {count} rules found")), "{out}");
}

#[test]
fn alert_rules_should_query_only_exported_metrics() {
    let rules = read(&monitoring("alerts.yml"));
    let mut exprs: Vec<(String, String)> =
        yaml_values(&rules, "expr").into_iter().map(|(line, expr)| (format!("alerts.yml:{line}"), expr)).collect();
    // Queries inside annotation templates: {{ with printf `PROMQL` ... | query }}.
    for (line, text) in yaml_values(&rules, "description").into_iter().chain(yaml_values(&rules, "summary")) {
        for (i, part) in text.split("printf `").enumerate().skip(1) {
            let query = part.split('`').next().expect("closing backtick").replace("%q", "\"x\"");
            exprs.push((format!("alerts.yml:{line} template query {i}"), query));
        }
    }
    let used = assert_only_exported("alerts.yml", &exprs);
    assert!(used.contains("up"), "MemeControllerDown watches up");
}

#[test]
fn listed_metrics_should_be_the_ones_metrics_rs_registers() {
    // A rename in controller/src/metrics.rs must fail here, not silently blank a panel.
    let source = read(&workspace().join("controller/src/metrics.rs"));
    assert!(source.contains("Registry::with_prefix(\"meme\")"), "the metrics prefix is meme_");
    for (family, _) in EXPORTED {
        let base = family.strip_prefix("meme_").expect("meme_ prefix");
        let base = base.strip_suffix("_total").unwrap_or(base);
        let base = base.strip_suffix("_seconds").unwrap_or(base);
        assert!(
            source.contains(&format!("\"{base}\"")),
            "controller/src/metrics.rs registers no \"{base}\" ({family})"
        );
    }
}
