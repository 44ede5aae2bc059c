//! Link against the prebuilt DuckDB in vendor/duckdb (see scripts/bootstrap) and
//! bake an rpath so `cargo run`, `cargo test` and a packaged binary find it.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("vendor/duckdb");
    // Watched by its absolute path: a checkout elsewhere sharing the target
    // dir (CI's cache) must rerun this script, or it would link with the
    // rpath of the checkout that ran it first. A path that no longer exists
    // makes cargo rerun it too.
    println!("cargo:rerun-if-changed={}", dir.display());
    let lib = if cfg!(target_os = "macos") {
        "libduckdb.dylib"
    } else {
        "libduckdb.so"
    };
    if !dir.join(lib).exists() {
        panic!("vendor/duckdb/{lib} is missing: run scripts/bootstrap (or `make test`) first");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    if cfg!(target_os = "macos") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,@executable_path");
    } else {
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    }
}
