//! The decoder never panics, and whatever it accepts re-encodes to octets it accepts
//! again as the same advert.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keeper_vrrp::Advert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (src, dst) = if selector & 1 == 0 {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, selector)),
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        )
    } else {
        (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(selector))),
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        )
    };
    if let Ok(advert) = Advert::decode(rest, src, dst) {
        let again = advert.encode(src, dst).expect("a decoded advert encodes");
        assert_eq!(Advert::decode(&again, src, dst), Ok(advert));
    }
});
