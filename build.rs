//! Build script: `sqlx::migrate!` embeds `migrations/` at compile time, so a new or changed
//! migration file must rebuild the crate (R-LOG-1: a schema the binary does not know would
//! be applied by nobody).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
