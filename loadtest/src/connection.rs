//! How the harness reaches a Kafka endpoint: flags, credentials, librdkafka configuration and
//! MSK IAM tokens.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;

use crate::LoadtestError;

/// `security.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS (MSK IAM endpoints).
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// True if the connection uses SASL.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// True if the connection uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaslMechanism {
    /// Username and password (for Fjord: access key id and secret).
    Plain,
    /// MSK IAM tokens, as aws-msk-iam-sasl-signer makes them.
    Oauthbearer,
}

/// Connection flags.
#[derive(Clone, Debug, Args)]
pub struct ConnectionArgs {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, env = "FJORD_LOADTEST_BOOTSTRAP")]
    pub bootstrap: String,
    /// Security protocol.
    #[arg(long, value_enum, default_value = "PLAINTEXT")]
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism (with SASL_PLAINTEXT or SASL_SSL).
    #[arg(long, value_enum, default_value = "OAUTHBEARER")]
    pub sasl_mechanism: SaslMechanism,
    /// PLAIN username; defaults to the AWS access key id (what Fjord expects).
    #[arg(long, env = "FJORD_LOADTEST_USERNAME")]
    pub username: Option<String>,
    /// PLAIN password; defaults to the AWS secret access key.
    #[arg(long, env = "FJORD_LOADTEST_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// AWS region the MSK IAM tokens are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Shared credentials file, used when AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are unset
    /// (default ~/.aws/credentials).
    #[arg(long, env = "AWS_SHARED_CREDENTIALS_FILE")]
    pub aws_credentials_file: Option<PathBuf>,
    /// Profile in the shared credentials file.
    #[arg(long, env = "AWS_PROFILE", default_value = "default")]
    pub aws_profile: String,
    /// CA bundle for TLS (`ssl.ca.location`); the system store when unset.
    #[arg(long)]
    pub ssl_ca_location: Option<PathBuf>,
    /// Extra librdkafka property for every client, `key=value` (repeatable).
    #[arg(long = "client-property", value_parser = parse_property)]
    pub client_properties: Vec<(String, String)>,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// An AWS access key.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret or the session token.
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// Credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, looked up with `env`) or else from `profile` in the shared
    /// credentials file `file`.
    pub fn resolve(
        env: impl Fn(&str) -> Option<String>,
        file: &Path,
        profile: &str,
    ) -> Result<AwsCredentials, LoadtestError> {
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Ok(AwsCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
            });
        }
        let text = std::fs::read_to_string(file).map_err(|source| LoadtestError::Credentials {
            path: file.to_path_buf(),
            source,
        })?;
        Self::from_ini(&text, profile).ok_or_else(|| {
            LoadtestError::Config(format!(
                "no aws_access_key_id / aws_secret_access_key for profile {profile:?} in {} \
                 (and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are unset)",
                file.display()
            ))
        })
    }

    /// Parses profile `profile` of an AWS shared-credentials (INI) file.
    pub fn from_ini(text: &str, profile: &str) -> Option<AwsCredentials> {
        let mut in_profile = false;
        let (mut id, mut secret, mut token) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let section = section.trim();
                // ~/.aws/config spells non-default sections `[profile name]`.
                let name = section.strip_prefix("profile ").unwrap_or(section).trim();
                in_profile = name == profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().to_string();
                match k.trim() {
                    "aws_access_key_id" => id = Some(v),
                    "aws_secret_access_key" => secret = Some(v),
                    "aws_session_token" => token = Some(v),
                    _ => {}
                }
            }
        }
        Some(AwsCredentials {
            access_key_id: id?,
            secret_access_key: secret?,
            session_token: token.filter(|t| !t.is_empty()),
        })
    }
}

/// Mints MSK IAM OAUTHBEARER tokens.
#[derive(Clone, Debug)]
pub struct TokenSource {
    /// Credentials the tokens are signed with.
    pub credentials: AwsCredentials,
    /// Region the tokens are signed for.
    pub region: String,
}

impl TokenSource {
    /// A token valid from `now` for the signer's presign lifetime.
    pub fn token(&self, now: SystemTime) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let c = &self.credentials;
        let token = fjord_tenancy::signer::msk_iam_oauth_token(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.as_deref(),
            &self.region,
            now,
        )?;
        // librdkafka refreshes at 80% of the lifetime, well before the presign expires.
        let expires = now + fjord_tenancy::signer::TOKEN_EXPIRY;
        let lifetime_ms = i64::try_from(
            expires
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis(),
        )?;
        Ok(OAuthToken {
            token,
            principal_name: c.access_key_id.clone(),
            lifetime_ms,
        })
    }
}

/// How clients authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No SASL.
    None,
    /// SASL PLAIN.
    Plain {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// SASL OAUTHBEARER with MSK IAM tokens.
    MskIam(TokenSource),
}

/// Validated connection settings.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The flags.
    pub args: ConnectionArgs,
    /// Resolved authentication.
    pub auth: Auth,
}

impl Connection {
    /// Resolves credentials for the flags, reading the process environment.
    pub fn from_args(args: ConnectionArgs) -> Result<Connection, LoadtestError> {
        let aws = |args: &ConnectionArgs| {
            let file = args.aws_credentials_file.clone().unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_default();
                PathBuf::from(home).join(".aws").join("credentials")
            });
            AwsCredentials::resolve(|k| std::env::var(k).ok(), &file, &args.aws_profile)
        };
        let auth = if !args.security_protocol.is_sasl() {
            Auth::None
        } else {
            match args.sasl_mechanism {
                SaslMechanism::Plain => match (&args.username, &args.password) {
                    (Some(u), Some(p)) => Auth::Plain {
                        username: u.clone(),
                        password: p.clone(),
                    },
                    (None, None) => {
                        let c = aws(&args)?;
                        Auth::Plain {
                            username: c.access_key_id,
                            password: c.secret_access_key,
                        }
                    }
                    _ => {
                        return Err(LoadtestError::Config(
                            "--username and --password go together".into(),
                        ))
                    }
                },
                SaslMechanism::Oauthbearer => Auth::MskIam(TokenSource {
                    credentials: aws(&args)?,
                    region: args.region.clone(),
                }),
            }
        };
        Ok(Connection { args, auth })
    }

    /// The librdkafka properties every client of the run shares.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.args.bootstrap)
            .set("security.protocol", self.args.security_protocol.as_str())
            .set("client.id", "fjord-loadtest");
        match &self.auth {
            Auth::None => {}
            Auth::Plain { username, password } => {
                c.set("sasl.mechanism", "PLAIN")
                    .set("sasl.username", username)
                    .set("sasl.password", password);
            }
            Auth::MskIam(_) => {
                c.set("sasl.mechanism", "OAUTHBEARER");
            }
        }
        if let Some(ca) = &self.args.ssl_ca_location {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        for (k, v) in &self.args.client_properties {
            c.set(k, v);
        }
        c
    }

    /// The token source when the run authenticates with MSK IAM.
    pub fn token_source(&self) -> Option<&TokenSource> {
        match &self.auth {
            Auth::MskIam(t) => Some(t),
            _ => None,
        }
    }

    /// The first bootstrap address.
    pub fn first_bootstrap(&self) -> &str {
        self.args
            .bootstrap
            .split(',')
            .map(str::trim)
            .find(|s| !s.is_empty())
            .unwrap_or(&self.args.bootstrap)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const INI: &str = "
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault

[fjord]
aws_access_key_id=AKIDFJORD
aws_secret_access_key=secretfjord
aws_session_token = tok

[profile other]
aws_access_key_id = AKIDOTHER
";

    #[test]
    fn parses_profiles() {
        let d = AwsCredentials::from_ini(INI, "default").unwrap();
        assert_eq!(d.access_key_id, "AKIDDEFAULT");
        assert_eq!(d.session_token, None);
        let f = AwsCredentials::from_ini(INI, "fjord").unwrap();
        assert_eq!(f.secret_access_key, "secretfjord");
        assert_eq!(f.session_token.as_deref(), Some("tok"));
        // A profile without a secret is incomplete; a missing profile is absent.
        assert!(AwsCredentials::from_ini(INI, "other").is_none());
        assert!(AwsCredentials::from_ini(INI, "nope").is_none());
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, INI).unwrap();
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secretenv".to_string()),
            _ => None,
        };
        let c = AwsCredentials::resolve(env, &file, "fjord").unwrap();
        assert_eq!(c.access_key_id, "AKIDENV");
        let c = AwsCredentials::resolve(|_| None, &file, "fjord").unwrap();
        assert_eq!(c.access_key_id, "AKIDFJORD");
        let missing = AwsCredentials::resolve(|_| None, &dir.path().join("nope"), "fjord");
        assert!(matches!(missing, Err(LoadtestError::Credentials { .. })));
        assert!(!format!("{c:?}").contains("secretfjord"));
    }

    #[test]
    fn tokens_are_signed_for_the_region() {
        let t = TokenSource {
            credentials: AwsCredentials::from_ini(INI, "default").unwrap(),
            region: "eu-west-1".into(),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tok = t.token(now).unwrap();
        assert_eq!(tok.principal_name, "AKIDDEFAULT");
        assert_eq!(tok.lifetime_ms, (1_700_000_000 + 900) * 1000);
        use base64::Engine;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&tok.token)
            .unwrap();
        let url = String::from_utf8(url).unwrap();
        assert!(url
            .starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect"));
    }
}
