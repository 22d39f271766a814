//! Networking: sockets as real host sockets of the monitor ([`socket`]), the names they bind
//! and reach ([`addr`]), and the docker-like policy that decides what the application may reach
//! ([`policy`]), the interface queries of `ioctl` answered for its view ([`ifreq`]), and the
//! files SCM_RIGHTS passes between its sockets ([`rights`]).
pub mod addr;
pub mod ifreq;
pub mod policy;
pub mod rights;
pub mod socket;

pub use policy::NetPolicy;

/// What every process of one application shares about the network (forked and exec'd
/// processes copy it): the policy, and the host prefix of its abstract AF_UNIX names under
/// `--net none`, fixed when the first VM is built so all its processes agree on it.
#[derive(Clone, Debug, Default)]
pub struct NetEnv {
    /// `--net`, `--publish`.
    pub policy: NetPolicy,
    prefix: Vec<u8>,
}

impl NetEnv {
    /// The environment of a new application run by this (the first) monitor process.
    pub fn new(policy: NetPolicy) -> NetEnv {
        NetEnv {
            policy,
            prefix: format!("umon.{:08x}/", std::process::id()).into_bytes(),
        }
    }

    /// The host prefix of the application's abstract names.
    pub fn prefix(&self) -> &[u8] {
        if self.prefix.is_empty() {
            b"umon/"
        } else {
            &self.prefix
        }
    }
}
