//! Linux IPVS over generic netlink (family `IPVS`, UAPI `linux/ip_vs.h`).
