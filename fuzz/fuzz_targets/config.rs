//! The configuration file (TOML): any text is loaded or refused with an error, never a
//! panic.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sesame_server::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = Config::from_toml_str(text) {
            let _ = config.database_url();
            let _ = config.ksf();
        }
    }
});
