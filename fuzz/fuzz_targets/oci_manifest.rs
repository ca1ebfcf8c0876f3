#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_api::fuzz_targets::oci_manifest(data));
