//! What a run prints: each workload as it ends, then the README's markdown table and the
//! SVG chart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::contenders::copy::Limit;
use crate::harness::Run;
use crate::workloads::PHYSICAL_LIMIT_ROWS;
use crate::{CHUNK, MIB};

/// One contender's runs on one workload.
pub struct Row {
    /// The workload's number.
    pub workload: u32,
    /// The workload's number and name.
    pub title: String,
    pub contender: &'static str,
    pub ours: bool,
    /// Producer and consumer on two threads (CPU time and parks measured), as opposed to
    /// workload 4's one-thread copies.
    pub two_threads: bool,
    pub bytes: u64,
    pub items: u64,
    pub runs: Vec<Run>,
}

impl Row {
    fn median(&self) -> Duration {
        let mut runs: Vec<Duration> = self.runs.iter().map(|r| r.time).collect();
        runs.sort();
        runs[runs.len() / 2]
    }

    pub fn gib_s(&self) -> f64 {
        self.bytes as f64 / self.median().as_secs_f64() / (1u64 << 30) as f64
    }

    /// Median CPU time of both threads per item, in ns.
    fn cpu_per_item(&self) -> f64 {
        let mut cpu: Vec<u64> = self.runs.iter().map(|r| r.cpu).collect();
        cpu.sort_unstable();
        cpu[cpu.len() / 2] as f64 / self.items as f64
    }

    /// Median executor parks per item.
    fn parks_per_item(&self) -> f64 {
        let mut parks: Vec<u64> = self.runs.iter().map(|r| r.parks).collect();
        parks.sort_unstable();
        parks[parks.len() / 2] as f64 / self.items as f64
    }

    fn mitems_s(&self) -> f64 {
        self.items as f64 / self.median().as_secs_f64() / 1e6
    }

    /// `text` for the two-thread contenders, a dash for the one-thread copies of workload 4.
    fn two_threaded(&self, text: String) -> String {
        if self.two_threads { text } else { "–".into() }
    }
}

/// A workload's rows as it ends: every contender, and kithara's ratio to each peer.
pub fn print_workload(rows: &[Row]) {
    println!("\n## {}", rows[0].title);
    let best_peer = rows
        .iter()
        .filter(|r| !r.ours)
        .max_by(|a, b| a.gib_s().total_cmp(&b.gib_s()));
    for r in rows {
        let runs: Vec<String> = r
            .runs
            .iter()
            .map(|d| format!("{:.0}", d.time.as_secs_f64() * 1e3))
            .collect();
        println!(
            "  {:<24} {:>8.2} GiB/s {:>9.2} M items/s {:>7.3} parks/item {:>8.0} cpu ns/item   runs ms [{}]",
            r.contender,
            r.gib_s(),
            r.mitems_s(),
            r.parks_per_item(),
            r.cpu_per_item(),
            runs.join(" ")
        );
    }
    let Some(best_peer) = best_peer else { return };
    for r in rows.iter().filter(|r| r.ours) {
        println!(
            "  ratio {} / best peer ({}): {:.2}x",
            r.contender,
            best_peer.contender,
            r.gib_s() / best_peer.gib_s()
        );
        for p in rows.iter().filter(|p| !p.ours) {
            print!("    vs {}: {:.2}x", p.contender, r.gib_s() / p.gib_s());
        }
        println!();
    }
}

/// Workload 4 as it ends, beside kithara's copying pipe of workload 2 if that ran; returns
/// its two rows.
pub fn print_limit(title: String, limit: &Limit, runs: usize, w2: Option<&Row>) -> [Row; 2] {
    let gib_s = |(d, len): (Duration, usize)| len as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    let (ring_gib, dram_gib) = (gib_s(limit.ring), gib_s(limit.dram));
    println!("\n## 4 physical limit (one thread, copy_from_slice, best of {runs})");
    println!(
        "  {:<34} {:>9.2} GiB/s",
        "16 KiB into a 256 KiB ring", ring_gib
    );
    println!(
        "  {:<34} {:>9.2} GiB/s",
        format!("{} MiB DRAM to DRAM", limit.dram.1 / MIB),
        dram_gib
    );
    if let Some(w2) = w2 {
        println!(
            "  workload 2 (kithara) = {:.2} of the ring copy, {:.2} of the DRAM copy",
            w2.gib_s() / ring_gib,
            w2.gib_s() / dram_gib
        );
    }
    let row = |contender, (time, len): (Duration, usize)| Row {
        workload: 4,
        title: title.clone(),
        contender,
        ours: false,
        two_threads: false,
        bytes: len as u64,
        items: (len / CHUNK) as u64,
        runs: vec![Run {
            time,
            parks: 0,
            cpu: 0,
        }],
    };
    let [ring, dram] = PHYSICAL_LIMIT_ROWS;
    [row(ring, limit.ring), row(dram, limit.dram)]
}

/// The table for the README: every contender, and kithara's ratio to the best peer.
pub fn print_markdown(rows: &[Row]) {
    println!("\n| workload | contender | GiB/s | M items/s | CPU ns/item | parks/item | ratio |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for r in rows {
        let peers = rows
            .iter()
            .filter(|p| p.workload == r.workload && !p.ours && p.two_threads);
        let best = peers.max_by(|a, b| a.gib_s().total_cmp(&b.gib_s()));
        let ratio = match best {
            Some(best) if r.ours => format!("**{:.2}x** best peer", r.gib_s() / best.gib_s()),
            _ => String::new(),
        };
        // `<` would open an HTML tag in rendered markdown.
        let contender = r.contender.replace('<', "\\<");
        let name = if r.ours {
            format!("**{contender}**")
        } else {
            contender
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            r.title,
            name,
            r.gib_s(),
            r.mitems_s(),
            r.two_threaded(format!("{:.0}", r.cpu_per_item())),
            r.two_threaded(format!("{:.3}", r.parks_per_item())),
            ratio
        );
    }
}

/// Writes [`svg`] to `path`, creating its directory.
pub fn write_svg(path: &str, rows: &[Row], mib: usize, runs: usize) {
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, svg(rows, mib, runs)).expect("write the chart");
    println!("\nchart: {path}");
}

/// A bar chart, one panel per workload, each with its own scale.
fn svg(rows: &[Row], mib: usize, runs: usize) -> String {
    let width = 900.0;
    let bar = 22.0;
    let label_w = 230.0;
    let plot_w = width - label_w - 140.0;
    let mut y = 50.0;
    let mut body = String::new();
    let mut workloads: Vec<u32> = rows.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for w in workloads {
        let panel: Vec<&Row> = rows.iter().filter(|r| r.workload == w).collect();
        let max = panel.iter().map(|r| r.gib_s()).fold(0.0, f64::max);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
            y + 14.0,
            escape(&panel[0].title)
        );
        y += 24.0;
        for r in panel {
            let len = plot_w * r.gib_s() / max;
            let fill = if r.ours { "#d9480f" } else { "#868e96" };
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{:.0}" y="{:.0}" width="{:.1}" height="{:.0}" fill="{}"/><text x="{:.0}" y="{:.0}">{:.2} GiB/s</text>"#,
                label_w - 8.0,
                y + 16.0,
                escape(r.contender),
                label_w,
                y + 2.0,
                len,
                bar - 4.0,
                fill,
                label_w + len + 6.0,
                y + 16.0,
                r.gib_s()
            );
            y += bar;
        }
        y += 12.0;
    }
    let height = y + 10.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="16" font-weight="bold">kithara-stream vs peers: throughput ({mib} MiB per contender, median of {runs} runs; each panel has its own scale)</text>
{body}</svg>
"#
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
