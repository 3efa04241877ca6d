//! `fjord-loadtest`: runs an OpenMessaging-Benchmark-style workload against any Kafka endpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fjord_loadtest::connection::{Connection, ConnectionArgs};
use fjord_loadtest::findmax::{find_max, FindMax};
use fjord_loadtest::runner::{run, RunOptions};
use fjord_loadtest::workload::Workload;
use fjord_loadtest::LoadtestError;

/// Load-tests a Kafka endpoint (Fjord, Apache Kafka, MSK, Redpanda) with a workload file.
#[derive(Debug, Parser)]
#[command(name = "fjord-loadtest", version)]
struct Cli {
    #[command(flatten)]
    conn: ConnectionArgs,
    /// Workload file (OpenMessaging Benchmark YAML shape); see loadtest/workloads/.
    #[arg(long, short)]
    workload: PathBuf,
    /// Override the workload's producerRate (msg/s over all producers; 0 = max).
    #[arg(long)]
    rate: Option<f64>,
    /// Override the measured window, in seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Override the warm-up, in seconds.
    #[arg(long)]
    warmup: Option<f64>,
    /// Topic name prefix (default: loadtest-<random>, so runs never share topics).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Write the JSON result here.
    #[arg(long, default_value = "loadtest-result.json")]
    output: PathBuf,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No per-second progress line.
    #[arg(long)]
    quiet: bool,
    /// Pid of a local server process, to report its memory and CPU per GB.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Search for the highest sustainable rate instead of running once.
    #[arg(long)]
    find_max: bool,
    /// With --find-max: publish p99 bound in ms.
    #[arg(long, default_value_t = 5.0)]
    max_p99_ms: f64,
    /// With --find-max: bisection steps after the full-speed run.
    #[arg(long, default_value_t = 5)]
    find_max_steps: u32,
    /// Exit with status 1 if any publish or consume error occurred.
    #[arg(long)]
    fail_on_error: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FJORD_LOADTEST_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match main_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fjord-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

fn main_inner() -> Result<ExitCode, LoadtestError> {
    let cli = Cli::parse();
    let mut workload = Workload::load(&cli.workload)?;
    if let Some(d) = cli.duration {
        workload.test_duration_seconds = Some(d);
    }
    if let Some(w) = cli.warmup {
        workload.warmup_duration_seconds = Some(w);
    }
    workload.validate()?;
    let conn = Connection::from_args(cli.conn.clone())?;
    let opts = RunOptions {
        topic_prefix: cli.topic_prefix.clone().unwrap_or_else(|| {
            format!(
                "loadtest-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        }),
        rate: cli.rate,
        progress: !cli.quiet,
        server_pid: cli.server_pid,
    };
    let write_err = |source| LoadtestError::WriteResult {
        path: cli.output.clone(),
        source,
    };
    if cli.find_max {
        let r = find_max(
            &conn,
            &workload,
            &opts,
            FindMax {
                max_p99_ms: cli.max_p99_ms,
                steps: cli.find_max_steps,
            },
        )?;
        for s in &r.steps {
            println!("{}", s.result.table());
        }
        println!(
            "max sustained rate: {:.0} msg/s ({:.2} MB/s) with publish p99 <= {} ms",
            r.max_sustained_msg_s, r.max_sustained_mb_s, r.max_p99_ms
        );
        let text =
            serde_json::to_string_pretty(&r).map_err(|e| write_err(std::io::Error::other(e)))?;
        std::fs::write(&cli.output, text).map_err(write_err)?;
        if let (Some(html), Some(best)) = (&cli.html, r.steps.iter().rev().find(|s| s.sustained)) {
            best.result.write_html(html)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let result = run(&conn, &workload, &opts)?;
    print!("{}", result.table());
    result.write_json(&cli.output)?;
    if let Some(html) = &cli.html {
        result.write_html(html)?;
    }
    if cli.fail_on_error && result.errors() > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
