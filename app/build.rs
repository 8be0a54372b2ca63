//! Compiles the touchscreen UI (`ui/app.slint`) with its bundled
//! translations, so the binary needs no files beside it. Without the `ui`
//! feature (tillctl alone) there is nothing to compile.

#[cfg(not(feature = "ui"))]
fn main() {}

#[cfg(feature = "ui")]
fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent-light".into())
        .with_debug_info(true)
        .with_default_translation_context(slint_build::DefaultTranslationContext::None)
        .with_bundled_translations(concat!(env!("CARGO_MANIFEST_DIR"), "/translations"));
    slint_build::compile_with_config("ui/app.slint", config).expect("the UI compiles");
    println!("cargo:rerun-if-changed=translations");
}
