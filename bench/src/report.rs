//! `report`: the comparison table of a run, from the JSON lines the scenarios printed.
//!
//! Rounds of the same case are summarised by their median for rates and latencies, and by their
//! worst value for failures, disconnects and undelivered messages. The last section lists every
//! run that lost something (see [`crate::losses`]), in red on a terminal.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::losses::Color;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Files of JSON lines, as printed by the scenarios.
    #[arg(required = true, value_parser = crate::existing_file)]
    files: Vec<PathBuf>,
    /// Label of the server under test.
    #[arg(long, default_value = "iorelay")]
    subject: String,
    /// Label of the Node socket.io reference.
    #[arg(long, default_value = "node")]
    node: String,
    /// Label of the raw WebSocket reference.
    #[arg(long, default_value = "raw")]
    raw: String,
    /// Prints Markdown tables instead of plain text.
    #[arg(long)]
    markdown: bool,
}

#[derive(Clone, Copy)]
enum Summary {
    Median,
    Worst,
}

struct Column {
    header: &'static str,
    pointer: &'static str,
    summary: Summary,
    decimals: usize,
}

const fn column(
    header: &'static str,
    pointer: &'static str,
    summary: Summary,
    decimals: usize,
) -> Column {
    Column {
        header,
        pointer,
        summary,
        decimals,
    }
}

const CONNECT: &[Column] = &[
    column("connect/s", "/connect_per_s", Summary::Median, 0),
    column("handshake p50 ms", "/handshake_ms/p50", Summary::Median, 2),
    column("handshake p99 ms", "/handshake_ms/p99", Summary::Median, 2),
    column("KiB/conn", "/kib_per_connection", Summary::Median, 2),
    column("failures", "/failures", Summary::Worst, 0),
    column("disconnects", "/disconnects", Summary::Worst, 0),
];

const FANOUT: &[Column] = &[
    column("delivered msg/s", "/delivered_per_s", Summary::Median, 0),
    column("p50 ms", "/latency_ms/p50", Summary::Median, 2),
    column("p90 ms", "/latency_ms/p90", Summary::Median, 2),
    column("p99 ms", "/latency_ms/p99", Summary::Median, 2),
    column("max ms", "/latency_ms/max", Summary::Median, 2),
    column("undelivered", "/undelivered", Summary::Worst, 0),
    column("refused", "/refused", Summary::Worst, 0),
    column("server CPU %", "/server_cpu_pct", Summary::Median, 0),
];

const ECHO: &[Column] = &[
    column("acks/s", "/acks_per_s", Summary::Median, 0),
    column("p50 ms", "/latency_ms/p50", Summary::Median, 3),
    column("p99 ms", "/latency_ms/p99", Summary::Median, 3),
    column("lost", "/lost_connections", Summary::Worst, 0),
    column("server CPU %", "/server_cpu_pct", Summary::Median, 0),
];

const WEBHOOK: &[Column] = &[
    column("events/s", "/events_per_s", Summary::Median, 0),
    column("p50 ms", "/latency_ms/p50", Summary::Median, 3),
    column("p99 ms", "/latency_ms/p99", Summary::Median, 3),
    column("echo p99 ms", "/echo_latency_ms/p99", Summary::Median, 3),
    column("added p99 ms", "/added_p99_ms", Summary::Median, 3),
    column("errors", "/error_acks", Summary::Worst, 0),
    column("unanswered", "/unanswered", Summary::Worst, 0),
    column("lost", "/lost_connections", Summary::Worst, 0),
    column("server CPU %", "/server_cpu_pct", Summary::Median, 0),
    column("app CPU %", "/app_cpu_pct", Summary::Median, 0),
    column("load CPU %", "/loadgen_cpu_pct", Summary::Median, 0),
];

const API_EMIT: &[Column] = &[
    column("requests/s", "/requests_per_s", Summary::Median, 0),
    column("delivered msg/s", "/delivered_per_s", Summary::Median, 0),
    column("p50 ms", "/latency_ms/p50", Summary::Median, 2),
    column("p99 ms", "/latency_ms/p99", Summary::Median, 2),
    column("undelivered", "/undelivered", Summary::Worst, 0),
    column("refused", "/refused", Summary::Worst, 0),
    column("unanswered", "/unanswered", Summary::Worst, 0),
    column("server CPU %", "/server_cpu_pct", Summary::Median, 0),
    column("load CPU %", "/loadgen_cpu_pct", Summary::Median, 0),
];

/// Scenarios the raw WebSocket reference cannot run: it has no webhook and no server API.
fn without_raw(scenario: &str) -> bool {
    matches!(scenario, "webhook" | "api-emit")
}

/// The results of one case (scenario and parameters), by server, in the order first seen.
struct Case {
    name: String,
    scenario: String,
    servers: Vec<(String, Vec<Value>)>,
}

impl Case {
    fn runs(&self, server: &str) -> Option<&[Value]> {
        self.servers
            .iter()
            .find(|(name, _)| name == server)
            .map(|(_, runs)| runs.as_slice())
    }

    fn value(&self, server: &str, pointer: &str, summary: Summary) -> Option<f64> {
        let mut values: Vec<f64> = self
            .runs(server)?
            .iter()
            .filter_map(|run| run.pointer(pointer).and_then(Value::as_f64))
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(match summary {
            Summary::Median => values[values.len() / 2],
            Summary::Worst => {
                // Larger is worse for every "worst" column (counts of failures).
                values[values.len() - 1]
            }
        })
    }

    /// Whether the case's clients stay on long-polling.
    fn polling(&self) -> bool {
        self.servers
            .first()
            .and_then(|(_, runs)| runs.first())
            .is_some_and(|run| !on_polling(run).is_empty())
    }

    fn param(&self, name: &str) -> u64 {
        self.servers
            .first()
            .and_then(|(_, runs)| runs.first())
            .and_then(|run| run.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    fn columns(&self) -> &'static [Column] {
        match self.scenario.as_str() {
            "connect" => CONNECT,
            "fanout" => FANOUT,
            "webhook" => WEBHOOK,
            "api-emit" => API_EMIT,
            _ => ECHO,
        }
    }
}

/// " on polling" for a run whose clients (or members) stay on long-polling.
fn on_polling(run: &Value) -> &'static str {
    let transport = run
        .get("transport")
        .or_else(|| run.get("member_transport"))
        .and_then(Value::as_str);
    if transport == Some("polling") {
        " on polling"
    } else {
        ""
    }
}

fn case_name(run: &Value) -> Option<(String, String)> {
    let scenario = run.get("scenario")?.as_str()?.to_owned();
    let number = |name: &str| run.get(name).and_then(Value::as_u64).unwrap_or(0);
    let name = match scenario.as_str() {
        "connect" => format!(
            "connect {} clients{}, held {} s",
            number("clients"),
            on_polling(run),
            number("hold_s")
        ),
        "fanout" if number("rate") == 0 => format!(
            "fanout {} members{}{}, max rate (window {})",
            number("members"),
            on_polling(run),
            over_nodes(number("nodes")),
            number("window")
        ),
        "fanout" => format!(
            "fanout {} members{}{} × {} msg/s",
            number("members"),
            on_polling(run),
            over_nodes(number("nodes")),
            number("rate")
        ),
        "echo" => format!("echo {} clients", number("clients")),
        "webhook" => format!("webhook {} clients", number("clients")),
        "api-emit" => format!(
            "api-emit {} members, {} connections",
            number("members"),
            number("connections")
        ),
        _ => return None,
    };
    Some((scenario, name))
}

/// ", over N nodes" for a cluster's case; nothing for one node (older results have no count).
fn over_nodes(nodes: u64) -> String {
    if nodes > 1 {
        format!(" over {nodes} nodes")
    } else {
        String::new()
    }
}

fn load(files: &[PathBuf]) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        for line in text.lines().filter(|line| line.starts_with('{')) {
            let run: Value = serde_json::from_str(line)
                .map_err(|e| format!("{}: bad JSON line {line:?}: {e}", file.display()))?;
            let Some((scenario, name)) = case_name(&run) else {
                continue;
            };
            let server = run
                .get("server")
                .and_then(Value::as_str)
                .unwrap_or("server")
                .to_owned();
            let index = match cases.iter().position(|case| case.name == name) {
                Some(index) => index,
                None => {
                    cases.push(Case {
                        name,
                        scenario,
                        servers: Vec::new(),
                    });
                    cases.len() - 1
                }
            };
            let case = &mut cases[index];
            match case.servers.iter_mut().find(|(name, _)| *name == server) {
                Some((_, runs)) => runs.push(run),
                None => case.servers.push((server, vec![run])),
            }
        }
    }
    Ok(cases)
}

/// A table printed as aligned text or as Markdown.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        if markdown {
            let _ = writeln!(out, "| {} |", self.header.join(" | "));
            let _ = writeln!(
                out,
                "|{}",
                self.header
                    .iter()
                    .enumerate()
                    .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                    .collect::<String>()
            );
            for row in &self.rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            return out;
        }
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([self.header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, width))| {
                    let pad = width - cell.chars().count();
                    if i == 0 {
                        format!("{cell}{}", " ".repeat(pad))
                    } else {
                        format!("{}{cell}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        let _ = writeln!(out, "{}", line(&self.header));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }
}

fn format_number(value: Option<f64>, decimals: usize) -> String {
    match value {
        None => "–".into(),
        Some(value) if decimals == 0 => group_thousands(value.round() as i64),
        Some(value) => format!("{value:.decimals$}"),
    }
}

fn group_thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    if value < 0 { format!("-{out}") } else { out }
}

fn ratio(top: Option<f64>, bottom: Option<f64>) -> Option<f64> {
    match (top, bottom) {
        (Some(top), Some(bottom)) if bottom > 0.0 => Some(top / bottom),
        _ => None,
    }
}

fn format_ratio(value: Option<f64>) -> String {
    value.map_or("–".into(), |value| format!("{value:.2}×"))
}

pub fn run(args: &ReportArgs) -> Result<(), String> {
    let cases = load(&args.files)?;
    if cases.is_empty() {
        return Err("no results in the given files".into());
    }
    let heading = |text: &str| {
        if args.markdown {
            format!("\n**{text}**\n\n")
        } else {
            format!("\n== {text}\n")
        }
    };

    let mut out = String::new();
    for case in &cases {
        let columns = case.columns();
        let mut table = Table {
            header: ["server".to_owned(), "runs".to_owned()]
                .into_iter()
                .chain(columns.iter().map(|c| c.header.to_owned()))
                .collect(),
            rows: Vec::new(),
        };
        for (server, runs) in &case.servers {
            let mut row = vec![server.clone(), runs.len().to_string()];
            for column in columns {
                row.push(format_number(
                    case.value(server, column.pointer, column.summary),
                    column.decimals,
                ));
            }
            table.rows.push(row);
        }
        out.push_str(&heading(&case.name));
        out.push_str(&table.render(args.markdown));
    }

    let mut ratios = Table {
        header: vec![
            "case".into(),
            "metric".into(),
            args.subject.clone(),
            args.node.clone(),
            args.raw.clone(),
            format!("{} ÷ {}", args.subject, args.node),
            format!("{} ÷ {}", args.subject, args.raw),
        ],
        rows: Vec::new(),
    };
    for case in &cases {
        let metrics: &[(&str, &str, usize)] = match case.scenario.as_str() {
            "connect" if case.param("hold_s") < 60 => &[
                ("connect/s", "/connect_per_s", 0),
                ("KiB/conn", "/kib_per_connection", 2),
            ],
            "connect" => &[],
            "fanout" if case.param("rate") == 0 => &[("delivered msg/s", "/delivered_per_s", 0)],
            "fanout" => &[
                ("delivered msg/s", "/delivered_per_s", 0),
                ("p99 ms", "/latency_ms/p99", 2),
            ],
            "webhook" => &[
                ("events/s", "/events_per_s", 0),
                ("p99 ms", "/latency_ms/p99", 3),
            ],
            "api-emit" => &[
                ("requests/s", "/requests_per_s", 0),
                ("delivered msg/s", "/delivered_per_s", 0),
                ("p99 ms", "/latency_ms/p99", 2),
            ],
            _ => &[("acks/s", "/acks_per_s", 0)],
        };
        let no_raw = without_raw(&case.scenario);
        for &(metric, pointer, decimals) in metrics {
            let subject = case.value(&args.subject, pointer, Summary::Median);
            let node = case.value(&args.node, pointer, Summary::Median);
            let raw = case.value(&args.raw, pointer, Summary::Median);
            ratios.rows.push(vec![
                case.name.clone(),
                metric.into(),
                format_number(subject, decimals),
                format_number(node, decimals),
                if no_raw {
                    "n/a".into()
                } else {
                    format_number(raw, decimals)
                },
                format_ratio(ratio(subject, node)),
                if no_raw {
                    "n/a".into()
                } else {
                    format_ratio(ratio(subject, raw))
                },
            ]);
        }
    }
    if !ratios.rows.is_empty() {
        out.push_str(&heading("ratios (medians)"));
        out.push_str(&ratios.render(args.markdown));
    }

    out.push_str(&heading(&format!("targets for {}", args.subject)));
    for (target, verdict) in targets(&cases, args) {
        if args.markdown {
            let _ = writeln!(out, "- {target}: {verdict}");
        } else {
            let _ = writeln!(out, "  {target}: {verdict}");
        }
    }

    out.push_str(&heading("losses"));
    let color = if args.markdown {
        Color::plain()
    } else {
        Color::for_stdout()
    };
    // The subject's losses fail a run (tests/bench/run.sh); a reference's are part of the
    // comparison, such as Node falling behind the fixed-rate fan-out.
    let lost = lost_runs(&cases);
    if lost.is_empty() {
        let none = "none: every message delivered, every ack answered without an error";
        let _ = writeln!(out, "{} {none}", if args.markdown { "-" } else { " " });
    }
    for (server, line) in lost {
        let subject = server == args.subject;
        let label = if subject {
            "LOST"
        } else {
            "lost by a reference"
        };
        if args.markdown {
            let _ = writeln!(out, "- {label}: {line}");
        } else if subject {
            let _ = writeln!(out, "  {}", color.red(&format!("{label}: {line}")));
        } else {
            let _ = writeln!(out, "  {label}: {line}");
        }
    }
    print!("{out}");
    Ok(())
}

/// One line per run that lost something, with its server: server, case, run number and losses.
fn lost_runs(cases: &[Case]) -> Vec<(&str, String)> {
    let mut lines = Vec::new();
    for case in cases {
        for (server, runs) in &case.servers {
            for (index, run) in runs.iter().enumerate() {
                let losses: Vec<&str> = run
                    .get("losses")
                    .and_then(Value::as_array)
                    .map(|losses| losses.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !losses.is_empty() {
                    lines.push((
                        server.as_str(),
                        format!(
                            "{server}, {} (run {}): {}",
                            case.name,
                            index + 1,
                            losses.join("; ")
                        ),
                    ));
                }
            }
        }
    }
    lines
}

/// Each target of the benchmark and whether this run meets it.
fn targets(cases: &[Case], args: &ReportArgs) -> Vec<(String, String)> {
    let subject = args.subject.as_str();
    let verdict = |met: Option<bool>, detail: String| match met {
        Some(true) => format!("met ({detail})"),
        Some(false) => format!("NOT met ({detail})"),
        None => "not measured in this run".to_owned(),
    };
    let median =
        |case: &Case, server: &str, pointer: &str| case.value(server, pointer, Summary::Median);
    let worst =
        |case: &Case, server: &str, pointer: &str| case.value(server, pointer, Summary::Worst);

    // The largest short connect case measures idle memory and connect rate.
    let connect = cases
        .iter()
        .filter(|c| {
            c.scenario == "connect"
                && !c.polling()
                && c.param("hold_s") < 60
                && c.runs(subject).is_some()
        })
        .max_by_key(|c| c.param("clients"));
    let fanout_max = cases.iter().find(|c| {
        c.scenario == "fanout"
            && c.param("rate") == 0
            && c.param("members") == 1_000
            && c.param("nodes") <= 1
            && !c.polling()
    });
    let fanout_rate = cases.iter().find(|c| {
        c.scenario == "fanout"
            && c.param("rate") == 1_000
            && c.param("members") == 1_000
            && c.param("nodes") <= 1
            && !c.polling()
    });
    let soak = cases
        .iter()
        .filter(|c| c.scenario == "connect" && !c.polling() && c.param("hold_s") >= 60)
        .max_by_key(|c| c.param("clients"));

    let mut out = Vec::new();
    let memory = connect.and_then(|c| median(c, subject, "/kib_per_connection"));
    out.push((
        "memory per idle WebSocket connection ≤ 10 KiB".to_owned(),
        verdict(
            memory.map(|kib| kib <= 10.0),
            format!("{} KiB", format_number(memory, 2)),
        ),
    ));

    let (throughput_met, throughput_detail) = match fanout_max {
        Some(case) => {
            let subject_rate = median(case, subject, "/delivered_per_s");
            let node = ratio(subject_rate, median(case, &args.node, "/delivered_per_s"));
            let raw = ratio(subject_rate, median(case, &args.raw, "/delivered_per_s"));
            let met = match (node, raw) {
                (Some(node), Some(raw)) => Some(node >= 10.0 && raw >= 0.8),
                _ => None,
            };
            (
                met,
                format!(
                    "{} vs Node, {} of raw",
                    format_ratio(node),
                    format_ratio(raw)
                ),
            )
        }
        None => (None, String::new()),
    };
    out.push((
        "fan-out throughput ≥ 10× Node and ≥ 80 % of raw, 1 000 members".to_owned(),
        verdict(throughput_met, throughput_detail),
    ));

    let (rate_met, rate_detail) = match fanout_rate {
        Some(case) => {
            let undelivered = worst(case, subject, "/undelivered");
            let p99 = median(case, subject, "/latency_ms/p99");
            let raw_p99 = median(case, &args.raw, "/latency_ms/p99");
            let met = match (undelivered, ratio(p99, raw_p99)) {
                (Some(undelivered), Some(p99_ratio)) => {
                    Some(undelivered == 0.0 && p99_ratio <= 2.0)
                }
                _ => None,
            };
            (
                met,
                format!(
                    "{} undelivered, p99 {} ms vs raw {} ms",
                    format_number(undelivered, 0),
                    format_number(p99, 2),
                    format_number(raw_p99, 2)
                ),
            )
        }
        None => (None, String::new()),
    };
    out.push((
        "zero undelivered at 1 000 members × 1 000 msg/s, p99 ≤ 2× raw".to_owned(),
        verdict(rate_met, rate_detail),
    ));

    let connect_ratio = connect.and_then(|c| {
        ratio(
            median(c, subject, "/connect_per_s"),
            median(c, &args.node, "/connect_per_s"),
        )
    });
    out.push((
        "connect rate ≥ 3× Node".to_owned(),
        verdict(
            connect_ratio.map(|r| r >= 3.0),
            format!("{} Node", format_ratio(connect_ratio)),
        ),
    ));

    let (soak_met, soak_detail) = match soak.filter(|c| c.param("clients") >= 19_000) {
        Some(case) => {
            let connected = median(case, subject, "/connected");
            let failures = worst(case, subject, "/failures");
            let disconnects = worst(case, subject, "/disconnects");
            let met = match (connected, failures, disconnects) {
                (Some(connected), Some(failures), Some(disconnects)) => Some(
                    connected >= case.param("clients") as f64
                        && failures == 0.0
                        && disconnects == 0.0,
                ),
                _ => None,
            };
            (
                met,
                format!(
                    "{} clients for {} s: {} failed, {} disconnected",
                    case.param("clients"),
                    case.param("hold_s"),
                    format_number(failures, 0),
                    format_number(disconnects, 0)
                ),
            )
        }
        None => (None, String::new()),
    };
    out.push((
        "19 000 concurrent clients held 60 s without a disconnect".to_owned(),
        verdict(soak_met, soak_detail),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_the_runs_that_lost_something() {
        let case = Case {
            name: "fanout 20 members, max rate (window 64)".into(),
            scenario: "fanout".into(),
            servers: vec![
                (
                    "iorelay".into(),
                    vec![
                        serde_json::json!({ "losses": [] }),
                        serde_json::json!({ "losses": ["3 of 9 chats never acknowledged", "9 of 27 deliveries of accepted chats never arrived"] }),
                    ],
                ),
                // Results written before losses were recorded have no such field.
                ("node".into(), vec![serde_json::json!({ "undelivered": 0 })]),
            ],
        };
        let cases = [case];
        assert_eq!(
            lost_runs(&cases),
            vec![(
                "iorelay",
                "iorelay, fanout 20 members, max rate (window 64) (run 2): 3 of 9 chats never \
                 acknowledged; 9 of 27 deliveries of accepted chats never arrived"
                    .to_owned()
            )]
        );
    }
}
