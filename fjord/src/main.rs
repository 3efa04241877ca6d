//! The `fjord` binary: parses flags, sets up logging, and runs one role (or all of them, for
//! `fjord dev`) until Ctrl-C or SIGTERM.

mod accounts;
mod cli;
mod roles;
mod sealing;
mod shutdown;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command, LogFormat};

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => roles::run_dev(args).await,
            Command::Gateway(args) => roles::run_gateway(args).await,
            Command::StorageNode(args) => roles::run_node(args).await,
            Command::ControlPlane(args) => roles::run_control_plane(args).await,
            Command::Admin(cli::AdminCommand::InitMetadata(args)) => {
                roles::init_metadata(args).await
            }
            Command::Admin(cli::AdminCommand::CreateAccount(args)) => accounts::run(args).await,
        }
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FJORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // FJORD_LOG_SPANS=1 also logs each span as it closes, with its busy and idle time: the
    // quickest way to see where a request's time goes.
    let span_events = if std::env::var_os("FJORD_LOG_SPANS").is_some_and(|v| v == "1") {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(span_events)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
