//! Host directories granted to the guest (`-v HOST_DIR:GUEST_PATH[:ro|:rw]`).
use std::path::PathBuf;

/// One granted directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it: absolute, normalized, no trailing slash (except "/").
    pub guest: String,
    /// Whether the guest may write (`:rw`); volumes are read-only by default.
    pub writable: bool,
}

/// Parse `HOST_DIR:GUEST_PATH[:ro|:rw]` (docker's syntax). The host directory must exist.
pub fn parse_spec(text: &str) -> Result<VolumeSpec, String> {
    let mut parts: Vec<&str> = text.split(':').collect();
    let writable = match parts.last() {
        Some(&"rw") if parts.len() == 3 => {
            parts.pop();
            true
        }
        Some(&"ro") if parts.len() == 3 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let [host, guest] = parts[..] else {
        return Err(format!("'{text}' is not HOST_DIR:GUEST_PATH[:ro|:rw]"));
    };
    if host.is_empty() {
        return Err(format!("'{text}': empty host directory"));
    }
    let guest = normalize_guest(guest)
        .ok_or_else(|| format!("'{text}': the guest path must be absolute and without '..'"))?;
    let host = PathBuf::from(host);
    match std::fs::metadata(&host) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("'{}' is not a directory", host.display())),
        Err(e) => return Err(format!("'{}': {e}", host.display())),
    }
    Ok(VolumeSpec {
        host,
        guest,
        writable,
    })
}

/// `/a//b/./c/` -> `/a/b/c`; None for relative paths or `..` components.
pub fn normalize_guest(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let tmp = std::env::temp_dir();
        let t = tmp.display();
        let v = parse_spec(&format!("{t}:/data")).unwrap();
        assert_eq!((v.guest.as_str(), v.writable), ("/data", false));
        let v = parse_spec(&format!("{t}:/data//x/:rw")).unwrap();
        assert_eq!((v.guest.as_str(), v.writable), ("/data/x", true));
        assert!(parse_spec(&format!("{t}:/")).is_ok());
        assert!(parse_spec(&format!("{t}:data")).is_err());
        assert!(parse_spec(&format!("{t}:/a/../b")).is_err());
        assert!(parse_spec("/nonexistent-umon-dir:/x").is_err());
        assert!(parse_spec(&format!("{t}:/x:rx")).is_err());
        assert!(parse_spec(&format!("{t}")).is_err());
    }
}
