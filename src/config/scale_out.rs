//! Scale-out rules: the ephemeral store is `memory` or Redis; several instances need a
//! shared Redis and a shared database server.

use std::time::Duration;

use super::database::DatabaseConfig;
use super::ephemeral::EphemeralConfig;
use super::error::ConfigError;

/// Scale-out rules: the ephemeral store is `memory` or Redis; several instances share
/// Redis (a memory store would split flows, codes, counters and status events per
/// process) and a database server (not one SQLite file per instance).
pub(super) fn check_scale_out(
    ephemeral: &EphemeralConfig,
    database: &DatabaseConfig,
    instances: u32,
) -> Result<(), ConfigError> {
    let url = ephemeral.url.as_str();
    let redis = url.starts_with("redis://") || url.starts_with("redis+unix://");
    if url != "memory" && !redis {
        return Err(ConfigError::Invalid {
            key: "ephemeral.url",
            why: "\"memory\", redis:// or redis+unix:// expected".into(),
        });
    }
    if ephemeral.timeout.is_zero() || ephemeral.timeout > Duration::from_secs(30) {
        return Err(ConfigError::Invalid {
            key: "ephemeral.timeout",
            why: "between 1 ms and 30 s".into(),
        });
    }
    if instances == 0 {
        return Err(ConfigError::Invalid {
            key: "instances",
            why: "at least 1".into(),
        });
    }
    if instances > 1 && !redis {
        return Err(ConfigError::Invalid {
            key: "ephemeral.url",
            why: format!(
                "{} instances are declared: a shared Redis is required, \"memory\" is per process",
                instances
            ),
        });
    }
    if instances > 1 && database.url.starts_with("sqlite:") {
        return Err(ConfigError::Invalid {
            key: "database.url",
            why: format!("{} instances are declared: a shared PostgreSQL is required", instances),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn scale_out_refuses_memory_or_sqlite_with_several_instances() {
        let mut c = Config::from_toml("instances = 2").unwrap();
        let e = c.finish().unwrap_err().to_string();
        assert!(e.contains("ephemeral.url") && e.contains("Redis"), "{e}");
        let mut c = Config::from_toml("instances = 2\n[ephemeral]\nurl = \"redis://127.0.0.1:6379\"").unwrap();
        assert!(c.finish().unwrap_err().to_string().contains("database.url"));
        let mut c = Config::from_toml(
            "instances = 3\n[database]\nurl = \"postgres://db/eid\"\n[ephemeral]\nurl = \"redis://127.0.0.1:6379\"\ntimeout = \"250ms\"",
        )
        .unwrap();
        c.finish().unwrap();
        assert_eq!(c.ephemeral.timeout, Duration::from_millis(250));
        let mut c = Config::from_toml("[ephemeral]\nurl = \"memcached://x\"").unwrap();
        assert!(c.finish().is_err());
        let mut c = Config::default();
        c.apply_env(|k| (k == "EIDGATE_INSTANCES").then(|| "2".to_owned()));
        assert!(c.finish().is_err(), "memory with two instances from the environment");
    }
}
