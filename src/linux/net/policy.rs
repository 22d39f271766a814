//! The network policy, docker-like and closed by default.
//!
//! - `--net none` (the default): the application has AF_UNIX sockets inside its volumes,
//!   socketpairs and abstract names of its own (prefixed on the host, so it never reaches the
//!   host's abstract sockets). AF_INET/AF_INET6 sockets exist, as in an empty network namespace,
//!   but reach nothing: `bind` to the wildcard address succeeds (bound nowhere on the host),
//!   `bind` to any other address is EADDRNOTAVAIL, `connect` and `sendto` are ENETUNREACH.
//! - `-p/--publish [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|udp]` (with `--net none`): a wildcard
//!   `bind` to GUEST_PORT binds HOST_IP:HOST_PORT on the host (HOST_IP defaults to all
//!   addresses); the application still sees GUEST_PORT in `getsockname`. Nothing else is
//!   reachable, and nothing goes out.
//! - `--net host`: sockets are the host's own, unfiltered (path names still only in volumes).
//!
//! Threat model: the application is hostile. It reaches the host network only through the
//! ports the user published (inbound) or with `--net host`; it reaches host AF_UNIX sockets only
//! through socket files inside volumes the user granted.
use std::net::IpAddr;

/// How the application reaches the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetMode {
    /// An empty network namespace, plus the published ports.
    #[default]
    None,
    /// The host's network, unfiltered.
    Host,
}

/// A transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// TCP (SOCK_STREAM).
    Tcp,
    /// UDP (SOCK_DGRAM).
    Udp,
}

/// One `-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|udp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The host address to bind (None: all of them).
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The port the application binds.
    pub guest_port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

/// The whole policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// none or host.
    pub mode: NetMode,
    /// Published ports (only with [`NetMode::None`]).
    pub publish: Vec<Publish>,
}

impl NetPolicy {
    /// The published port a wildcard or loopback bind of `guest_port` over `proto` maps to.
    pub fn published(&self, proto: Proto, guest_port: u16) -> Option<&Publish> {
        self.publish
            .iter()
            .find(|p| p.proto == proto && p.guest_port == guest_port)
    }

    /// Check the combination; the error says why.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == NetMode::Host && !self.publish.is_empty() {
            return Err(
                "--publish has no effect with --net host (every port is the host's)".into(),
            );
        }
        for (i, p) in self.publish.iter().enumerate() {
            if self.publish[..i]
                .iter()
                .any(|q| q.proto == p.proto && q.guest_port == p.guest_port)
            {
                return Err(format!("guest port {} is published twice", p.guest_port));
            }
        }
        Ok(())
    }
}

/// Parse `--net none|host`.
pub fn parse_net(text: &str) -> Result<NetMode, String> {
    match text {
        "none" => Ok(NetMode::None),
        "host" => Ok(NetMode::Host),
        _ => Err(format!("'{text}' is not a network mode (none or host)")),
    }
}

/// Parse `-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|udp]` (an IPv6 HOST_IP in brackets).
///
/// ```
/// use umon::linux::net::policy::{parse_publish, Proto};
/// let p = parse_publish("8080:80").unwrap();
/// assert_eq!((p.host_port, p.guest_port, p.proto), (8080, 80, Proto::Tcp));
/// let p = parse_publish("127.0.0.1:5353:53/udp").unwrap();
/// assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
/// assert!(parse_publish("[::1]:8080:80").is_ok());
/// assert!(parse_publish("80").is_err());
/// assert!(parse_publish("0:80").is_err());
/// ```
pub fn parse_publish(text: &str) -> Result<Publish, String> {
    let bad =
        |why: &str| format!("'{text}' is not [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|udp]: {why}");
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, "tcp")) => (s, Proto::Tcp),
        Some((s, "udp")) => (s, Proto::Udp),
        Some(_) => return Err(bad("the protocol is tcp or udp")),
        None => (text, Proto::Tcp),
    };
    let (host, guest) = spec.rsplit_once(':').ok_or_else(|| bad("no GUEST_PORT"))?;
    let (ip, host_port) = match host.rsplit_once(':') {
        Some((ip, port)) => {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            let ip: IpAddr = ip.parse().map_err(|_| bad("HOST_IP is not an address"))?;
            (Some(ip), port)
        }
        None => (None, host),
    };
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad("a port is 1..=65535")),
    };
    Ok(Publish {
        host_ip: ip,
        host_port: port(host_port)?,
        guest_port: port(guest)?,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse_as_docker_s() {
        let p = parse_publish("[::1]:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!((p.host_port, p.guest_port, p.proto), (8080, 80, Proto::Udp));
        assert!(parse_publish("1:2/sctp").is_err());
        assert!(parse_publish("x:1:2").is_err());
        assert!(parse_publish("1:70000").is_err());
        let twice = NetPolicy {
            mode: NetMode::None,
            publish: vec![parse_publish("1:2").unwrap(), parse_publish("3:2").unwrap()],
        };
        assert!(twice.validate().is_err());
        let host = NetPolicy {
            mode: NetMode::Host,
            publish: vec![parse_publish("1:2").unwrap()],
        };
        assert!(host.validate().is_err());
    }
}
