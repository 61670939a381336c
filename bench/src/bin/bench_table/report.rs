//! The comparison table and the targets it is checked against, as markdown.

use std::fmt::Write as _;

/// One result: a workload, a peer, and what it measured.
pub struct Row {
    pub workload: String,
    pub peer: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub note: String,
}

/// Every row of one run, in the order the workloads ran.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn push(
        &mut self,
        workload: impl Into<String>,
        peer: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.push_noted(workload, peer, Some(value), unit, String::new());
    }

    pub fn push_noted(
        &mut self,
        workload: impl Into<String>,
        peer: impl Into<String>,
        value: Option<f64>,
        unit: &'static str,
        note: impl Into<String>,
    ) {
        let row = Row {
            workload: workload.into(),
            peer: peer.into(),
            value,
            unit,
            note: note.into(),
        };
        eprintln!(
            "  {:<40} {:<58} {}",
            row.workload,
            row.peer,
            format_value(row.value, row.unit)
        );
        self.rows.push(row);
    }

    /// The value of `peer` in `workload`, if it was measured.
    pub fn get(&self, workload: &str, peer: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| row.workload == workload && row.peer == peer)
            .and_then(|row| row.value)
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("| workload | peer | result | notes |\n|---|---|---:|---|\n");
        let mut last = "";
        for row in &self.rows {
            let workload = if row.workload == last {
                ""
            } else {
                &row.workload
            };
            last = &row.workload;
            let _ = writeln!(
                out,
                "| {workload} | {} | {} | {} |",
                row.peer,
                format_value(row.value, row.unit),
                row.note
            );
        }
        out
    }
}

fn format_value(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "-".to_string(),
        Some(value) if value >= 100.0 => format!("{value:.0} {unit}"),
        Some(value) if value >= 10.0 => format!("{value:.1} {unit}"),
        Some(value) => format!("{value:.2} {unit}"),
    }
}

/// One target of the issue, checked against the table.
pub struct Target {
    pub name: &'static str,
    pub figure: Option<String>,
    pub holds: Option<bool>,
}

pub fn targets_markdown(targets: &[Target]) -> String {
    let mut out = String::from("| target | figure | holds |\n|---|---|---|\n");
    for target in targets {
        let holds = match target.holds {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {holds} |",
            target.name,
            target.figure.as_deref().unwrap_or("-")
        );
    }
    out
}
