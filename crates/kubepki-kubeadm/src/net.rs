//! Address parsing with kubeadm's rules: CIDRs, `host[:port]`, SAN entries, server URLs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kubepki_csr::check_dns_subdomain;

use crate::error::{Error, invalid};

/// A parsed CIDR: its network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub network: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `v6::/n`. Host bits may be set (they are cleared), as Go's
    /// `net.ParseCIDR` allows.
    pub fn parse(field: &str, s: &str) -> Result<Cidr, Error> {
        let bad = |why: &str| invalid(field, format!("\"{s}\" is not a valid CIDR: {why}"));
        let (addr, len) = s.trim().split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let ip: IpAddr = addr.parse().map_err(|_| bad("bad address"))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
            return Err(bad("bad prefix length"));
        }
        let prefix: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
        let network = match ip {
            IpAddr::V4(v4) => {
                if prefix > 32 {
                    return Err(bad("prefix longer than 32"));
                }
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                if prefix > 128 {
                    return Err(bad("prefix longer than 128"));
                }
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        };
        Ok(Cidr { network, prefix })
    }

    /// The `index`-th address of the range (kubeadm's `GetIndexedIP`), or an error when the
    /// range is too small.
    pub fn indexed(&self, field: &str, index: u32) -> Result<IpAddr, Error> {
        let small = || {
            invalid(
                field,
                format!("{self} has no address number {index} (the range is too small)"),
            )
        };
        match self.network {
            IpAddr::V4(v4) => {
                let size = 1u64 << (32 - u32::from(self.prefix));
                if u64::from(index) >= size {
                    return Err(small());
                }
                Ok(IpAddr::V4(Ipv4Addr::from(u32::from(v4) + index)))
            }
            IpAddr::V6(v6) => {
                let host_bits = 128 - u32::from(self.prefix);
                if host_bits < 64 && u128::from(index) >= (1u128 << host_bits) {
                    return Err(small());
                }
                Ok(IpAddr::V6(Ipv6Addr::from(
                    u128::from(v6) + u128::from(index),
                )))
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The most host bits a service subnet may have: /12 for IPv4, /108 for IPv6 (kubeadm's
/// `MaximumBitsForServiceSubnet`, the API server's own limit; docs/init.md).
pub const MAX_SERVICE_SUBNET_HOST_BITS: u8 = 20;

/// The fewest addresses a service subnet may have: the cluster DNS service takes the tenth
/// (kubeadm's `MinimumAddressesInServiceSubnet`).
pub const MIN_SERVICE_SUBNET_ADDRESSES: u32 = 10;

/// Parses kubeadm's service subnet: one CIDR or a dual-stack pair `v4,v6` / `v6,v4`, each
/// within kubeadm's size limits ([`MAX_SERVICE_SUBNET_HOST_BITS`],
/// [`MIN_SERVICE_SUBNET_ADDRESSES`]). `field` names the input in errors.
pub fn parse_service_subnet(field: &str, s: &str) -> Result<Vec<Cidr>, Error> {
    let cidrs = s
        .split(',')
        .map(|c| Cidr::parse(field, c))
        .collect::<Result<Vec<_>, _>>()?;
    match cidrs.as_slice() {
        [_] => {}
        [a, b] if a.network.is_ipv4() != b.network.is_ipv4() => {}
        [_, _] => {
            return Err(invalid(
                field,
                format!("\"{s}\": a dual-stack subnet needs one IPv4 and one IPv6 CIDR"),
            ));
        }
        _ => {
            return Err(invalid(
                field,
                format!("\"{s}\": at most two CIDRs (one per IP family)"),
            ));
        }
    }
    for c in &cidrs {
        let (bits, family) = if c.network.is_ipv4() {
            (32u8, "IPv4")
        } else {
            (128u8, "IPv6")
        };
        let host_bits = bits - c.prefix;
        if host_bits > MAX_SERVICE_SUBNET_HOST_BITS {
            return Err(invalid(
                field,
                format!(
                    "\"{c}\": the service subnet is too large; for {family} the prefix must be /{} or longer (at most 2^{MAX_SERVICE_SUBNET_HOST_BITS} addresses)",
                    bits - MAX_SERVICE_SUBNET_HOST_BITS
                ),
            ));
        }
        if (1u32 << host_bits) < MIN_SERVICE_SUBNET_ADDRESSES {
            return Err(invalid(
                field,
                format!(
                    "\"{c}\": the service subnet has {} address(es), the minimum is {MIN_SERVICE_SUBNET_ADDRESSES} (the cluster DNS service takes the tenth)",
                    1u32 << host_bits
                ),
            ));
        }
    }
    Ok(cidrs)
}

/// A host and optional port, as in `controlPlaneEndpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// The host: an IP address or a DNS name.
    pub host: Host,
    /// The port, if one was given.
    pub port: Option<u16>,
}

/// An IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A lower-case RFC 1123 DNS name.
    Dns(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(d) => f.write_str(d),
        }
    }
}

impl HostPort {
    /// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
    pub fn parse(field: &str, s: &str) -> Result<HostPort, Error> {
        let t = s.trim();
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(HostPort {
                host: Host::Ip(ip),
                port: None,
            });
        }
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| invalid(field, format!("\"{s}\": missing ']'")))?;
            let port =
                match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| {
                        invalid(field, format!("\"{s}\": expected ':' after ']'"))
                    })?),
                };
            (h, port)
        } else {
            match t.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (t, None),
            }
        };
        let port = port.map(|p| parse_port(field, p)).transpose()?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(HostPort {
                host: Host::Ip(ip),
                port,
            });
        }
        check_dns_subdomain(host).map_err(|e| {
            invalid(
                field,
                format!("\"{s}\": the host is neither an IP address nor a DNS name: {e}"),
            )
        })?;
        Ok(HostPort {
            host: Host::Dns(host.to_owned()),
            port,
        })
    }
}

/// Parses a TCP port 1..=65535.
pub fn parse_port(field: &str, p: &str) -> Result<u16, Error> {
    match p.trim().parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(invalid(
            field,
            format!("\"{p}\" is not a port (1 to 65535)"),
        )),
    }
}

/// `https://host:port`, with IPv6 hosts in brackets.
pub fn https_url(host: &Host, port: u16) -> String {
    format!("https://{host}:{port}")
}

/// One extra SAN entry (`apiServer.certSANs` and the etcd lists): an IP if it parses as one,
/// else a DNS name if it is a lower-case RFC 1123 subdomain or a wildcard `*.subdomain`.
/// Anything else is an error (kubeadm drops it with only a warning).
pub fn parse_san(field: &str, s: &str) -> Result<Host, Error> {
    let t = s.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        // `::ffff:a.b.c.d` is the IPv4 address, as Go's `net.IP` treats it: it is written in 4
        // bytes and equal to `a.b.c.d` when SANs are compared (docs/compatibility.md §1.3).
        return Ok(Host::Ip(ip.to_canonical()));
    }
    let name = t.strip_prefix("*.").unwrap_or(t);
    check_dns_subdomain(name).map_err(|e| {
        invalid(
            field,
            format!("\"{s}\" is neither an IP address nor a valid DNS name: {e}"),
        )
    })?;
    Ok(Host::Dns(t.to_owned()))
}

/// Whether the DNS name `pattern` (possibly a `*.` wildcard) covers `name` as TLS hostname
/// verification does (a wildcard matches exactly one left-most label).
pub fn dns_matches(pattern: &str, name: &str) -> bool {
    if pattern.eq_ignore_ascii_case(name) {
        return true;
    }
    match (pattern.strip_prefix("*."), name.split_once('.')) {
        (Some(suffix), Some((first, rest))) => {
            !first.is_empty() && rest.eq_ignore_ascii_case(suffix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_subnet_first_address() -> Result<(), Error> {
        let c = parse_service_subnet("f", "10.96.0.0/12")?;
        assert_eq!(c[0].indexed("f", 1)?.to_string(), "10.96.0.1");
        let c = parse_service_subnet("f", "10.96.5.7/12")?;
        assert_eq!(c[0].indexed("f", 1)?.to_string(), "10.96.0.1");
        let c = parse_service_subnet("f", "fd00:10:96::/108,10.96.0.0/12")?;
        assert_eq!(c[0].indexed("f", 1)?.to_string(), "fd00:10:96::1");
        assert!(Cidr::parse("f", "10.0.0.1/32")?.indexed("f", 1).is_err());
        // kubeadm's size limits: at most 20 host bits, at least 10 addresses.
        for good in ["10.96.0.0/12", "10.96.0.0/28", "fd00::/108", "fd00::/124"] {
            assert!(parse_service_subnet("f", good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("10.96.0.0/8", "for IPv4 the prefix must be /12 or longer"),
            ("10.96.0.0/11", "for IPv4 the prefix must be /12 or longer"),
            ("fd00::/64", "for IPv6 the prefix must be /108 or longer"),
            (
                "fd00::/107,10.96.0.0/12",
                "for IPv6 the prefix must be /108",
            ),
            ("10.96.0.0/12,fd00::/100", "\"fd00::/100\""),
            ("10.96.0.0/29", "has 8 address(es), the minimum is 10"),
            ("fd00::/125", "has 8 address(es), the minimum is 10"),
        ] {
            let e = parse_service_subnet("f", bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
        for bad in [
            "10.96.0.0",
            "10.96.0.0/33",
            "10.96.0/12",
            "x/1",
            "10.0.0.0/8,10.1.0.0/16",
            "a,b,c",
            "10.0.0.0/-1",
        ] {
            assert!(parse_service_subnet("f", bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn host_port_forms() -> Result<(), Error> {
        let hp = HostPort::parse("f", "cp.example.com:7443")?;
        assert_eq!(hp.host, Host::Dns("cp.example.com".into()));
        assert_eq!(hp.port, Some(7443));
        let hp = HostPort::parse("f", "[2001:db8::1]:6443")?;
        assert_eq!(https_url(&hp.host, 6443), "https://[2001:db8::1]:6443");
        let hp = HostPort::parse("f", "2001:db8::1")?;
        assert_eq!(hp.port, None);
        assert_eq!(
            HostPort::parse("f", "192.0.2.1")?.host,
            Host::Ip("192.0.2.1".parse().map_err(|_| invalid("", ""))?)
        );
        for bad in [
            "CP.example.com",
            "cp:0",
            "cp:70000",
            "cp:x",
            "[::1",
            "under_score",
        ] {
            assert!(HostPort::parse("f", bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn san_entries_and_wildcards() {
        assert!(matches!(parse_san("f", "10.0.0.1"), Ok(Host::Ip(_))));
        assert!(matches!(parse_san("f", "*.example.com"), Ok(Host::Dns(_))));
        assert!(parse_san("f", "Upper.example.com").is_err());
        assert!(parse_san("f", "a_b").is_err());
        assert!(dns_matches("*.example.com", "api.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(dns_matches("kubernetes", "kubernetes"));
    }
}
