// Static and live checks of the monitoring files in docker/ (CI has no Docker engine): every
// PromQL query of the Grafana dashboard parses with Prometheus's own grammar
// (@prometheus-io/lezer-promql) and names only metrics and labels that a running iorelay with
// Redis exposes; Prometheus scrapes every iorelay service of the Compose file on its metrics
// port; Grafana's provisioning points at the files the Compose file mounts.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { parser } from "@prometheus-io/lezer-promql";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { parse as parseYaml } from "yaml";

import { startIorelay } from "../support/iorelay.mjs";
import { FAMILIES, REDIS_FAMILIES } from "../support/metrics.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const docker = path.join(repoRoot, "docker");
const dashboardPath = path.join(docker, "grafana", "iorelay-dashboard.json");

/** Labels Prometheus adds to every scraped series, and the histogram bucket bound. */
const SCRAPE_LABELS = ["instance", "job", "le"];

/** Grafana's variables replaced by values Prometheus accepts, as Grafana does before sending. */
function substituteVariables(expr) {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$instance", ".*");
}

/**
 * Parses `expr` with the PromQL grammar. Returns `{ errors, metrics, labels }`: the number of
 * error nodes, the metric names selected, and the label names used in matchers and groupings.
 */
function analyze(expr) {
  const text = substituteVariables(expr);
  const tree = parser.parse(text);
  let errors = 0;
  const metrics = new Set();
  const labels = new Set();
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors += 1;
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") {
        metrics.add(text.slice(node.from, node.to));
      }
      if (node.name === "LabelName") labels.add(text.slice(node.from, node.to));
    },
  });
  return { errors, metrics: [...metrics], labels: [...labels] };
}

/** The family a sample name belongs to: histograms are selected through _bucket, _sum and _count. */
function familyOf(sampleName) {
  const base = sampleName.replace(/_(bucket|sum|count)$/, "");
  return base !== sampleName && [FAMILIES, REDIS_FAMILIES].some((f) => f[base] === "HISTOGRAM") ? base : sampleName;
}

async function dashboardQueries() {
  const dashboard = JSON.parse(await readFile(dashboardPath, "utf8"));
  const queries = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) queries.push({ panel: panel.title, expr: target.expr });
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type === "query")
      queries.push({ panel: `variable ${variable.name}`, expr: /label_values\((\w+)/.exec(variable.definition)[1] });
  }
  return { dashboard, queries };
}

describe("docker/grafana/iorelay-dashboard.json", () => {
  it("is a provisionable dashboard: unique ids, panels on the grid without overlap, one data source variable", async () => {
    const { dashboard } = await dashboardQueries();
    assert.equal(dashboard.uid, "iorelay");
    assert.ok(Number.isInteger(dashboard.schemaVersion));
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    const cells = new Set();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title} fits the 24 columns`);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          assert.ok(!cells.has(`${row}:${col}`), `${panel.title} overlaps another panel at ${row}:${col}`);
          cells.add(`${row}:${col}`);
        }
      }
      if (panel.type === "row") continue;
      assert.ok(panel.targets?.length > 0, `${panel.title} queries something`);
      assert.ok(panel.description, `${panel.title} says what it shows`);
      assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
    }
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    assert.equal(variables.datasource.type, "datasource");
    assert.equal(variables.datasource.query, "prometheus");
  });

  it("queries valid PromQL on metrics and labels iorelay defines, and charts every family", async () => {
    const { queries } = await dashboardQueries();
    const known = { ...FAMILIES, ...REDIS_FAMILIES };
    const charted = new Set();
    for (const { panel, expr } of queries) {
      const { errors, metrics } = analyze(expr);
      assert.equal(errors, 0, `${panel}: ${expr} does not parse`);
      assert.ok(metrics.length > 0, `${panel}: ${expr} selects no metric`);
      for (const metric of metrics) {
        const family = familyOf(metric);
        assert.ok(family in known, `${panel}: ${metric} is not a metric iorelay exposes`);
        charted.add(family);
      }
    }
    assert.deepEqual(
      Object.keys(known)
        .filter((family) => !charted.has(family))
        .sort(),
      [],
      "families no panel shows",
    );
  });

  it("would catch a misspelt metric and a broken query", () => {
    const misspelt = analyze("sum(rate(iorelay_conects_total[$__rate_interval]))");
    assert.deepEqual(misspelt, { errors: 0, metrics: ["iorelay_conects_total"], labels: [] });
    assert.ok(!(familyOf(misspelt.metrics[0]) in FAMILIES));
    assert.ok(analyze("sum by (namespace (iorelay_sockets_connected)").errors > 0);
    const histogram = analyze(
      'histogram_quantile(0.99, sum by (le) (rate(iorelay_broadcast_fanout_bucket{instance=~"$instance"}[$__rate_interval])))',
    );
    assert.deepEqual(histogram, {
      errors: 0,
      metrics: ["iorelay_broadcast_fanout_bucket"],
      labels: ["le", "instance"],
    });
    assert.equal(familyOf(histogram.metrics[0]), "iorelay_broadcast_fanout");
  });

  describe("against a running iorelay with Redis", () => {
    let redis;
    let server;

    before(async () => {
      redis = await startRedis();
      server = await startIorelay({ args: ["--redis-url", redis.url, "--tick-interval-ms", "0"] });
    });
    after(async () => {
      await server?.stop();
      await redis?.stop();
    });

    it("every metric and label the dashboard queries is in /metrics", async () => {
      const res = await httpRequest(`${server.url}/metrics`);
      assert.equal(res.status, 200);
      const exposed = new Map();
      for (const family of parsePrometheusTextFormat(res.body))
        exposed.set(family.name, { type: family.type, labels: new Set() });
      // The parser folds the series of a labelled histogram into one and drops their labels,
      // so label names are read from the sample lines themselves.
      for (const line of res.body.split("\n")) {
        const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
        if (!sample) continue;
        const family = exposed.get(familyOf(sample[1]));
        assert.ok(family, `a sample outside any family: ${line}`);
        for (const [, label] of (sample[2] ?? "").matchAll(/(\w+)="/g)) family.labels.add(label);
      }
      const { queries } = await dashboardQueries();
      for (const { panel, expr } of queries) {
        const { metrics, labels } = analyze(expr);
        const families = metrics.map(familyOf);
        for (const family of families) assert.ok(exposed.has(family), `${panel}: ${family} is not in /metrics`);
        const available = new Set([...SCRAPE_LABELS, ...families.flatMap((f) => [...exposed.get(f).labels])]);
        for (const label of labels)
          assert.ok(available.has(label), `${panel}: label ${label} is not on ${families.join(", ")}`);
      }
    });
  });
});

describe("docker/prometheus.yml and Grafana's provisioning with docker-compose.yml", () => {
  it("scrapes every iorelay service on the metrics port it listens on", async () => {
    const compose = parseYaml(await readFile(path.join(docker, "docker-compose.yml"), "utf8"));
    const prometheus = parseYaml(await readFile(path.join(docker, "prometheus.yml"), "utf8"));
    const iorelayServices = Object.entries(compose.services)
      .filter(([, service]) => service.build?.dockerfile === "docker/Dockerfile")
      .map(([name, service]) => ({ name, listen: service.environment.IORELAY_METRICS_LISTEN }));
    assert.equal(iorelayServices.length, 3);
    const [job] = prometheus.scrape_configs;
    assert.equal(prometheus.scrape_configs.length, 1);
    assert.equal(job.metrics_path, "/metrics");
    const targets = job.static_configs.flatMap((c) => c.targets);
    assert.deepEqual(
      targets,
      iorelayServices.map(({ name, listen }) => `${name}:${/:(\d+)$/.exec(listen)[1]}`),
    );
    // Not the public port nginx forwards: /metrics stays inside the Compose network.
    assert.ok(targets.every((t) => !t.endsWith(":3000")));
  });

  it("runs Prometheus and Grafana only under the monitoring profile, with the files mounted where they are read", async () => {
    const compose = parseYaml(await readFile(path.join(docker, "docker-compose.yml"), "utf8"));
    const profiled = Object.entries(compose.services).filter(([, s]) => s.profiles);
    assert.deepEqual(profiled.map(([name]) => name).sort(), ["grafana", "prometheus"]);
    for (const [, service] of profiled) assert.deepEqual(service.profiles, ["monitoring"]);

    const mounts = (service) =>
      Object.fromEntries(service.volumes.map((v) => v.replace(/:ro$/, "").split(":")).map(([from, to]) => [to, from]));
    assert.equal(mounts(compose.services.prometheus)["/etc/prometheus/prometheus.yml"], "./prometheus.yml");
    const grafana = mounts(compose.services.grafana);
    assert.equal(grafana["/etc/grafana/provisioning"], "./grafana/provisioning");

    const datasources = parseYaml(
      await readFile(path.join(docker, "grafana", "provisioning", "datasources", "prometheus.yml"), "utf8"),
    );
    assert.equal(datasources.datasources[0].type, "prometheus");
    const promPort = compose.services.prometheus.ports[0].split(":")[1];
    assert.equal(datasources.datasources[0].url, `http://prometheus:${promPort}`);

    const providers = parseYaml(
      await readFile(path.join(docker, "grafana", "provisioning", "dashboards", "iorelay.yml"), "utf8"),
    );
    const dashboardDir = providers.providers[0].options.path;
    const mountedDashboards = Object.entries(grafana).filter(([to]) => to.startsWith(`${dashboardDir}/`));
    assert.deepEqual(
      mountedDashboards.map(([, from]) => from),
      ["./grafana/iorelay-dashboard.json"],
    );
    assert.equal(
      compose.services.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH,
      mountedDashboards[0][0],
    );
  });
});
