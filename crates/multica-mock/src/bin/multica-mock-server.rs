//! `multica-mock-server`: the fake Multica server over HTTP on 127.0.0.1, for
//! daemons written in any language.
//!
//! Prints its base URL as the first line on stdout, then serves until
//! Ctrl-C / SIGTERM. The control routes under `/_mock/` and the seed format
//! are documented in the `multica-mock` crate docs.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use multica_mock::{parse_server_version, serve_with, ConnectionLimits, MockDaemon, Seed, ServerConfig, ServerVersion};

const USAGE: &str = "\
usage: multica-mock-server [--port N] [--token T] [--jwt-secret S] [--server-version V] [--frontend-url URL]
                           [--seed FILE | --seed-demo]
                           [--header-timeout SECS] [--idle-timeout SECS] [--max-connections N]

  --port N               listen on 127.0.0.1:N (default: a free port)
  --token T              turn auth on: GET /api/workspaces needs `Authorization: Bearer T`
                         (at head: the personal token of a member of every workspace;
                         add more with POST /_mock/tokens)
  --jwt-secret S         the secret login JWTs (HS256) are signed with (default: the
                         server's development secret)
  --server-version V     the server to emulate: 3c93ebaf1c (default) or head (1cc46b2697)
  --frontend-url URL     pairing links point to URL/pair/local?token=…, and CORS allows
                         that origin (default http://localhost:3000)
  --seed FILE            load a JSON fixture (workspaces, agents with their
                         max_concurrent_tasks, runtimes, tasks, issue statuses)
  --seed-demo            load the built-in demo fixture
  --header-timeout SECS  close a connection whose request head takes longer (default 10)
  --idle-timeout SECS    close a connection idle this long after its last answer (default 120)
  --max-connections N    keep at most N open; a new one sheds a silent or slow one first (default 512)
  --help                 show this help

Prints the base URL (http://127.0.0.1:PORT) on the first line of stdout.";

/// The command line, parsed.
#[derive(Debug, Default, PartialEq)]
struct Options {
    port: u16,
    token: Option<String>,
    jwt_secret: Option<String>,
    server_version: Option<ServerVersion>,
    frontend_url: Option<String>,
    seed_file: Option<String>,
    seed_demo: bool,
    limits: ConnectionLimits,
    help: bool,
}

/// Seconds, possibly fractional, above zero.
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("{flag}: {text:?} is not a number of seconds above zero"))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let text = value()?;
                options.port = text.parse().map_err(|_| format!("--port: {text:?} is not a port number"))?;
            }
            "--token" => options.token = Some(value()?).filter(|t| !t.is_empty()),
            "--server-version" => {
                options.server_version =
                    Some(parse_server_version(&value()?).map_err(|err| format!("--server-version: {err}"))?);
            }
            "--seed" => options.seed_file = Some(value()?),
            "--frontend-url" => options.frontend_url = Some(value()?),
            "--jwt-secret" => options.jwt_secret = Some(value()?),
            "--seed-demo" => options.seed_demo = true,
            "--header-timeout" => options.limits.header_read_timeout = seconds(&flag, &value()?)?,
            "--idle-timeout" => options.limits.idle_timeout = seconds(&flag, &value()?)?,
            "--max-connections" => {
                let text = value()?;
                options.limits.max_connections = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--max-connections: {text:?} is not a count above zero"))?;
            }
            "--help" | "-h" => options.help = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.seed_demo && options.seed_file.is_some() {
        return Err("--seed and --seed-demo cannot be combined".to_owned());
    }
    Ok(options)
}

fn load_seed(options: &Options) -> Result<Option<Seed>, String> {
    if options.seed_demo {
        return Ok(Some(Seed::demo()));
    }
    let Some(path) = &options.seed_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    Seed::from_json(&text).map(Some).map_err(|err| format!("{path}: not a valid seed: {err}"))
}

async fn run(options: Options) -> Result<(), String> {
    let version = options.server_version.unwrap_or(ServerVersion::V3c93ebaf1c);
    let mut builder = MockDaemon::builder().server_version(version);
    if let Some(token) = &options.token {
        builder = builder.token(token.clone());
    }
    if let Some(url) = &options.frontend_url {
        builder = builder.frontend_url(url.clone());
    }
    if let Some(secret) = &options.jwt_secret {
        builder = builder.jwt_secret(secret.clone());
    }
    if let Some(seed) = load_seed(&options)? {
        builder = builder.seed(seed);
    }
    let mock = builder.build().map_err(|err| format!("cannot load the seed: {err}"))?;
    let config = ServerConfig {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)),
        limits: options.limits,
        ..ServerConfig::default()
    };
    let server = serve_with(mock, config).await.map_err(|err| format!("cannot listen: {err}"))?;
    // The first line is the contract with whoever started us: the URL alone.
    println!("{}", server.base_url());
    eprintln!("multica-mock-server: serving on {} (Ctrl-C to stop)", server.base_url());
    wait_for_stop().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // Without a signal handler we can only wait for Ctrl-C.
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("multica-mock-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("multica-mock-server: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("multica-mock-server: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_every_flag_in_both_spellings() {
        let options = parse(&["--port", "8080", "--token=abc", "--seed", "f.json"]).expect("valid");
        assert_eq!(
            options,
            Options { port: 8080, token: Some("abc".into()), seed_file: Some("f.json".into()), ..Options::default() }
        );
        assert!(parse(&["--seed-demo"]).expect("valid").seed_demo);
        assert_eq!(parse(&["--server-version", "head"]).expect("valid").server_version, Some(ServerVersion::Head));
        let old = parse(&["--server-version=3c93ebaf1c"]).expect("valid").server_version;
        assert_eq!(old, Some(ServerVersion::V3c93ebaf1c));
        assert_eq!(parse(&[]).expect("valid").server_version, None, "3c93ebaf1c unless asked");
        let secret = parse(&["--jwt-secret", "s3cret"]).expect("valid").jwt_secret;
        assert_eq!(secret.as_deref(), Some("s3cret"));
        let url = parse(&["--frontend-url=https://app.example"]).expect("valid").frontend_url;
        assert_eq!(url.as_deref(), Some("https://app.example"));
        assert_eq!(parse(&[]).expect("valid"), Options::default());
        let limits =
            parse(&["--header-timeout", "0.25", "--idle-timeout=90", "--max-connections", "64"]).expect("valid").limits;
        assert_eq!(
            limits,
            ConnectionLimits {
                header_read_timeout: Duration::from_millis(250),
                idle_timeout: Duration::from_secs(90),
                max_connections: 64
            }
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "99999"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--server-version", "v2"]).is_err());
        assert!(parse(&["--header-timeout", "0"]).is_err());
        assert!(parse(&["--idle-timeout", "soon"]).is_err());
        assert!(parse(&["--idle-timeout", "-1"]).is_err());
        assert!(parse(&["--max-connections", "0"]).is_err());
        assert!(parse(&["--seed", "a", "--seed-demo"]).is_err());
    }

    #[test]
    fn a_missing_seed_file_is_a_clear_error() {
        let options = Options { seed_file: Some("/nonexistent/seed.json".into()), ..Options::default() };
        assert!(load_seed(&options).expect_err("missing").contains("cannot read"));
    }
}
