//! Exports a directory as one layer into a blob store and prints the result.
//!
//! `cargo run --release -p kiln-layer --example export_tree -- DIR gzip|zstd STORE_DIR [THREADS]`
//!
//! Prints `<digest> <compressed bytes> <diff_id>`. Used by `bench/layer-export.sh`.

use std::path::Path;
use std::process::ExitCode;

use kiln_layer::{
    BlobStore, Compression, LayerContents, Ownership, TarPolicy, WriteOptions, write_layer_with,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: export_tree DIR gzip|zstd STORE_DIR [THREADS]");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let compression: Compression = args[1].parse()?;
    let store = BlobStore::open(&args[2])?;
    let mut options = WriteOptions::default();
    if let Some(threads) = args.get(3) {
        options.threads = threads.parse()?;
    }
    let mut contents = LayerContents::new();
    contents.add_tree(Path::new(&args[0]), "")?;
    for warning in contents.warnings() {
        eprintln!("warning: {warning}");
    }
    let policy = TarPolicy {
        mtime: 0,
        owner: Ownership::new(0, 0),
    };
    let blob = write_layer_with(&contents, &policy, compression, &store, options)?;
    println!("{} {} {}", blob.digest, blob.size, blob.diff_id);
    Ok(())
}
