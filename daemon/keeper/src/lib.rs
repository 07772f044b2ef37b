//! keeperd: configuration, drivers (VRRP on the wire, VIPs, IPVS), health checks and runtime.
