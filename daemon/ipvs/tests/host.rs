//! Runs on any Linux host: the client resolves the `IPVS` family over real generic netlink.
//! On a kernel without IPVS (this project's hosts) that must be the clear "IPVS not available"
//! error; where IPVS is loaded, the connection must work and read the kernel's info.

use keeper_ipvs::{Error, IpvsClient};

#[tokio::test]
async fn family_resolution_reports_missing_ipvs_clearly() {
    let loaded_before = std::path::Path::new("/proc/net/ip_vs").exists();
    match IpvsClient::connect().await {
        Err(Error::Unavailable) => {
            assert!(
                !loaded_before,
                "IPVS is loaded but the family was not found"
            );
            let text = Error::Unavailable.to_string();
            assert!(text.contains("IPVS not available"), "{text}");
            assert!(text.contains("modprobe ip_vs"), "{text}");
        }
        Ok(mut c) => {
            // The generic netlink controller loads ip_vs on demand where the module exists.
            assert!(std::path::Path::new("/proc/net/ip_vs").exists());
            assert!(c.family_id() >= 16);
            if let Ok(info) = c.info().await {
                assert!(info.version > 0);
            }
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
