//! Registry credentials for pulls, read from the Docker config file (`$DOCKER_CONFIG/config.json`
//! or `~/.docker/config.json`, `auths.<registry>.auth` = base64 `user:password`), the way
//! `docker pull` finds them. Credential helpers (`credsStore`) are not run.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use meme_api::reference::ImageReference;

use crate::docker::RegistryAuth;

/// The Docker config file the engine's CLI would read.
#[must_use]
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// Credentials for the registry of `image`, if the config file has any.
#[must_use]
pub fn for_image(image: &str) -> Option<RegistryAuth> {
    let text = std::fs::read_to_string(config_path()?).ok()?;
    from_config(&text, image).inspect(|a| crate::redact::remember(&format!("registry {}", a.server), &a.password))
}

/// Credentials for `image` from the text of a config file.
#[must_use]
pub fn from_config(config: &str, image: &str) -> Option<RegistryAuth> {
    let registry = ImageReference::parse(image).ok()?.registry_or_default().to_owned();
    let config: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = config.get("auths")?.as_object()?;
    // Docker Hub is keyed by its legacy URL in most config files.
    let candidates: Vec<String> = if registry == meme_api::reference::DEFAULT_REGISTRY {
        vec!["https://index.docker.io/v1/".into(), "docker.io".into(), "index.docker.io".into()]
    } else {
        vec![registry.clone(), format!("https://{registry}"), format!("http://{registry}")]
    };
    let (server, entry) = candidates.iter().find_map(|c| auths.get(c).map(|e| (c.clone(), e)))?;
    let (username, password) = if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = String::from_utf8(STANDARD.decode(auth.trim()).ok()?).ok()?;
        let (u, p) = decoded.split_once(':')?;
        (u.to_owned(), p.to_owned())
    } else {
        (entry.get("username")?.as_str()?.to_owned(), entry.get("password")?.as_str()?.to_owned())
    };
    Some(RegistryAuth { username, password, server })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_should_come_from_the_registry_entry() {
        // "user:pa:ss" in base64
        let config = r#"{"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYTpzcw=="}, "https://index.docker.io/v1/": {"auth": "aHViOnRva2Vu"}}}"#;
        let auth = from_config(config, "127.0.0.1:5000/demo:v1").unwrap();
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("user", "pa:ss"));
        let hub = from_config(config, "redis:7").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("hub", "token"));
        assert!(from_config(config, "ghcr.io/x/y:1").is_none());
        assert!(!format!("{auth:?}").contains("pa:ss"), "Debug never shows the password");
        // Padding is checked: a truncated or unpadded entry is no credential.
        for bad in ["dXNlcjpwYTpzcw", "dXNlcjpwYTpzcw=", "dXNlcjpw*Tpzcw==", "not base64"] {
            let config = format!(r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{bad}"}}}}}}"#);
            assert!(from_config(&config, "127.0.0.1:5000/demo:v1").is_none(), "{bad}");
        }
    }
}
